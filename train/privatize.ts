/**
 * The privatize stage of a DP-SGD step (Abadi et al. 2016): per-example (or per-source) clipping of the step's
 * gradients and Gaussian noise from the trainer's source, divided by the fixed expected batch q·W·S. Under
 * PRIVACY_UNIT=record with SOURCE_CLIP=on (the default) the clipping is nested — each record to C, then the sum
 * of one source's sampled records to C again — so one source moves a step by at most C however many records it
 * sends, at the same record-level charge (docs/privacy.md, "Per-source influence under record-level DP"). It sets
 * `ctx.gradients`, which the update stage (train/update.ts) applies. Built by DpTrainer (train/dp.ts); where it
 * sits in the step: train/step-order.ts. With INFLUENCE_MIN_WEIGHT < 1 each record's clipped gradient is also
 * scaled by a weight from its account's age (train/influence.ts), inside the same sensitivity bound.
 */
import type { Learner } from '../middleware/learner';
import type { TrainingRecord } from '../core/record';
import { privateGradients, type AdaptiveClipper, type GaussianSource, type PrivacyUnit } from '../privacy';
import type { StepStage } from './step';
import { stepWeights, type InfluenceOptions } from './influence';

export interface PrivatizeOptions {
  readonly unit: PrivacyUnit;
  /** The fixed clip norm and noise multiplier (adaptive clipping, when on, supplies its own). */
  readonly clipNorm: number;
  readonly noiseMultiplier: number;
  /**
   * PRIVACY_UNIT=record only: nested clipping by source, Σ_s clip_C(Σ_{i∈s∩B} clip_C(g_i)). Projection onto the
   * C-ball is non-expansive, so zeroing one record still moves the sum by ≤ ‖clip_C(g_x)‖ ≤ C (the sensitivity
   * the accountant is charged for, unchanged), and any one source adds at most C per step (Ma, Zhu, Hsu 2019).
   * Source mode ignores it: its summand clip_C(Σ g_i) already bounds a source to C.
   */
  readonly sourceClip: boolean;
  /**
   * Influence by account age (train/influence.ts): each record's clipped gradient times wᵢ ∈ [w_min, 1], computed
   * from the record alone, before the nesting. Every unit keeps norm ≤ C (wᵢ ≤ 1, outer radius C fixed), so one
   * record still moves the sum by ≤ C·wᵢ ≤ C and the charge is unchanged. Undefined: off.
   */
  readonly influence?: InfluenceOptions;
  /** q·W·S: the divisor, fixed so that it does not depend on the data. */
  readonly expectedBatchSize: number;
  readonly noise: GaussianSource;
  /** Adaptive clipping (Andrew et al. 2021), when configured. */
  readonly clipper?: AdaptiveClipper;
}

export function privatizeStage(learner: Learner, o: PrivatizeOptions): StepStage {
  return {
    name: 'privatize',
    handle: (ctx, next) => {
      const nested = o.unit === 'record' && o.sourceClip;
      const groups = o.unit === 'source' || nested ? sourceGroups(ctx.records, ctx.padding) : undefined;
      const rowWeights = stepWeights(ctx.records, ctx.padding, o.influence);
      // With adaptive clipping the accountant is still charged σ for the whole step; the gradient gets the
      // slightly larger σ_Δ because the noisy count of unclipped examples shares the step (Andrew et al. 2021).
      const { grads, norms, groupIds } = privateGradients(learner.model, ctx.x, ctx.y, {
        clipNorm: o.clipper?.clipNorm ?? o.clipNorm,
        noiseMultiplier: o.clipper?.gradientNoiseMultiplier ?? o.noiseMultiplier,
        expectedBatchSize: o.expectedBatchSize,
        noise: o.noise,
        ...(groups ? { groups, nested } : {}),
        ...(rowWeights ? { rowWeights } : {}),
      });
      // Adaptive clipping counts the records' units only: padding rows have norm 0 and would bias the quantile.
      // Nested clipping returns per-record norms: C is then the records' clip norm, adapted to their quantile.
      // The norms are the unweighted pre-clip ones: the influence weights do not move C.
      if (o.clipper) o.clipper.update(realUnitNorms(norms, groupIds, ctx.records.length, nested ? undefined : groups));
      ctx.gradients = grads;
      return next();
    },
  };
}

/**
 * Group ids for source-level clipping: the records of one source in a step are summed, then clipped together.
 * Each padding row is a unit of its own (its gradient is zero, so it adds nothing), and so is a record without a
 * source (the schema refuses an empty source; this only keeps such a record from merging with others). Audit
 * canaries carry one reserved source each (src/audit/auditor.ts), so each is its own unit too.
 */
function sourceGroups(records: readonly TrainingRecord[], padding: number): Int32Array {
  const ids = new Map<string, number>();
  const out = new Int32Array(records.length + padding);
  let next = 0;
  records.forEach((r, i) => {
    const own = typeof r.source !== 'string' || r.source.length === 0;
    let id = own ? undefined : ids.get(r.source);
    if (id === undefined) {
      id = next++;
      if (!own) ids.set(r.source, id);
    }
    out[i] = id;
  });
  for (let i = 0; i < padding; i++) out[records.length + i] = next + i;
  return out;
}

/** The pre-clip norms of the records' units (records come first, so their units have the lowest ids). */
function realUnitNorms(norms: Float32Array, groupIds: Int32Array | undefined, records: number, groups: Int32Array | undefined): Float32Array {
  if (groupIds === undefined || groups === undefined) return norms.subarray(0, Math.min(records, norms.length));
  let realUnits = 0;
  for (let i = 0; i < records; i++) realUnits = Math.max(realUnits, groups[i] + 1);
  return norms.filter((_, k) => groupIds[k] < realUnits);
}
