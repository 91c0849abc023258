/**
 * Offsets that go backwards (issue 14). A checkpoint's watermark says "every offset up to here is handled"; if
 * the topic is recreated or the cluster replaced while CHECKPOINT_DIR survives, the new log starts again at 0 and
 * every new record would be dropped as a "redelivery" until the offsets pass the old watermark. That is detected
 * here — the broker's end offset of a partition is below the checkpoint's next offset, or the partition is gone —
 * and never guessed away: with OFFSET_RESET_POLICY=fail (default) tayguard stops with OFFSETS_RESET and the
 * operator decides; with OFFSET_RESET_POLICY=rebase the watermark is moved to the broker's log start (counted,
 * logged) and the new log is trained on. A recreated topic that has already grown past the old watermark cannot
 * be told apart from the old one by offsets alone.
 */
import type { Deduplicator } from '../dedup';
import type { Logger } from '../logger';
import { TayguardError } from '../errors';
import type { Health } from '../health';
import type { ConsumedBatch, RecordConsumer } from './client';

export interface PartitionRange {
  readonly partition: number;
  readonly low: bigint;
  readonly high: bigint;
}

export interface OffsetReset {
  readonly partition: number;
  /** The checkpoint's next offset (one past its watermark). */
  readonly expected: bigint;
  /** The broker's end offset, or null when the partition no longer exists. */
  readonly brokerEnd: bigint | null;
  readonly brokerStart: bigint;
}

/** Partitions whose broker log ends below the checkpoint's next offset. */
export function findResets(dedup: Deduplicator, topic: string, ranges: readonly PartitionRange[]): OffsetReset[] {
  const out: OffsetReset[] = [];
  for (const next of dedup.nextOffsets(topic)) {
    const expected = BigInt(next.offset);
    if (expected <= 0n) continue;
    const range = ranges.find((r) => r.partition === next.partition);
    if (!range) out.push({ partition: next.partition, expected, brokerEnd: null, brokerStart: 0n });
    else if (range.high < expected) out.push({ partition: next.partition, expected, brokerEnd: range.high, brokerStart: range.low });
  }
  return out;
}

export function resetError(topic: string, resets: readonly OffsetReset[]): TayguardError {
  const where = resets
    .map((r) => `partition ${r.partition} ${r.brokerEnd === null ? 'does not exist' : `ends at offset ${r.brokerEnd}`} but the checkpoint already handled up to ${r.expected - 1n}`)
    .join('; ');
  return new TayguardError(
    'OFFSETS_RESET',
    `the broker's offsets for ${topic} went backwards (${where}): the topic was recreated or the cluster replaced while CHECKPOINT_DIR kept the old watermark, ` +
      'so new records would be mistaken for redeliveries. Nothing was consumed. Choose: set OFFSET_RESET_POLICY=rebase and restart to train on the new log ' +
      'from its start (model, counts and ε are kept; the re-base is logged and counted in tayguard_offset_resets_total), or point CHECKPOINT_DIR at an empty directory to start over.',
  );
}

/**
 * Act on detected resets: throw OFFSETS_RESET (policy fail), or re-base each partition's watermark to the broker's
 * log start (policy rebase). Returns true when it re-based something.
 */
export function applyResetPolicy(
  o: { dedup: Deduplicator; topic: string; policy: 'fail' | 'rebase'; health: Health; logger: Logger },
  resets: readonly OffsetReset[],
): boolean {
  if (resets.length === 0) return false;
  o.health.offsetResetsTotal.inc({ policy: o.policy }, resets.length);
  const error = resetError(o.topic, resets);
  if (o.policy === 'fail') throw error;
  for (const r of resets) o.dedup.rebase(o.topic, r.partition, r.brokerStart);
  o.logger.warn(
    { resets: resets.map((r) => ({ partition: r.partition, checkpointNext: String(r.expected), brokerEnd: r.brokerEnd === null ? null : String(r.brokerEnd), rebasedTo: String(r.brokerStart) })) },
    'OFFSET_RESET_POLICY=rebase: watermarks re-based to the broker\'s log start; the new log is trained on as new records',
  );
  return true;
}

export interface OffsetContext {
  readonly dedup: Deduplicator;
  readonly topic: string;
  readonly policy: 'fail' | 'rebase';
  readonly health: Health;
  readonly logger: Logger;
  readonly consumer?: RecordConsumer;
}

/**
 * At start, after subscribing: compare the broker's offsets with the checkpoint's watermarks. Throws OFFSETS_RESET
 * under OFFSET_RESET_POLICY=fail. When the broker cannot tell us (yet), the per-batch check below still applies.
 */
export async function checkOffsetsAtStart(consumer: RecordConsumer, o: OffsetContext): Promise<void> {
  if (o.dedup.nextOffsets(o.topic).length === 0) return;
  let ranges: PartitionRange[];
  try {
    ranges = await consumer.partitionOffsets(o.topic);
  } catch (e) {
    o.logger.warn({ err: e }, 'could not read the broker\'s offsets at start; offset resets are still detected per batch');
    return;
  }
  applyResetPolicy(o, findResets(o.dedup, o.topic, ranges));
}

/**
 * Per batch: a partition whose high watermark is below the checkpoint's next offset was reset under us (topic
 * recreated while running). Returns false when consumption of the topic has been halted (policy fail): the
 * sidecar stays up for predictions, /readyz is 503 with OFFSETS_RESET, and the operator restarts with a choice.
 */
export function checkBatchOffsets(batch: ConsumedBatch, o: OffsetContext): boolean {
  const mark = o.dedup.watermark(batch.topic, batch.partition);
  if (mark === undefined || BigInt(batch.highWatermark) > mark) return true;
  const first = batch.messages[0]?.offset;
  const reset: OffsetReset = { partition: batch.partition, expected: mark + 1n, brokerEnd: BigInt(batch.highWatermark), brokerStart: first === undefined ? 0n : BigInt(first) };
  try {
    applyResetPolicy(o, [reset]);
    return true;
  } catch (e) {
    const error = e as TayguardError;
    o.health.halted({ code: error.code, message: error.message });
    o.consumer?.pauseAll(o.topic);
    o.logger.error({ err: error }, 'consumption halted: offsets went backwards');
    return false;
  }
}
