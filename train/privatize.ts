/**
 * The privatize stage of a DP-SGD step (Abadi et al. 2016): per-example (or per-source) clipping of the step's
 * gradients and Gaussian noise from the trainer's source, divided by the fixed expected batch q·W·S. It sets
 * `ctx.gradients`, which the update stage (train/update.ts) applies. Built by DpTrainer (train/dp.ts); where it
 * sits in the step: train/step-order.ts.
 */
import type { Learner } from '../middleware/learner';
import type { TrainingRecord } from '../core/record';
import { privateGradients, type AdaptiveClipper, type GaussianSource, type PrivacyUnit } from '../privacy';
import type { StepStage } from './step';

export interface PrivatizeOptions {
  readonly unit: PrivacyUnit;
  /** The fixed clip norm and noise multiplier (adaptive clipping, when on, supplies its own). */
  readonly clipNorm: number;
  readonly noiseMultiplier: number;
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
      const groups = o.unit === 'source' ? sourceGroups(ctx.records, ctx.padding) : undefined;
      // With adaptive clipping the accountant is still charged σ for the whole step; the gradient gets the
      // slightly larger σ_Δ because the noisy count of unclipped examples shares the step (Andrew et al. 2021).
      const { grads, norms, groupIds } = privateGradients(learner.model, ctx.x, ctx.y, {
        clipNorm: o.clipper?.clipNorm ?? o.clipNorm,
        noiseMultiplier: o.clipper?.gradientNoiseMultiplier ?? o.noiseMultiplier,
        expectedBatchSize: o.expectedBatchSize,
        noise: o.noise,
        ...(groups ? { groups } : {}),
      });
      // Adaptive clipping counts the records' units only: padding rows have norm 0 and would bias the quantile.
      if (o.clipper) o.clipper.update(realUnitNorms(norms, groupIds, ctx.records.length, groups));
      ctx.gradients = grads;
      return next();
    },
  };
}

/**
 * Group ids for source-level clipping: the records of one source in a step are summed, then clipped together.
 * Each padding row is a unit of its own (its gradient is zero, so it adds nothing).
 */
function sourceGroups(records: readonly TrainingRecord[], padding: number): Int32Array {
  const ids = new Map<string, number>();
  const out = new Int32Array(records.length + padding);
  records.forEach((r, i) => {
    let id = ids.get(r.source);
    if (id === undefined) {
      id = ids.size;
      ids.set(r.source, id);
    }
    out[i] = id;
  });
  for (let i = 0; i < padding; i++) out[records.length + i] = ids.size + i;
  return out;
}

/** The pre-clip norms of the records' units (records come first, so their units have the lowest ids). */
function realUnitNorms(norms: Float32Array, groupIds: Int32Array | undefined, records: number, groups: Int32Array | undefined): Float32Array {
  if (groupIds === undefined || groups === undefined) return norms.subarray(0, Math.min(records, norms.length));
  let realUnits = 0;
  for (let i = 0; i < records; i++) realUnits = Math.max(realUnits, groups[i] + 1);
  return norms.filter((_, k) => groupIds[k] < realUnits);
}
