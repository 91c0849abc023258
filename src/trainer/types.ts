import type { TrainingRecord } from '../record';

/**
 * What happens to a screened record. "trained" means admitted to training: in plain mode it is in the next
 * minibatch; in DP mode it enters the sampling window, where it joins each of the next W steps with
 * probability q. Either way the checkpoint holds its effect or its place in the window.
 */
export type AdmitResult = { readonly kind: 'trained' } | { readonly kind: 'skipped'; readonly reason: string };

export interface Trainer {
  readonly mode: 'plain' | 'dp';
  /** A consumed message's record that the record chain admitted. */
  admit(record: TrainingRecord): Promise<AdmitResult>;
  /** A consumed message that is not trained (malformed, quarantined, duplicate): DP counts it in its schedule. */
  pass(): Promise<void>;
  /** An audit canary: trained like a record, but outside the message schedule. */
  admitCanary(record: TrainingRecord): AdmitResult | Promise<AdmitResult>;
  /** Before a checkpoint: make sure every admitted record's effect (or window slot) is in the state. */
  flush(): Promise<void>;
  /** Timer tick while the stream is quiet (DP: keep stepping so pooled records get their window). */
  tick(): Promise<void>;
  /** Training steps taken since the last checkpoint (zero: the weights did not change). */
  readonly stepsSinceCheckpoint: number;
  markCheckpointed(): void;
  /** Training progress in the unit the audit waits on: DP steps (a record's exposure is W of them). */
  readonly progress: number;
  /** Progress a just-admitted record needs before its exposure is complete. */
  readonly exposure: number;
  /** Serialisable state for the checkpoint's accountant slot (null when there is none). */
  toJSON(): unknown;
  /** The privacy budget status for the HTTP API and metrics (undefined in plain mode). */
  budget(): unknown;
}
