/**
 * Whether a stop left everything durable (issue 14: SIGTERM after a consumer crash exited 1 without a final
 * checkpoint). `tayguard serve` exits 0 only when every handled record is in a written checkpoint; otherwise 1
 * with SHUTDOWN_INCOMPLETE and what was not made durable (those records are redelivered at the next start:
 * their offsets were never committed, so nothing is lost, but the operator should know why).
 */
import type { ErrorCode } from './errors';

export interface StopOutcome {
  readonly clean: boolean;
  readonly code?: ErrorCode;
  readonly message: string;
}

export function stopOutcome(o: {
  timedOut: boolean;
  checkpointError: unknown;
  pipeline?: { handledSinceCheckpoint: number };
  trainer?: { stepsSinceCheckpoint: number };
}): StopOutcome {
  const handled = o.pipeline?.handledSinceCheckpoint ?? 0;
  const steps = o.trainer?.stepsSinceCheckpoint ?? 0;
  if (handled === 0 && steps === 0) return { clean: true, message: 'stopped: everything handled is in the last checkpoint' };
  const why = o.timedOut
    ? 'the stop deadline passed before the final checkpoint finished'
    : `the final checkpoint failed: ${(o.checkpointError as Error)?.message ?? String(o.checkpointError ?? 'unknown')}`;
  return {
    clean: false,
    code: 'SHUTDOWN_INCOMPLETE',
    message: `${why}; ${handled} record(s) handled since the last checkpoint are not durable and will be redelivered at the next start (their offsets were not committed). Check CHECKPOINT_DIR and the broker`,
  };
}
