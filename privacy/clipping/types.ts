/**
 * Shared contract of the per-example clipping paths (DP-SGD, Abadi et al. 2016, Algorithm 1 lines 5-7):
 * both paths return Σ_u clip(g_u) where u is a "privacy unit" (one example, or one group of examples when
 * `groups` is given) and clip(g) = g · min(1, C/‖g‖₂), the norm taken over ALL trainable parameters.
 */
import { TayguardError } from '../../core/errors';
import type { tf } from '../../core/tf';

export type ClipPath = 'ghost' | 'microbatch';

export interface ClipOptions {
  /** 'auto' (default) takes the ghost path when every layer is supported, else the micro-batch fallback. */
  path?: 'auto' | ClipPath;
  /**
   * Optional group id per example (source-level privacy): examples sharing an id are summed and clipped as
   * one unit, g_G = Σ_{i∈G} g_i.
   */
  groups?: Int32Array;
}

export interface ClippedGradients {
  /** Σ_u clip(g_u), keyed by the trainable variable's name (what optimizer.applyGradients expects). */
  grads: tf.NamedTensorMap;
  /** Pre-clip L2 norm per unit: per example, or per group in the order of `groupIds`. */
  norms: Float32Array;
  path: ClipPath;
  /** With `groups`: the group id of each entry of `norms` (ascending ids). Absent without groups. */
  groupIds?: Int32Array;
}

/** Privacy units of a batch: example i belongs to unit unitOf[i]; units are numbered 0..count-1. */
export interface Units {
  unitOf: Int32Array;
  count: number;
  groupIds?: Int32Array;
  /** True when each example is its own unit (no groups), which allows the cheaper per-row formulas. */
  perExample: boolean;
}

export function buildUnits(batch: number, groups: Int32Array | undefined): Units {
  if (groups === undefined) {
    const unitOf = new Int32Array(batch);
    for (let i = 0; i < batch; i++) unitOf[i] = i;
    return { unitOf, count: batch, perExample: true };
  }
  if (!(groups instanceof Int32Array) || groups.length !== batch) {
    throw new TayguardError(
      'ARGUMENT_INVALID',
      `groups must be an Int32Array with one id per example (batch ${batch}), got length ${groups?.length}; ` +
        'pass one group id per row of x',
    );
  }
  const ids = Int32Array.from(new Set(groups)).sort();
  const index = new Map<number, number>();
  ids.forEach((id, k) => index.set(id, k));
  const unitOf = new Int32Array(batch);
  for (let i = 0; i < batch; i++) unitOf[i] = index.get(groups[i]) as number;
  return { unitOf, count: ids.length, groupIds: ids, perExample: false };
}

export function checkClipNorm(clipNorm: number): void {
  if (!Number.isFinite(clipNorm) || clipNorm <= 0) {
    throw new TayguardError('ARGUMENT_INVALID', `clipNorm must be a finite number > 0, got ${clipNorm}; use e.g. 1.0`);
  }
}

/** A NaN/Inf norm would silently poison the whole sum (and the privacy accounting's sensitivity bound). */
export function checkFiniteNorms(norms: Float32Array, grads: tf.NamedTensorMap): void {
  for (let u = 0; u < norms.length; u++) {
    if (!Number.isFinite(norms[u])) {
      for (const t of Object.values(grads)) t.dispose();
      throw new TayguardError(
        'ARGUMENT_INVALID',
        `per-example gradient norm of unit ${u} is ${norms[u]}; the loss is not finite — check the inputs for ` +
          'NaN/Inf and that yOneHot rows are valid label distributions',
      );
    }
  }
}
