/**
 * Event time from the broker, not from the record (issue 10, "trust the broker and the deployment, not the
 * record"). A producer-supplied `ts` is taken as sent only within MAX_CLOCK_SKEW_MS of the Kafka message timestamp
 * (set by the producer client or, with `message.timestamp.type=LogAppendTime`, by the broker — and bounded by the
 * broker's `log.message.timestamp.difference.max.ms` either way); outside it, it is clamped to the nearest edge and
 * counted. Without a `ts`, the record's time is the Kafka timestamp. Before this, one record dated in the far
 * future moved the screens' monotone event clock (filters/trust.ts) years ahead: every windowed screen froze, an
 * established account could send only its cap ever again, and a new user stayed "new" for good.
 *
 * The Kafka timestamp is itself the producer's to set (CreateTime, the default), so it is trusted no further than
 * the sidecar's own clock: a message cannot have been produced after it was consumed, so a timestamp more than
 * MAX_CLOCK_SKEW_MS ahead of the wall clock is clamped to that edge and counted (the red-team benchmark's clock
 * hijack sent a CreateTime ten years ahead and froze every windowed screen).
 */
import type { TrainingRecord } from '../core/record';

export function withEventTime(record: TrainingRecord, brokerTimestamp: string | undefined, maxSkewMs: number, onClamp: () => void, now: number = Date.now()): TrainingRecord {
  const sent = brokerTimestamp === undefined ? NaN : Number(brokerTimestamp);
  if (!Number.isFinite(sent) || sent <= 0) return record; // no broker time (a replay from memory): as sent
  const broker = Math.min(sent, now + maxSkewMs);
  if (broker !== sent) onClamp();
  if (record.ts === undefined) return { ...record, ts: broker };
  // Neither ahead of the wall clock by more than the skew, whatever the Kafka timestamp says.
  const clamped = Math.min(Math.min(broker, now) + maxSkewMs, Math.max(broker - maxSkewMs, record.ts));
  if (clamped === record.ts) return record;
  if (broker === sent) onClamp();
  return { ...record, ts: clamped };
}
