/**
 * Ghost-norm clipping: per-example (or per-group) gradient norms and the clipped gradient sum of a chain of
 * Dense / Embedding / shape-only layers from ONE forward and ONE backward pass, without materialising any
 * per-example gradient.
 *
 * For a Dense layer z = a·W + b with δ = ∂L/∂z (L = Σᵢ ℓᵢ, so row i of δ is ∂ℓᵢ/∂zᵢ), the per-example
 * gradient is the outer product ∇W,ᵢ = aᵢ δᵢᵀ, hence (Goodfellow 2015, "Efficient per-example gradient
 * computations", eq. for ‖aᵢ δᵢᵀ‖_F):
 *   ‖∇W,ᵢ‖² = ‖aᵢ‖²·‖δᵢ‖²,   ‖∇b,ᵢ‖² = ‖δᵢ‖²,
 * and for a group G (source-level unit) the Gram identity (also used by Li et al. 2021 for sequences):
 *   ‖Σ_{i∈G} aᵢδᵢᵀ‖_F² = Σ_{i,j∈G} (aᵢ·aⱼ)(δᵢ·δⱼ)    (+ Σ_{i,j∈G} δᵢ·δⱼ for the bias).
 * With c_u = min(1, C/‖g_u‖) (Abadi et al. 2016, Alg. 1 "clip gradient") the clipped sum is one matmul per
 * layer: Σᵢ c_{u(i)} aᵢδᵢᵀ = Aᵀ·(c ⊙ Δ).
 *
 * Embedding rule: example i looks up rows idx_{i,t}; its gradient scatters δ_{i,t} into those rows, so when a
 * token repeats (within an example, or within a group) the rows are SUMMED before squaring:
 *   ‖∇E,u‖² = Σ_{v} ‖Σ_{(i,t)∈u : idx_{i,t}=v} δ_{i,t}‖².
 * We form one row per distinct (unit, token) pair with a scatter-add, square it, and scatter-add per unit.
 * This is exact. The shortcut Σ_t ‖δ_t‖² is NOT: it drops the cross terms 2δ_t·δ_s of repeated rows, which
 * can be negative or positive, so it can under-estimate the norm and break the sensitivity bound C.
 */
import { TayguardError } from '../../core/errors';
import { tf } from '../../core/tf';
import type { Activation, GhostPlan } from './plan';
import { buildUnits, checkFiniteNorms, unitMinWeights, type ClippedGradients, type Units } from './types';
import { clippedSums, tokenPairs, unitSquaredNorms, type GhostPass, type LayerRecord } from './ghost-ops';
import { nestedGhostSums } from './ghost-nested';

type Tensor = tf.Tensor;


/** Fusable into the wasm/cpu _FusedMatMul kernel; tanh and softmax are applied after a linear matmul. */
const FUSABLE: ReadonlySet<Activation> = new Set<Activation>(['linear', 'relu', 'sigmoid']);

function activate(act: Activation, z: Tensor): Tensor {
  switch (act) {
    case 'linear':
      return z;
    case 'relu':
      return tf.relu(z);
    case 'sigmoid':
      return tf.sigmoid(z);
    case 'tanh':
      return tf.tanh(z);
    case 'softmax':
      return tf.softmax(z);
  }
}

/** Chain rule through an elementwise activation, expressed with the OUTPUT h = act(z) (no z kept). */
function activationGrad(act: Activation, g: Tensor, h: Tensor): Tensor {
  switch (act) {
    case 'linear':
      return g;
    case 'relu':
      // h > 0 ⇔ z > 0: same subgradient (0 at z = 0) as tfjs's Relu gradient, step(z).
      return tf.mul(g, tf.step(h));
    case 'sigmoid':
      return tf.mul(g, tf.mul(h, tf.sub(1, h)));
    case 'tanh':
      return tf.mul(g, tf.sub(1, tf.square(h)));
    case 'softmax':
      // Jacobian-vector product of softmax: h ⊙ (g − ⟨g, h⟩).
      return tf.mul(h, tf.sub(g, tf.sum(tf.mul(g, h), -1, true)));
  }
}

export function ghostClippedSum(
  plan: GhostPlan,
  x: Tensor,
  yOneHot: tf.Tensor2D,
  clipNorm: number,
  units: Units,
): ClippedGradients {
  const steps = plan.steps;
  const batch = x.shape[0];
  const first = steps[0];
  const embedded = first.kind === 'embedding' && first.trainable;
  const pairs = embedded ? tokenPairs(x, first.vocab, units) : undefined;
  // Nested clipping needs the per-example token pairs too (inner clip), besides the per-unit ones (outer clip).
  const pairsEx = embedded && units.nested ? tokenPairs(x, first.vocab, buildUnits(batch, undefined)) : undefined;

  const out = tf.tidy(() => {
    // ---- forward: keep each layer's input and output (Goodfellow 2015 needs aᵢ and δᵢ per layer) ----
    const recs: LayerRecord[] = [];
    let h: Tensor = x;
    for (const step of steps) {
      const rec: LayerRecord = { input: h, out: h };
      switch (step.kind) {
        case 'embedding':
          rec.out = tf.gather(step.table.read(), tf.cast(h, 'int32'));
          break;
        case 'dense': {
          const W = step.kernel.read();
          const bias = step.bias?.read();
          const act: Activation = step.logits ? 'linear' : step.act;
          if (FUSABLE.has(act)) {
            rec.out = tf.fused.matMul({ a: h, b: W, bias, activation: act as 'linear' | 'relu' | 'sigmoid' });
          } else {
            rec.out = activate(act, tf.fused.matMul({ a: h, b: W, bias }));
          }
          break;
        }
        case 'flatten':
          rec.shapeIn = h.shape;
          rec.out = tf.reshape(h, [h.shape[0], -1]);
          break;
        case 'activation':
          rec.out = step.logits ? h : activate(step.act, h);
          break;
        case 'identity':
          break;
      }
      recs.push(rec);
      h = rec.out;
    }

    // ---- backward by hand: ∂/∂logits of Σᵢ −yᵢ·log softmax(zᵢ) is softmax(zᵢ)·Σ_k y_ik − yᵢ ----
    const logits = h;
    if (logits.rank !== 2 || logits.shape[1] !== yOneHot.shape[1] || yOneHot.shape[0] !== batch) {
      throw new TayguardError(
        'ARGUMENT_INVALID',
        `logits have shape [${logits.shape}] but yOneHot has shape [${yOneHot.shape}]; pass one one-hot row ` +
          'per example with as many columns as the model has outputs',
      );
    }
    let g: Tensor = tf.sub(tf.mul(tf.softmax(logits), tf.sum(yOneHot, 1, true)), yOneHot);
    // Only propagate further down while some earlier layer still has trainable parameters.
    const trainableAt = steps.map((s) =>
      s.kind === 'dense' ? s.kernelTrainable || s.biasTrainable : s.kind === 'embedding' && s.trainable,
    );
    let lowest = trainableAt.indexOf(true);
    if (lowest < 0) lowest = steps.length;
    for (let k = steps.length - 1; k >= lowest; k--) {
      const step = steps[k];
      const rec = recs[k];
      switch (step.kind) {
        case 'dense':
          rec.delta = step.logits ? g : activationGrad(step.act, g, rec.out);
          if (k > lowest) g = tf.matMul(rec.delta, step.kernel.read(), false, true);
          break;
        case 'activation':
          if (!step.logits) g = activationGrad(step.act, g, rec.out);
          break;
        case 'flatten':
          g = tf.reshape(g, rec.shapeIn as number[]);
          break;
        case 'embedding':
          rec.delta = g;
          break;
        case 'identity':
          break;
      }
    }

    return units.nested
      ? nestedGhostSums({ steps, recs, lowest, batch, units, clipNorm, pairs, pairsEx })
      : flatGhostSums({ steps, recs, lowest, batch, units, clipNorm, pairs });
  });

  // The single device→host read of the step: the pre-clip norms the caller logs / audits.
  const norms = new Float32Array(out.norms.dataSync());
  out.norms.dispose();
  checkFiniteNorms(norms, out.grads);
  return { grads: out.grads, norms, path: 'ghost', groupIds: units.nested ? undefined : units.groupIds };
}

/** One clip per unit: c_u = min(1, C/‖g_u‖) from the per-example (or Gram, for groups) norms above. */
function flatGhostSums({ steps, recs, lowest, batch, units, clipNorm, pairs }: GhostPass): { grads: tf.NamedTensorMap; norms: Tensor } {
  const { sq, pairSum } = unitSquaredNorms({ steps, recs, lowest, units, pairs });
  const norms = tf.sqrt(sq);
  // c_u = min(1, C/‖g_u‖); ‖g_u‖ = 0 gives C/0 = +Inf → 1. With influence weights, c_u ← w_u·c_u (w_u the least
  // weight of the unit's rows; types.ts ClipOptions.rowWeights): the unit's norm is then ≤ w_u·C ≤ C.
  const clip = tf.minimum(1, tf.div(clipNorm, norms));
  const c = units.weights === undefined ? clip : tf.mul(clip, tf.tensor1d(unitMinWeights(units, units.weights)));
  const cEx = units.perExample ? c : tf.gather(c, tf.tensor1d(units.unitOf, 'int32'));
  const cCol = tf.reshape(cEx, [batch, 1]);

  // ---- clipped sums: Aᵀ·(c ⊙ Δ) per Dense layer, scatter of clipped pair rows per Embedding ----
  return { grads: clippedSums({ steps, recs, lowest }, cCol, c, pairSum, pairs), norms };
}
