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
  /**
   * With `groups`: nested clipping (record-level DP with a per-source influence bound, docs/privacy.md
   * "Per-source influence under record-level DP"). Each example is clipped first, then the clipped gradients of
   * one group are summed and the sum is clipped again: g_G = clip_C(Σ_{i∈G} clip_C(g_i)). Since clip_C is the
   * projection onto the C-ball, a convex set, it is non-expansive, so one example still moves the total by ≤ C
   * (the record-level sensitivity the accountant charges) and one group by ≤ C however many examples it has.
   * `norms` are then the per-EXAMPLE pre-clip norms and `groupIds` is absent. Default false.
   */
  nested?: boolean;
  /**
   * Optional influence weight wᵢ ∈ [0, 1] per row (docs/privacy.md "Influence by account age"), applied AFTER the
   * inner clip: a per-example unit is wᵢ·clip_C(gᵢ); nested, g_G = clip_C(Σ_{i∈G} wᵢ·clip_C(gᵢ)) with the outer
   * radius C fixed (independent of the weights); a flat group (source-level) unit is w_G·clip_C(Σ_{i∈G} gᵢ) with
   * w_G = min_{i∈G} wᵢ (a per-row weight inside an unclipped sum would not bound anything: gradients can cancel).
   * Every unit still has norm ≤ C and one example still moves the sum by ≤ C·wᵢ ≤ C, so the accountant's charge
   * is unchanged. `norms` stay the UNWEIGHTED pre-clip norms (adaptive clipping reads them). Padding rows have zero
   * gradient, so their weight does not matter. Undefined, or all 1: bit-identical to no weights.
   */
  rowWeights?: Float32Array;
}

export interface ClippedGradients {
  /** Σ_u clip(g_u), keyed by the trainable variable's name (what optimizer.applyGradients expects). */
  grads: tf.NamedTensorMap;
  /** Pre-clip L2 norm per unit: per example, or per group in the order of `groupIds` (per example when nested). */
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
  /** Nested clipping: examples are clipped, then each unit's sum of clipped examples (ClipOptions.nested). */
  nested: boolean;
  /** ClipOptions.rowWeights, when some weight is below 1 (checkRowWeights). */
  weights?: Float32Array;
}

export function buildUnits(batch: number, groups: Int32Array | undefined, nested = false): Units {
  if (groups === undefined) {
    const unitOf = new Int32Array(batch);
    for (let i = 0; i < batch; i++) unitOf[i] = i;
    return { unitOf, count: batch, perExample: true, nested: false };
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
  // Every group a singleton: clip_C(clip_C(g)) = clip_C(g), so nested clipping IS per-example clipping; take
  // the per-example formulas (bit-identical to PRIVACY_UNIT=record without groups).
  if (nested && ids.length === batch) return buildUnits(batch, undefined);
  return { unitOf, count: ids.length, groupIds: ids, perExample: false, nested };
}

/** Number of examples in each unit. */
export function unitSizes(units: Units): Int32Array {
  const size = new Int32Array(units.count);
  for (const u of units.unitOf) size[u] += 1;
  return size;
}

/**
 * The row weights to apply, or undefined when there are none or all are exactly 1 (then nothing is multiplied and
 * the result is bit-identical to unweighted clipping). Refuses a wrong length or a weight outside [0, 1]: a weight
 * above 1 would break the sensitivity bound C.
 */
export function checkRowWeights(weights: Float32Array | undefined, batch: number): Float32Array | undefined {
  if (weights === undefined) return undefined;
  if (!(weights instanceof Float32Array) || weights.length !== batch) {
    throw new TayguardError(
      'ARGUMENT_INVALID',
      `rowWeights must be a Float32Array with one weight per example (batch ${batch}), got length ${(weights as { length?: number } | null)?.length}; pass one weight per row of x`,
    );
  }
  let allOne = true;
  for (let i = 0; i < batch; i++) {
    const w = weights[i];
    if (!(w >= 0 && w <= 1)) {
      throw new TayguardError('ARGUMENT_INVALID', `rowWeights[${i}] is ${w}; influence weights must lie in [0, 1] (a weight above 1 would raise the sensitivity past C)`);
    }
    if (w !== 1) allOne = false;
  }
  return allOne ? undefined : weights;
}

/** w_u = min_{i∈u} wᵢ per unit: the weight of a flat (non-nested) unit. */
export function unitMinWeights(units: Units, weights: Float32Array): Float32Array {
  const out = new Float32Array(units.count).fill(1);
  units.unitOf.forEach((u, i) => (out[u] = Math.min(out[u], weights[i])));
  return out;
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
