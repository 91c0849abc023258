/**
 * One DP-SGD gradient (Abadi et al. 2016, Algorithm 1, lines 4-7):
 *
 *   g̃ = ( Σ_u clip_C(g_u) + N(0, σ²C²·I) ) / (q·N)
 *
 * where u ranges over the privacy units of the Poisson-sampled batch (examples, or groups of a source's
 * examples; with `nested`, g_u = Σ_{i∈u} clip_C(g_i), the record-level mechanism with a per-source bound),
 * C is the clipping norm, σ the noise multiplier charged to the accountant and q·N the EXPECTED batch size. The result is keyed by variable name, ready for `optimizer.applyGradients` /
 * `TfjsLearner.applyGradients`.
 *
 * Why divide by the expected batch size and not by the realised one: under Poisson sampling the realised
 * batch size |B| is itself a function of the data (removing a record changes it by one), so dividing by |B|
 * would make the normalisation data-dependent and the sensitivity of the released average would no longer be
 * C/(q·N) — the analysis of the sampled Gaussian mechanism (Mironov et al. 2019) is for the noisy SUM, and a
 * division by a public constant is post-processing. Opacus's DPOptimizer does the same
 * (`expected_batch_size`, "loss_reduction=mean" divides by it, not by len(batch)).
 *
 * An empty Poisson batch is a valid, accounted step: its output is pure noise / (q·N). Skipping it would
 * make "was a step taken" depend on the data.
 */
import { TayguardError } from '../core/errors';
import { tf } from '../core/tf';
import { clippedGradientSum, type ClipPath } from './clipping';
import type { GaussianSource } from './noise';

export interface PrivateGradientOptions {
  /** L2 clipping norm C (> 0). */
  readonly clipNorm: number;
  /** Noise multiplier σ ≥ 0: noise std is σ·C. 0 is allowed only for tests and non-private baselines. */
  readonly noiseMultiplier: number;
  /** q·N, the expected number of units per batch (> 0). */
  readonly expectedBatchSize: number;
  /** Gaussian source: crypto in production (createGaussianSource()), seeded only in tests/experiments. */
  readonly noise: GaussianSource;
  /** Source-level privacy: group id per row of x; a group's examples are summed, then clipped together. */
  readonly groups?: Int32Array;
  /**
   * With `groups`: nested clipping, Σ_G clip_C(Σ_{i∈G} clip_C(g_i)) — record-level sensitivity C (the same
   * accountant charge) and at most C per group per step (clipping/types.ts ClipOptions.nested).
   */
  readonly nested?: boolean;
  /**
   * Influence weight wᵢ ∈ [0, 1] per row of x, applied after the inner clip (wᵢ·clip_C(gᵢ); clipping/types.ts
   * ClipOptions.rowWeights): every unit still has norm ≤ C, so the charge is unchanged.
   */
  readonly rowWeights?: Float32Array;
  /** Clipping path (default 'auto': ghost when the model supports it). */
  readonly path?: 'auto' | ClipPath;
}

export interface PrivateGradients {
  /** (Σ clip(g_u) + N(0, σ²C²)) / expectedBatchSize, keyed by trainable variable name. Caller disposes. */
  readonly grads: tf.NamedTensorMap;
  /** Pre-clip L2 norm per unit (input to adaptive clipping); per example when nested. Empty for an empty batch. */
  readonly norms: Float32Array;
  /** The clipping path taken ('ghost' for an empty batch, where nothing is clipped). */
  readonly path: ClipPath;
  /** With `groups`: the group id of each entry of `norms`. */
  readonly groupIds?: Int32Array;
}

function check(opts: PrivateGradientOptions): void {
  const { clipNorm, noiseMultiplier, expectedBatchSize, noise } = opts;
  if (typeof clipNorm !== 'number' || !Number.isFinite(clipNorm) || clipNorm <= 0) {
    throw new TayguardError('ARGUMENT_INVALID', `clipNorm must be a finite number > 0, got ${String(clipNorm)}`);
  }
  if (typeof noiseMultiplier !== 'number' || !Number.isFinite(noiseMultiplier) || noiseMultiplier < 0) {
    throw new TayguardError('ARGUMENT_INVALID', `noiseMultiplier must be a finite number ≥ 0, got ${String(noiseMultiplier)}`);
  }
  if (typeof expectedBatchSize !== 'number' || !Number.isFinite(expectedBatchSize) || expectedBatchSize <= 0) {
    throw new TayguardError(
      'ARGUMENT_INVALID',
      `expectedBatchSize must be q·N > 0 (sample rate × pool or dataset size), got ${String(expectedBatchSize)}`,
    );
  }
  if (noise === undefined || typeof noise.sample !== 'function') {
    throw new TayguardError('ARGUMENT_INVALID', 'noise must be a GaussianSource; use createGaussianSource()');
  }
}

/** Zero gradients for every trainable weight (the clipped sum of an empty batch). */
function zeroGrads(model: tf.LayersModel): tf.NamedTensorMap {
  const out: tf.NamedTensorMap = {};
  for (const w of model.trainableWeights) {
    const v = w.read() as tf.Variable;
    out[v.name] = tf.zeros(v.shape);
  }
  return out;
}

/**
 * The privatised, averaged gradient of one DP-SGD step. Inputs are not disposed; the returned `grads` are
 * new tensors owned by the caller. On error nothing is left allocated.
 */
export function privateGradients(
  model: tf.LayersModel,
  x: tf.Tensor,
  yOneHot: tf.Tensor2D,
  opts: PrivateGradientOptions,
): PrivateGradients {
  check(opts);
  const { clipNorm, noiseMultiplier, expectedBatchSize, noise, groups, nested, path, rowWeights } = opts;
  const empty = x.shape[0] === 0;
  if (empty && groups !== undefined && groups.length !== 0) {
    throw new TayguardError('ARGUMENT_INVALID', `groups has ${groups.length} ids but x has no rows`);
  }
  const clipped = empty
    ? { grads: zeroGrads(model), norms: new Float32Array(0), path: 'ghost' as ClipPath, groupIds: undefined }
    : clippedGradientSum(model, x, yOneHot, clipNorm, { path, groups, nested, rowWeights });
  const std = noiseMultiplier * clipNorm;
  const scale = 1 / expectedBatchSize;
  const out: tf.NamedTensorMap = {};
  try {
    for (const [name, g] of Object.entries(clipped.grads)) {
      if (std === 0) {
        out[name] = tf.tidy(() => tf.mul(g, scale));
      } else {
        const z = noise.sample(g.size, std);
        out[name] = tf.tidy(() => tf.mul(tf.add(g, tf.tensor(z, g.shape, 'float32')), scale));
      }
    }
  } catch (err) {
    tf.dispose(Object.values(out));
    throw err;
  } finally {
    tf.dispose(Object.values(clipped.grads));
  }
  const result: PrivateGradients = { grads: out, norms: clipped.norms, path: clipped.path };
  return clipped.groupIds === undefined ? result : { ...result, groupIds: clipped.groupIds };
}
