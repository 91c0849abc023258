/**
 * The record path, independent of Kafka: redelivery check → a plain loop (parse → release → screens → dedup → admit) → trainer
 * (train/: plain minibatches, or the DP window; each step runs the step order of train/step-order.ts). Every consumed
 * message that is not a redelivery reaches the trainer — as a record to admit or as an empty slot — because the
 * DP schedule counts messages, not records. The Kafka consume loop (src/ingest/loop.ts) feeds it messages; the
 * benchmark feeds it directly. Quarantined records are buffered and must be flushed (acknowledged by the broker) before the
 * checkpoint that covers their offsets — that is what makes "quarantined" a durable outcome.
 */
import { TayguardError } from '../core/errors';
import { parseRecord, type SchemaLimits } from '../filters/schema';
import type { Detector, Reason } from '../filters/types';
import type { Deduplicator } from './dedup';
import type { OutcomeTally } from './counts';
import type { Metrics } from './metrics';
import type { RawMessage, TrainingRecord } from '../core/record';
import type { Trainer } from '../train/types';
import { RELEASE_HEADER, type ReleaseSigner } from './admin/release';
import { withEventTime } from './event-time';
import type { QuarantineEntry } from './admin/quarantine-index';
import { runtimeFailure } from './runtime-failure';
import { quarantineEnvelope } from './quarantine/envelope';

/** Per-record context travelling through the record chain. */
export interface RecordContext {
  readonly raw: RawMessage;
  record?: TrainingRecord;
  reasons: Reason[];
  /** An operator released this record from quarantine (signature verified): the poisoning screens are skipped. */
  released?: boolean;
  outcome?: { kind: 'quarantined' } | { kind: 'skipped'; reason: string } | { kind: 'admitted' };
  /** The trainer has given this message its slot in the DP schedule (admit does; every other outcome passes). */
  slotTaken?: boolean;
}

export interface QuarantineMessage {
  readonly key: string;
  readonly value: string;
}

export interface QuarantineSink {
  send(messages: readonly QuarantineMessage[]): Promise<void>;
}

export interface PipelineOptions {
  readonly trainer: Trainer;
  readonly limits: SchemaLimits;
  readonly dedup: Deduplicator;
  readonly tally: OutcomeTally;
  readonly metrics: Metrics;
  readonly quarantine: QuarantineSink;
  readonly detectors?: readonly Detector[];
  /** Verifies the signed release header of records an operator let out of quarantine (src/admin/release.ts). */
  readonly release?: ReleaseSigner;
  /** Told about every quarantined record (the admin API's index of recent ones). */
  readonly onQuarantine?: (entry: QuarantineEntry) => void;
  /** Originals over this many bytes are stored truncated, with their sha256 (src/quarantine/envelope.ts). */
  readonly maxStoredRecordBytes?: number;
  readonly now?: () => number;
  /** A training step that failed while a message only took its slot (the message's outcome stands). */
  readonly onStepError?: (error: unknown) => void;
  /** A record's `ts` is kept within this of its Kafka timestamp (src/event-time.ts); default 5 minutes. */
  readonly maxClockSkewMs?: number;
}

export class Pipeline {
  private pendingQuarantine: QuarantineMessage[] = [];
  /** Messages given an outcome since the last checkpoint; zero means a checkpoint would change nothing. */
  handledSinceCheckpoint = 0;
  lastLoss = NaN;

  constructor(private readonly o: PipelineOptions) {}

  /**
   * The record path, in order, as plain calls: parse (schema and bounds, event time from the broker) → release (an
   * operator's signed release skips the screens) → screens (in SCREENS order; the first objection quarantines) →
   * dedup (a record is its (source, id)) → admit (the trainer's slot). Sets `ctx.outcome`.
   */
  private async decide(ctx: RecordContext): Promise<void> {
    const o = this.o;
    const parsed = parseRecord(ctx.raw, o.limits);
    if (!parsed.ok) return quarantine(ctx, parsed.reasons);
    if (parsed.cutFrom !== undefined) o.metrics.textCut.inc();
    const record = withEventTime(parsed.record, ctx.raw.timestamp, o.maxClockSkewMs ?? 5 * 60_000, () => o.metrics.eventTimeClamped.inc(), (o.now ?? Date.now)());
    ctx.record = record;
    ctx.released = o.release?.verify(ctx.raw.value, ctx.raw.headers?.[RELEASE_HEADER]) ?? false;
    if (!ctx.released) {
      for (const detector of o.detectors ?? []) {
        const verdict = detector.screen(record, ctx.raw);
        if (verdict.kind === 'quarantine') return quarantine(ctx, verdict.reasons);
      }
    }
    if (!o.dedup.rememberId(record.source, record.id)) {
      ctx.outcome = { kind: 'skipped', reason: 'duplicate' };
      return;
    }
    // The slot is taken as admit begins (the pool holds the record before any step runs), so a failure later in
    // admit does not count the message twice in the schedule.
    ctx.slotTaken = true;
    // Remembered only with an outcome: a failed admit forgets the id again (it is then quarantined by handle()).
    const result = await o.trainer.admit(record).catch((e: unknown) => {
      o.dedup.forgetId(record.source, record.id);
      throw e;
    });
    ctx.outcome = result.kind === 'trained' ? { kind: 'admitted' } : { kind: 'skipped', reason: result.reason };
  }

  /** Handle one consumed message; resolves when its outcome is decided (not yet durable). */
  async handle(raw: RawMessage): Promise<void> {
    const { dedup, tally, metrics } = this.o;
    if (dedup.isRedelivery(raw.topic, raw.partition, raw.offset)) {
      metrics.redeliveries.inc();
      return;
    }
    dedup.countMessage();
    const ctx: RecordContext = { raw, reasons: [] };
    await this.decide(ctx).catch((e: unknown) => runtimeFailure(ctx, e));
    // Every consumed message counts toward the DP step schedule, whatever its outcome, so that when steps run
    // never depends on what a record says (docs/privacy.md, "the schedule").
    // A step that fails here (outside the numeric guard) must not abort the batch: the message would be
    // redelivered and take a second slot, moving every later step boundary. The step was charged (train/dp.ts).
    if (!ctx.slotTaken) await this.o.trainer.pass().catch((e: unknown) => this.o.onStepError?.(e));
    const outcome = ctx.outcome;
    if (outcome?.kind === 'quarantined') {
      this.pendingQuarantine.push(this.quarantineMessage(ctx));
      tally.add('quarantined', ctx.reasons.map((r) => r.code), ctx.reasons[0]?.stage);
    } else if (outcome?.kind === 'skipped') {
      tally.add('skipped', [outcome.reason]);
    } else if (outcome?.kind === 'admitted') {
      tally.add('trained');
    } else {
      throw new TayguardError('INTERNAL', `record chain ended without an outcome at ${raw.topic}/${raw.partition}@${raw.offset}; this is a bug in tayguard: report it with the log`);
    }
    dedup.markOffset(raw.topic, raw.partition, raw.offset);
    this.handledSinceCheckpoint += 1;
  }

  private quarantineMessage(ctx: RecordContext): QuarantineMessage {
    const { raw } = ctx;
    // Keep the original when it is text (as a string, so a reviewer sees exactly what arrived); base64 otherwise;
    // bounded in bytes either way (src/quarantine/envelope.ts).
    const at = new Date((this.o.now ?? Date.now)()).toISOString();
    const source = ctx.record?.source ?? raw.key?.toString('utf8') ?? null;
    const { message, entry } = quarantineEnvelope(raw, ctx.reasons, source, at, this.o.maxStoredRecordBytes ?? 64 * 1024);
    this.o.onQuarantine?.(entry);
    return message;
  }

  /** Send buffered quarantine messages and wait for the broker's acknowledgement. */
  async flushQuarantine(): Promise<void> {
    if (this.pendingQuarantine.length === 0) return;
    const batch = this.pendingQuarantine;
    this.pendingQuarantine = [];
    try {
      await this.o.quarantine.send(batch);
    } catch (e) {
      // Not acknowledged: keep them (in order) for the next flush; their offsets stay uncommitted meanwhile.
      this.pendingQuarantine = [...batch, ...this.pendingQuarantine];
      throw e;
    }
  }
}

function quarantine(ctx: RecordContext, reasons: readonly Reason[]): void {
  ctx.reasons.push(...reasons);
  ctx.outcome = { kind: 'quarantined' };
}
