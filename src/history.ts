/**
 * A small bounded history of the sidecar's figures, one sample per durable checkpoint (and one at start-up), for
 * the status page's charts (GET /v1/history). Kept on the server rather than in the browser so that a page opened
 * in the middle of a flood shows how it began; kept in memory only (a restart starts a new history — the model
 * versions in MODEL_DIR carry ε across restarts).
 *
 * Two halves, split at the release boundary (docs/privacy.md):
 *  - public: ε spent, steps, model version, checkpoint sequence and time — exactly what GET /v1/privacy/budget and
 *    GET /v1/model showed at that checkpoint, i.e. what anyone polling them would have recorded;
 *  - operator: exact outcome counts, quarantine by detector and the update gate's counters — released only with
 *    the admin token, like the `detail` of GET /v1/model.
 *
 * Bounded: at `capacity` samples the older half is thinned to every second sample, so the history keeps covering
 * the whole run at a coarser step instead of forgetting its start (memory stays O(capacity)).
 */
import type { OutcomeCounts } from './counts';
import type { BudgetResponse } from './privacy-status';
import type { SidecarStatus } from './http/types';
import type { UpdateGate } from '../train/gate';

export interface PublicSample {
  readonly at: string;
  readonly epsilonSpent: number | null;
  readonly steps: number | null;
  readonly modelVersion: number;
  readonly checkpointSeq: number;
}

export interface OperatorSample {
  readonly at: string;
  readonly trained: number;
  readonly quarantined: number;
  readonly skipped: number;
  readonly quarantineStages: Readonly<Record<string, number>>;
  /** The update gate's counters (null without CANARY_FILE): updates kept and undone, rollbacks, canary accuracy. */
  readonly gate: { readonly accepted: number; readonly rejected: number; readonly rollbacks: number; readonly canaryAccuracy: number | null } | null;
}

/** What one sample is taken from: the sidecar's status and budget at a checkpoint. */
export interface SampleSource {
  readonly at: string;
  readonly epsilonSpent: number | null;
  readonly steps: number | null;
  readonly modelVersion: number;
  readonly checkpointSeq: number;
  readonly counts: OutcomeCounts;
  readonly gate: { readonly accepted: number; readonly rejected: number; readonly rollbacks: number; readonly canaryAccuracy: number | null } | null;
}

export const HISTORY_CAPACITY = 720;

/** One sample from the sidecar's status and (checkpointed) budget at a checkpoint. */
export function sampleOf(at: string, s: SidecarStatus, b: BudgetResponse, gate: UpdateGate | undefined): SampleSource {
  return {
    at,
    epsilonSpent: b.epsilon?.spent ?? null,
    steps: b.mechanism === 'none' ? null : b.mechanism.steps,
    modelVersion: s.modelVersion,
    checkpointSeq: s.checkpointSeq,
    counts: s.counts,
    gate: s.gate && gate ? { accepted: s.gate.accepted, rejected: s.gate.rejected, rollbacks: gate.rollbackCount, canaryAccuracy: gate.servedScore?.accuracy ?? null } : null,
  };
}

export class StatusHistory {
  private samples: { pub: PublicSample; op: OperatorSample }[] = [];

  constructor(readonly capacity = HISTORY_CAPACITY) {}

  record(s: SampleSource): void {
    const pub: PublicSample = { at: s.at, epsilonSpent: s.epsilonSpent, steps: s.steps, modelVersion: s.modelVersion, checkpointSeq: s.checkpointSeq };
    const op: OperatorSample = {
      at: s.at,
      trained: s.counts.trained,
      quarantined: s.counts.quarantined,
      skipped: s.counts.skipped,
      quarantineStages: { ...s.counts.quarantineStages },
      gate: s.gate ? { ...s.gate } : null,
    };
    this.samples.push({ pub, op });
    if (this.samples.length >= this.capacity) {
      const half = Math.floor(this.samples.length / 2);
      this.samples = [...this.samples.slice(0, half).filter((_, i) => i % 2 === 0), ...this.samples.slice(half)];
    }
  }

  publicSamples(): PublicSample[] {
    return this.samples.map((x) => x.pub);
  }

  operatorSamples(): OperatorSample[] {
    return this.samples.map((x) => x.op);
  }
}
