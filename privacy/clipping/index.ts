/**
 * Per-example gradient clipping for DP-SGD (Abadi et al. 2016, Algorithm 1): returns Σ_u clip_C(g_u) over
 * privacy units u (examples, or groups of examples; with `nested`, the record-level units of
 * Σ_G clip_C(Σ_{i∈G} clip_C(g_i)) — ghost-nested.ts), WITHOUT noise — the caller adds N(0, σ²C²) noise
 * (privacy/noise.ts) and divides by the expected batch size.
 *
 *   path 'ghost'      — ghost norms (Goodfellow 2015) for chains of Dense/Embedding/Flatten/Dropout/Activation
 *                       layers: one forward + one backward pass, one matmul per layer for the clipped sum.
 *   path 'microbatch' — any model: one tf.variableGrads per unit.
 *   path 'auto'       — ghost when every layer is supported, else microbatch.
 * `rowWeights` scales each example after its clip (influence by account age, types.ts ClipOptions.rowWeights).
 */
import { TayguardError } from '../../core/errors';
import { tf } from '../../core/tf';
import { ghostClippedSum } from './ghost';
import { microbatchClippedSum } from './microbatch';
import { analyseGhost } from './plan';
import { buildUnits, checkClipNorm, checkRowWeights, type ClipOptions, type ClippedGradients } from './types';

export type { ClipOptions, ClippedGradients, ClipPath } from './types';
export { analyseGhost } from './plan';

export function clippedGradientSum(
  model: tf.LayersModel,
  x: tf.Tensor,
  yOneHot: tf.Tensor2D,
  clipNorm: number,
  opts: ClipOptions = {},
): ClippedGradients {
  checkClipNorm(clipNorm);
  const batch = x.shape[0];
  if (x.rank < 1 || batch === 0) {
    throw new TayguardError('ARGUMENT_INVALID', `x must have a non-empty batch axis, got shape [${x.shape}]`);
  }
  if (yOneHot.rank !== 2 || yOneHot.shape[0] !== batch) {
    throw new TayguardError(
      'ARGUMENT_INVALID',
      `yOneHot must be [batch=${batch}, classes], got shape [${yOneHot.shape}]; one-hot encode the labels`,
    );
  }
  const expected = model.inputs.length === 1 ? model.inputs[0].shape : undefined;
  if (
    expected !== undefined &&
    (expected.length !== x.rank || expected.some((d, k) => k > 0 && d !== null && d !== x.shape[k]))
  ) {
    throw new TayguardError(
      'ARGUMENT_INVALID',
      `x has shape [${x.shape}] but the model expects [${expected.map((d) => d ?? 'batch')}]; reshape the inputs`,
    );
  }
  if (model.trainableWeights.length === 0) {
    throw new TayguardError('ARGUMENT_INVALID', 'model has no trainable weights; unfreeze at least one layer');
  }
  if (opts.nested === true && opts.groups === undefined) {
    throw new TayguardError('ARGUMENT_INVALID', 'nested clipping needs groups (one source id per example); pass groups or drop nested');
  }
  const weights = checkRowWeights(opts.rowWeights, batch);
  const units = { ...buildUnits(batch, opts.groups, opts.nested === true), ...(weights ? { weights } : {}) };
  const wanted = opts.path ?? 'auto';
  if (wanted !== 'auto' && wanted !== 'ghost' && wanted !== 'microbatch') {
    throw new TayguardError('ARGUMENT_INVALID', `path must be 'auto', 'ghost' or 'microbatch', got ${String(wanted)}`);
  }
  if (wanted === 'microbatch') return microbatchClippedSum(model, x, yOneHot, clipNorm, units);
  const analysis = analyseGhost(model);
  if (analysis.plan !== undefined) return ghostClippedSum(analysis.plan, x, yOneHot, clipNorm, units);
  if (wanted === 'ghost') {
    throw new TayguardError(
      'ARGUMENT_INVALID',
      `ghost clipping is not available for this model: ${analysis.reason}; use path 'auto' or 'microbatch'`,
    );
  }
  return microbatchClippedSum(model, x, yOneHot, clipNorm, units);
}
