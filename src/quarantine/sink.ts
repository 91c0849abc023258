/**
 * A quarantine sink in which one message the broker refuses cannot block every checkpoint forever (issue 14:
 * an envelope over message.max.bytes was retried before each checkpoint, so nothing could checkpoint again).
 * A batch the broker refuses for good (not a retriable error: MESSAGE_TOO_LARGE, INVALID_RECORD, …) is sent one
 * message at a time; a message refused on its own is replaced by its minimal envelope (reasons, origin, size and
 * sha256 of the stored original — never dropped), counted in tayguard_quarantine_envelopes_reduced_total.
 * Retriable errors (broker down) still propagate: the flush is retried with backoff and /readyz says so.
 */
import { Counter } from 'prom-client';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';
import type { QuarantineMessage, QuarantineSink } from '../pipeline';
import { minimalEnvelope } from './envelope';

const REFUSALS = new Set(['MESSAGE_TOO_LARGE', 'RECORD_LIST_TOO_LARGE', 'INVALID_RECORD', 'CORRUPT_MESSAGE', 'INVALID_REQUIRED_ACKS', 'POLICY_VIOLATION']);

/** The broker refused the content itself (retrying the same bytes cannot help). */
export function refusedForGood(error: unknown): boolean {
  for (let e = error as { type?: string; retriable?: boolean; cause?: unknown } | undefined, depth = 0; e && depth < 8; e = e.cause as typeof e, depth++) {
    if (e.type && REFUSALS.has(e.type)) return true;
  }
  return false;
}

export function resilientSink(send: (messages: readonly QuarantineMessage[]) => Promise<void>, metrics: Metrics, logger: Logger): QuarantineSink {
  const reduced =
    (metrics.registry.getSingleMetric('tayguard_quarantine_envelopes_reduced_total') as Counter | undefined) ??
    new Counter({ name: 'tayguard_quarantine_envelopes_reduced_total', help: 'Quarantine envelopes the broker refused and that were sent without the original (reasons, origin, size and sha256 kept)', registers: [metrics.registry] });
  return {
    async send(messages) {
      try {
        await send(messages);
        return;
      } catch (e) {
        if (!refusedForGood(e)) throw e;
      }
      for (const m of messages) {
        try {
          await send([m]);
        } catch (e) {
          if (!refusedForGood(e)) throw e;
          const why = `the broker refused the full envelope: ${(e as Error).message}`;
          await send([{ key: m.key, value: minimalEnvelope(m.value, why) }]);
          reduced.inc();
          logger.warn({ key: m.key, err: e }, 'quarantine envelope refused by the broker; sent without the original (see recordOmitted)');
        }
      }
    },
  };
}
