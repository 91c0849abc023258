/**
 * Fallback clipping for any model: per-unit gradients by micro-batches of one unit (one example, or all
 * examples of one group) with tf.variableGrads, each clipped to C and accumulated (Abadi et al. 2016,
 * Alg. 1 lines 5-7 taken literally). Cost is one backward pass per unit, so B× a normal step; the ghost path
 * (ghost.ts) avoids that for Dense/Embedding chains.
 */
import type { SymbolicTensor } from '@tensorflow/tfjs-layers/dist/engine/topology';
import { TayguardError } from '../../core/errors';
import { tf } from '../../core/tf';
import { chainLayers, softmaxHead, type Layer } from './plan';
import { checkFiniteNorms, unitMinWeights, type ClippedGradients, type Units } from './types';

type Tensor = tf.Tensor;
type LogitsFn = (x: Tensor) => Tensor;

const logitsCache = new WeakMap<tf.LayersModel, LogitsFn>();

/** Pre-activation of a softmax head (Dense: x·W + b on the last axis; Activation: its input). */
function preActivation(layer: Layer, h: Tensor): Tensor {
  if (layer.getClassName() === 'Activation') return h;
  const [kernel, bias] = layer.weights;
  const useBias = layer.getConfig().useBias !== false && bias !== undefined;
  const W = kernel.read();
  const flat = h.rank === 2 ? h : tf.reshape(h, [-1, h.shape[h.rank - 1] as number]);
  let z = tf.matMul(flat, W);
  if (useBias) z = tf.add(z, bias.read());
  return h.rank === 2 ? z : tf.reshape(z, [...h.shape.slice(0, -1), W.shape[1] as number]);
}

/**
 * Embedding lookup whose gradient works on every backend: tfjs differentiates gather with
 * UnsortedSegmentSum, which the wasm backend does not register, so there we use the equivalent one-hot
 * matmul (same value, same gradient: onehotᵀ·δ sums the rows of repeated tokens).
 */
function embed(layer: Layer, h: Tensor): Tensor {
  const table = layer.weights[0].read();
  const idx = tf.cast(h, 'int32');
  if (tf.getKernel('UnsortedSegmentSum', tf.getBackend()) !== undefined) return tf.gather(table, idx);
  const vocab = table.shape[0];
  // Not tf.oneHot: it refuses depth 1, and the wasm kernel ignores its dtype argument (writes int32 bits).
  const onehot = tf.cast(tf.equal(tf.reshape(idx, [-1, 1]), tf.range(0, vocab, 1, 'int32')), 'float32');
  return tf.reshape(tf.matMul(onehot, table), [...idx.shape, table.shape[1] as number]);
}

/** A function from inputs to logits (see plan.ts for the softmax-head convention), cached per model. */
export function logitsFunction(model: tf.LayersModel): LogitsFn {
  const hit = logitsCache.get(model);
  if (hit !== undefined) return hit;
  let fn: LogitsFn;
  const layers = chainLayers(model);
  // Masks (Embedding maskZero) only propagate through the model's own graph execution, not layer by layer.
  const masked = layers?.some((l) => l.getClassName() === 'Embedding' && l.getConfig().maskZero === true);
  if (layers !== undefined && !masked) {
    fn = (x) => {
      let h = x;
      layers.forEach((layer, k) => {
        if (layer.getClassName() === 'Embedding') h = embed(layer, h);
        else if (k === layers.length - 1 && softmaxHead(layer)) h = preActivation(layer, h);
        else h = layer.apply(h) as Tensor;
      });
      return h;
    };
  } else {
    const head = model.outputLayers[0];
    if (model.outputs.length === 1 && softmaxHead(head)) {
      const body = tf.model({ inputs: model.inputs, outputs: head.input as SymbolicTensor });
      fn = (x) => preActivation(head, body.apply(x) as Tensor);
    } else {
      fn = (x) => model.apply(x) as Tensor;
    }
  }
  logitsCache.set(model, fn);
  return fn;
}

/** Σᵢ −yᵢ·log softmax(zᵢ): the per-example softmax cross-entropy summed over the micro-batch. */
export function crossEntropySum(logits: Tensor, y: Tensor): tf.Scalar {
  if (logits.rank !== 2 || logits.shape[1] !== y.shape[1] || logits.shape[0] !== y.shape[0]) {
    throw new TayguardError(
      'ARGUMENT_INVALID',
      `logits have shape [${logits.shape}] but yOneHot has shape [${y.shape}]; pass one one-hot row per ` +
        'example with as many columns as the model has outputs',
    );
  }
  return tf.neg(tf.sum(tf.mul(y, tf.logSoftmax(logits)))) as tf.Scalar;
}

export function microbatchClippedSum(
  model: tf.LayersModel,
  x: Tensor,
  yOneHot: tf.Tensor2D,
  clipNorm: number,
  units: Units,
): ClippedGradients {
  if (units.nested) return nestedMicrobatchClippedSum(model, x, yOneHot, clipNorm, units);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const logitsOf = logitsFunction(model);
  const members: number[][] = Array.from({ length: units.count }, () => []);
  units.unitOf.forEach((u, i) => members[u].push(i));

  const unitW = units.weights === undefined ? undefined : unitMinWeights(units, units.weights);
  let acc: tf.NamedTensorMap | undefined;
  const normTs: Tensor[] = [];
  try {
    for (const [u, rows] of members.entries()) {
      const next = tf.tidy(() => {
        const take = (t: Tensor): Tensor =>
          rows.length === 1
            ? tf.slice(t, [rows[0], ...t.shape.slice(1).map(() => 0)], [1, ...t.shape.slice(1)])
            : tf.gather(t, tf.tensor1d(rows, 'int32'));
        const xu = take(x);
        const yu = take(yOneHot);
        const { grads } = tf.variableGrads(() => crossEntropySum(logitsOf(xu), yu), vars);
        const full = vars.map((v) => grads[v.name] ?? tf.zerosLike(v));
        const norm = tf.sqrt(tf.addN(full.map((g) => tf.sum(tf.square(g)))));
        // With influence weights the unit is w_u·clip_C(g_u), w_u the least weight of its rows (ClipOptions.rowWeights).
        const clip = tf.minimum(1, tf.div(clipNorm, norm));
        const c = unitW === undefined ? clip : tf.mul(clip, unitW[u]);
        const sum: tf.NamedTensorMap = {};
        vars.forEach((v, k) => {
          const clipped = tf.mul(full[k], c);
          sum[v.name] = acc === undefined ? clipped : tf.add(acc[v.name], clipped);
        });
        return { sum, norm };
      });
      if (acc !== undefined) for (const t of Object.values(acc)) t.dispose();
      acc = next.sum;
      normTs.push(next.norm);
    }
    if (acc === undefined) {
      throw new TayguardError('ARGUMENT_INVALID', 'empty batch; pass at least one example');
    }
    const stacked = tf.stack(normTs);
    const norms = new Float32Array(stacked.dataSync());
    stacked.dispose();
    checkFiniteNorms(norms, acc);
    return { grads: acc, norms, path: 'microbatch', groupIds: units.groupIds };
  } catch (err) {
    if (acc !== undefined) for (const t of Object.values(acc)) if (!t.isDisposed) t.dispose();
    throw err;
  } finally {
    for (const t of normTs) t.dispose();
  }
}

/** Rows [rows] of t (a slice for one row, a gather otherwise). */
function take(t: Tensor, rows: readonly number[]): Tensor {
  return rows.length === 1
    ? tf.slice(t, [rows[0], ...t.shape.slice(1).map(() => 0)], [1, ...t.shape.slice(1)])
    : tf.gather(t, tf.tensor1d(rows as number[], 'int32'));
}

/**
 * Nested clipping taken literally (types.ts ClipOptions.nested): per unit G, one backward pass per example,
 * each gradient clipped to C (and scaled by its influence weight, if any), summed, and the sum clipped to C again;
 * g_step = Σ_G clip_C(Σ_{i∈G} wᵢ·clip_C(g_i)).
 * The reference for the ghost path's nested formulas, and the path for models ghost norms do not cover.
 * Returns the per-EXAMPLE pre-clip norms.
 */
function nestedMicrobatchClippedSum(
  model: tf.LayersModel,
  x: Tensor,
  yOneHot: tf.Tensor2D,
  clipNorm: number,
  units: Units,
): ClippedGradients {
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const logitsOf = logitsFunction(model);
  const members: number[][] = Array.from({ length: units.count }, () => []);
  units.unitOf.forEach((u, i) => members[u].push(i));
  const norms = new Float32Array(units.unitOf.length);
  let acc: tf.NamedTensorMap | undefined;
  try {
    for (const rows of members) {
      const next = tf.tidy(() => {
        let group: Tensor[] | undefined;
        const rowNorms: Tensor[] = [];
        for (const i of rows) {
          const { grads } = tf.variableGrads(() => crossEntropySum(logitsOf(take(x, [i])), take(yOneHot, [i])), vars);
          const full = vars.map((v) => grads[v.name] ?? tf.zerosLike(v));
          const norm = tf.sqrt(tf.addN(full.map((g) => tf.sum(tf.square(g)))));
          rowNorms.push(norm);
          // The influence weight after the inner clip: wᵢ·clip_C(gᵢ) (ClipOptions.rowWeights); outer radius stays C.
          const clip = tf.minimum(1, tf.div(clipNorm, norm));
          const s = units.weights === undefined ? clip : tf.mul(clip, units.weights[i]);
          const clipped = full.map((g) => tf.mul(g, s));
          group = group === undefined ? clipped : group.map((g, k) => tf.add(g, clipped[k]));
        }
        const sum = group as Tensor[];
        // The outer clip; for a one-example unit it is the identity (clip_C ∘ clip_C = clip_C), skipped so that a
        // singleton is bit-identical to per-example clipping.
        const c = rows.length === 1 ? tf.scalar(1) : tf.minimum(1, tf.div(clipNorm, tf.sqrt(tf.addN(sum.map((g) => tf.sum(tf.square(g)))))));
        const out: tf.NamedTensorMap = {};
        vars.forEach((v, k) => {
          const clipped = tf.mul(sum[k], c);
          out[v.name] = acc === undefined ? clipped : tf.add(acc[v.name], clipped);
        });
        return { out, rowNorms: tf.stack(rowNorms) };
      });
      if (acc !== undefined) for (const t of Object.values(acc)) t.dispose();
      acc = next.out;
      const rn = next.rowNorms.dataSync();
      rows.forEach((i, k) => (norms[i] = rn[k]));
      next.rowNorms.dispose();
    }
    if (acc === undefined) throw new TayguardError('ARGUMENT_INVALID', 'empty batch; pass at least one example');
    checkFiniteNorms(norms, acc);
    return { grads: acc, norms, path: 'microbatch' };
  } catch (err) {
    if (acc !== undefined) for (const t of Object.values(acc)) if (!t.isDisposed) t.dispose();
    throw err;
  }
}
