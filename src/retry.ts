/**
 * Retry with exponential backoff for the durable steps inside batch handling (quarantine flush, checkpoint).
 * Throwing out of eachBatch would stop kafkajs's consumer for good, so instead batch handling waits here —
 * backpressure: nothing new is consumed while nothing can be made durable — heartbeating so that the group keeps
 * the partition, until the step succeeds or the sidecar is stopping. Every failure is reported (onError) so
 * that it is visible on /readyz and /metrics, not only in the log.
 */
export interface RetryOptions {
  /** Give up (resolve false) when this turns true: stopping, or the batch was revoked. */
  readonly abandon: () => boolean;
  readonly onError: (error: unknown, attempt: number, nextDelayMs: number) => void;
  /** Called at least every second while waiting (the consumer heartbeat). Errors are ignored. */
  readonly beat?: () => Promise<void>;
  readonly initialMs?: number;
  readonly maxMs?: number;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Resolves true once `fn` succeeded, false when abandoned. Never rejects. */
export async function retryWithBackoff(fn: () => Promise<unknown>, o: RetryOptions): Promise<boolean> {
  let delay = o.initialMs ?? 250;
  for (let attempt = 1; ; attempt++) {
    try {
      await fn();
      return true;
    } catch (e) {
      o.onError(e, attempt, delay);
    }
    for (let waited = 0; waited < delay; waited += 1000) {
      if (o.abandon()) return false;
      await sleep(Math.min(1000, delay - waited));
      await o.beat?.().catch(() => undefined);
    }
    if (o.abandon()) return false;
    delay = Math.min(delay * 2, o.maxMs ?? 30_000);
  }
}
