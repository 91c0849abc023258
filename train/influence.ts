/**
 * Influence by account age (docs/privacy.md "Influence by account age"; docs/threat-model.md): a per-record weight
 *
 *   wᵢ = max(w_min, min(1, ageᵢ / A)),   ageᵢ = max(0, tsᵢ − sourceMeta.createdAt)
 *
 * that the DP step multiplies into the record's clipped gradient (wᵢ·clip_C(gᵢ), privacy/clipping ClipOptions.
 * rowWeights). Per-source clipping (SOURCE_CLIP) bounds one account to C per step; it does not slow a flood spread
 * over many brand-new accounts. The deployment's own word on the account's age (`sourceMeta`, set by the producer
 * from its account records — docs/threat-model.md "What tayguard assumes") does: a record from an account created
 * an hour ago pulls with w_min of a mature account's strength.
 *
 * The weight is a function of the record ALONE (its `ts`, its `sourceMeta`) and of fixed configuration, so it is a
 * per-record transformation inside the guarantee: nothing about who is in a step, or about any other record's
 * contribution, depends on it, and since wᵢ ≤ 1 one record still moves a step by ≤ C (privacy/clipping/types.ts).
 *
 * - `ts` is the event time the pipeline set (src/event-time.ts): clamped to ≤ wall clock + MAX_CLOCK_SKEW_MS, so a
 *   record cannot claim more age than it has plus the skew. A `createdAt` after `ts` gives age 0.
 * - `verified: true` gives 1: the deployment vouches for the account beyond its age.
 * - No `sourceMeta.createdAt` gives 1: nothing is vouched, so nothing is said about age (a deployment that sends
 *   no sourceMeta gets no protection from this — documented in docs/threat-model.md).
 * - `createdAt` present but no `ts` (a replay without broker time) or an unparsable `createdAt`: the age cannot be
 *   established, so the weight is w_min, the conservative end.
 */
import type { TrainingRecord } from '../core/record';

export interface InfluenceOptions {
  /** A: the account age at which a record gets full weight (INFLUENCE_MATURE_DAYS, in ms). */
  readonly matureMs: number;
  /** w_min ∈ [0, 1]: the weight of a brand-new account's record (INFLUENCE_MIN_WEIGHT; 1 turns the weighting off). */
  readonly minWeight: number;
}

export function influenceWeight(record: Pick<TrainingRecord, 'ts' | 'sourceMeta'>, o: InfluenceOptions): number {
  const meta = record.sourceMeta;
  if (meta?.verified === true || meta?.createdAt === undefined) return 1;
  const created = Date.parse(meta.createdAt);
  if (record.ts === undefined || !Number.isFinite(created) || !Number.isFinite(record.ts)) return o.minWeight;
  const age = Math.max(0, record.ts - created);
  return Math.max(o.minWeight, Math.min(1, age / o.matureMs));
}

/**
 * One weight per row of a step: the records', then 1 for each padding row (zero gradient, so any weight gives the
 * same sum). Undefined when influence weighting is off, or when every weight is 1 (then the clipping is
 * bit-identical to unweighted).
 */
export function stepWeights(records: readonly TrainingRecord[], padding: number, o: InfluenceOptions | undefined): Float32Array | undefined {
  if (o === undefined || o.minWeight >= 1) return undefined;
  const out = new Float32Array(records.length + padding).fill(1);
  let any = false;
  records.forEach((r, i) => {
    out[i] = influenceWeight(r, o);
    if (out[i] !== 1) any = true;
  });
  return any ? out : undefined;
}
