/**
 * Host and tensor helpers shared by the ghost-norm paths (ghost.ts: one clip per unit; ghost-nested.ts: nested
 * clipping). See ghost.ts for the formulas.
 */
import { TayguardError } from '../../core/errors';
import { tf } from '../../core/tf';
import { varName, type GhostStep } from './plan';
import type { Units } from './types';

type Tensor = tf.Tensor;

/** What the forward/backward pass keeps per layer. */
export interface LayerRecord {
  input: Tensor;
  out: Tensor;
  /** ∂L/∂(pre-activation) for Dense, ∂L/∂(looked-up rows) for Embedding. */
  delta?: Tensor;
  shapeIn?: number[];
}

export interface TokenPairs {
  /** Token (flattened b·T+t) → distinct (unit, vocab row) pair. */
  pairOfToken: Int32Array;
  pairUnit: Int32Array;
  pairRow: Int32Array;
}

/** Read the (integer) token ids from x and group equal (unit, token) pairs — see the Embedding rule above. */
export function tokenPairs(x: Tensor, vocab: number, units: Units): TokenPairs {
  const ids = x.dataSync();
  const [batch, len] = x.shape;
  const pairOfToken = new Int32Array(ids.length);
  const pairUnit: number[] = [];
  const pairRow: number[] = [];
  const seen = new Map<number, number>();
  for (let b = 0; b < batch; b++) {
    const unit = units.unitOf[b];
    for (let t = 0; t < len; t++) {
      const v = ids[b * len + t];
      if (!Number.isInteger(v) || v < 0 || v >= vocab) {
        throw new TayguardError(
          'ARGUMENT_INVALID',
          `token id ${v} at [${b}, ${t}] is not an integer in [0, ${vocab}); map out-of-vocabulary tokens to a ` +
            'reserved id before training',
        );
      }
      const key = unit * vocab + v;
      let p = seen.get(key);
      if (p === undefined) {
        p = pairUnit.length;
        seen.set(key, p);
        pairUnit.push(unit);
        pairRow.push(v);
      }
      pairOfToken[b * len + t] = p;
    }
  }
  return { pairOfToken, pairUnit: Int32Array.from(pairUnit), pairRow: Int32Array.from(pairRow) };
}

/**
 * Aᵀ·D. The wasm backend's matMul with transposeA is ~9× slower than a plain matMul on a pre-transposed
 * copy (measured 46 ms vs 5 ms for [256,784]ᵀ·[256,256], bench/clipping.ts); on cpu the opposite holds
 * (the transpose costs more than it saves), so only wasm gets the explicit transpose.
 */
export function transposeAMatMul(a: Tensor, d: Tensor): Tensor {
  return tf.getBackend() === 'wasm' ? tf.matMul(tf.transpose(a), d) : tf.matMul(a, d, true, false);
}

/** Σ over units of a [B,B] Gram kernel restricted to same-unit pairs: diag(Sᵀ K S) with S the unit one-hot. */
export function unitQuadratic(K: Tensor, S: Tensor): Tensor {
  return tf.sum(tf.mul(tf.matMul(K, S), S), 0);
}

/** S[i, u] = 1 when example i belongs to unit u (built on the host: tf.oneHot refuses depth 1). */
export function unitIndicator(units: Units): Tensor {
  const batch = units.unitOf.length;
  const s = new Float32Array(batch * units.count);
  for (let i = 0; i < batch; i++) s[i * units.count + units.unitOf[i]] = 1;
  return tf.tensor2d(s, [batch, units.count]);
}

/** The state after ghost.ts's forward and backward pass, and what the clipped sums need. */
export interface GhostPass {
  steps: GhostStep[];
  recs: LayerRecord[];
  /** Index of the lowest layer with trainable parameters (no δ below it). */
  lowest: number;
  batch: number;
  units: Units;
  clipNorm: number;
  /** Distinct (unit, token) pairs of a trainable first Embedding layer. */
  pairs?: TokenPairs;
  /** Nested clipping: the same with one unit per example. */
  pairsEx?: TokenPairs;
}

/**
 * Squared gradient norm of each unit, summed over all layers (ghost.ts: per row when `S` is undefined, the Gram
 * identity with the unit indicator S otherwise; the Embedding rule per distinct (unit, token) pair). Also returns
 * the Embedding's per-pair row sums, which the clipped sum reuses.
 */
export function unitSquaredNorms(
  { steps, recs, lowest, units, pairs }: Pick<GhostPass, 'steps' | 'recs' | 'lowest' | 'units' | 'pairs'>,
): { sq: Tensor; pairSum?: Tensor } {
  const S = units.perExample ? undefined : unitIndicator(units);
  const terms: Tensor[] = [];
  let pairSum: Tensor | undefined;
  for (let k = lowest; k < steps.length; k++) {
    const step = steps[k];
    const { input: a, delta } = recs[k];
    if (step.kind === 'dense' && delta !== undefined && (step.kernelTrainable || step.biasTrainable)) {
      if (S === undefined) {
        // ‖aᵢ‖²‖δᵢ‖² + ‖δᵢ‖² = ‖δᵢ‖²(‖aᵢ‖² + 1)
        const dsq = tf.sum(tf.square(delta), 1);
        const asq = step.kernelTrainable ? tf.sum(tf.square(a), 1) : undefined;
        const factor = asq === undefined ? undefined : step.biasTrainable ? tf.add(asq, 1) : asq;
        terms.push(factor === undefined ? dsq : tf.mul(dsq, factor));
      } else {
        const gd = tf.matMul(delta, delta, false, true);
        const ga = step.kernelTrainable ? tf.matMul(a, a, false, true) : undefined;
        const gram = ga === undefined ? undefined : step.biasTrainable ? tf.add(ga, 1) : ga;
        terms.push(unitQuadratic(gram === undefined ? gd : tf.mul(gd, gram), S));
      }
    } else if (step.kind === 'embedding' && delta !== undefined && pairs !== undefined) {
      const d = delta.shape[2] as number;
      const rows = tf.reshape(delta, [-1, d]);
      const np = pairs.pairUnit.length;
      // scatterND accumulates duplicate indices: the "sum rows with equal index first" rule.
      pairSum = tf.scatterND(tf.tensor2d(pairs.pairOfToken, [pairs.pairOfToken.length, 1], 'int32'), rows, [np, d]);
      const pairSq = tf.sum(tf.square(pairSum), 1);
      terms.push(tf.scatterND(tf.tensor2d(pairs.pairUnit, [np, 1], 'int32'), pairSq, [units.count]));
    }
  }
  return { sq: terms.length === 1 ? terms[0] : tf.addN(terms), pairSum };
}

/**
 * The clipped sum from per-row coefficients: Σᵢ coefᵢ·aᵢδᵢᵀ per Dense layer (Aᵀ·(coef ⊙ Δ)), and per Embedding the
 * distinct (unit, token) pairs' row sums times their unit's coefficient (`unitCoef`, gathered by pair). Flat ghost
 * clipping passes coefᵢ = c_{u(i)}; nested passes coefᵢ = sᵢ·c_{G(i)} with the pairs' rows already sᵢ-scaled.
 */
export function clippedSums(
  pass: Pick<GhostPass, 'steps' | 'recs' | 'lowest'>,
  rowCoef: Tensor,
  unitCoef: Tensor,
  pairSum: Tensor | undefined,
  pairs: TokenPairs | undefined,
): tf.NamedTensorMap {
  const { steps, recs, lowest } = pass;
  const grads: tf.NamedTensorMap = {};
  for (let k = lowest; k < steps.length; k++) {
    const step = steps[k];
    const { input: a, delta } = recs[k];
    if (step.kind === 'dense' && delta !== undefined) {
      const cd = tf.mul(delta, rowCoef);
      if (step.kernelTrainable) grads[varName(step.kernel)] = transposeAMatMul(a, cd);
      if (step.biasTrainable && step.bias) grads[varName(step.bias)] = tf.sum(cd, 0);
    } else if (step.kind === 'embedding' && pairSum !== undefined && pairs !== undefined) {
      const np = pairs.pairUnit.length;
      const cPair = tf.gather(unitCoef, tf.tensor1d(pairs.pairUnit, 'int32'));
      grads[varName(step.table)] = tf.scatterND(
        tf.tensor2d(pairs.pairRow, [np, 1], 'int32'),
        tf.mul(pairSum, tf.reshape(cPair, [np, 1])),
        step.table.shape as number[],
      );
    }
  }
  return grads;
}
