/**
 * What a restart takes from the newest checkpoint, read and checked in one place: the checkpoint must belong to
 * the configured model, and its privacy mode must match the configuration (a ledger is never dropped, and a model
 * trained without DP is never given a guarantee after the fact).
 */
import type { Config } from '../config';
import { TayguardError } from '../errors';
import type { OutcomeCounts } from '../counts';
import type { DedupState } from '../dedup';
import type { AuditState } from '../audit';
import type { DetectorChainState } from '../../filters';
import type { UpdateGateState } from '../../filters/update-gate';
import type { WeightsSnapshot } from '../../middleware/learner';
import type { WeightAverageState } from '../../middleware/weight-average';
import type { Checkpoint } from './store';

export interface ModelIdentity {
  readonly task: string;
  readonly inputDim: number;
  readonly numClasses: number;
}

export interface ResumedState {
  readonly seq: number;
  readonly modelVersion: number;
  readonly createdAt: string;
  readonly weights: WeightsSnapshot;
  /** The served moving average stored after the weights (AVERAGE_DECAY), with its layout. */
  readonly average?: { readonly state: WeightAverageState; readonly weights: WeightsSnapshot };
  readonly counts: OutcomeCounts;
  readonly dedup: DedupState;
  /** The trainer's privacy ledger and sampling pool; null for plain SGD. */
  readonly trainer: unknown;
  readonly screens?: DetectorChainState;
  readonly audit?: AuditState;
  readonly gate?: UpdateGateState;
}

export function resumeState(latest: Checkpoint, config: Config, want: ModelIdentity): ResumedState {
  const h = latest.header;
  const dir = config.checkpoint.dir;
  if (h.model.task !== want.task || h.model.inputDim !== want.inputDim || h.model.numClasses !== want.numClasses) {
    throw new TayguardError(
      'CONFIG_INVALID',
      `the checkpoint in ${dir} is for a ${h.model.task} model with ${h.model.inputDim} inputs and ${h.model.numClasses} classes, but the configuration asks for ${want.task}/${want.inputDim}/${want.numClasses}: restore the old settings or use a new CHECKPOINT_DIR`,
    );
  }
  const counts = h.counts as OutcomeCounts;
  if (h.accountant !== null && config.privacy === null) {
    throw new TayguardError('CONFIG_INVALID', `the checkpoint in ${dir} was trained with DP on; turning DP_ENABLED off on the same checkpoint would drop its privacy ledger: use a new CHECKPOINT_DIR`);
  }
  if (h.accountant === null && config.privacy !== null && counts && counts.trained > 0) {
    throw new TayguardError('CONFIG_INVALID', `the checkpoint in ${dir} was trained without DP; its model cannot be given a privacy guarantee now: use a new CHECKPOINT_DIR (or DP_ENABLED=false)`);
  }
  const average = h.extra.average as (WeightAverageState & { offset: number }) | undefined;
  if (average && !(Number.isInteger(average.offset) && average.offset > 0 && average.offset <= latest.weights.length)) {
    throw new TayguardError('CHECKPOINT_CORRUPT', `the checkpoint ${latest.file} names averaged weights at byte ${String(average.offset)} of ${latest.weights.length}: point CHECKPOINT_DIR elsewhere to start fresh`);
  }
  return {
    seq: h.seq,
    modelVersion: Number(h.extra.modelVersion ?? 0),
    createdAt: h.createdAt,
    weights: { specs: h.weightSpecs, data: average ? latest.weights.subarray(0, average.offset) : latest.weights },
    average: average && { state: { updates: average.updates }, weights: { specs: h.weightSpecs, data: latest.weights.subarray(average.offset) } },
    counts,
    dedup: h.dedup as DedupState,
    trainer: h.accountant,
    screens: h.extra.screens as DetectorChainState | undefined,
    audit: h.extra.audit as AuditState | undefined,
    gate: h.extra.gate as UpdateGateState | undefined,
  };
}
