/**
 * Event time from the broker, not from the record (issue 10, "trust the broker and the deployment, not the
 * record"). A producer-supplied `ts` is taken as sent only within MAX_CLOCK_SKEW_MS of the Kafka message timestamp
 * (set by the producer client or, with `message.timestamp.type=LogAppendTime`, by the broker — and bounded by the
 * broker's `log.message.timestamp.difference.max.ms` either way); outside it, it is clamped to the nearest edge and
 * counted. Without a `ts`, the record's time is the Kafka timestamp. Before this, one record dated in the far
 * future moved the screens' monotone event clock (filters/trust.ts) years ahead: every windowed screen froze, an
 * established account could send only its cap ever again, and a new user stayed "new" for good.
 */
import type { TrainingRecord } from '../core/record';

export function withEventTime(record: TrainingRecord, brokerTimestamp: string | undefined, maxSkewMs: number, onClamp: () => void): TrainingRecord {
  const broker = brokerTimestamp === undefined ? NaN : Number(brokerTimestamp);
  if (!Number.isFinite(broker) || broker <= 0) return record; // no broker time (a replay from memory): as sent
  if (record.ts === undefined) return { ...record, ts: broker };
  const clamped = Math.min(broker + maxSkewMs, Math.max(broker - maxSkewMs, record.ts));
  if (clamped === record.ts) return record;
  onClamp();
  return { ...record, ts: clamped };
}
