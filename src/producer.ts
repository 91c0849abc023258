/**
 * `tayguard/producer`: a kafkajs producer that checks records against the record contract before they leave the
 * process, so the producer learns of a bad record at its source instead of from the quarantine topic.
 *
 *   const producer = createRecordProducer(kafka, { topicPrefix: 'tayguard', limits: { numClasses: 2 } });
 *   await producer.connect();
 *   await producer.send([{ id: 'r-1', source: 'alice', label: 0, text: 'hello' }]);
 *
 * Where the deployment knows the account, say so in `sourceMeta` — trust then uses the account's age and
 * verification instead of "first seen by tayguard" (README "Record contract"). Fill it from your own account
 * records, never from what the user sent, exactly like `source`:
 *
 *   await producer.send([{ id: 'r-2', source: user.id, label: 1, text, sourceMeta: { createdAt: user.createdAt.toISOString(), verified: user.emailVerified } }]);
 *
 * The check is the sidecar's own first screen (filters/schema.ts parseRecord) run on the exact bytes that will
 * be sent, so the two cannot drift apart. It covers the contract only: the poisoning screens, duplicate ids and
 * the privacy budget are decided by the sidecar. A send with any bad record sends nothing and throws
 * RecordContractError (code RECORD_INVALID) listing every problem; validateRecords() splits a batch instead.
 *
 * Only light modules are loaded here (no tfjs, express or zod), so a producer process stays small.
 */
import type { Kafka, Producer, ProducerConfig, RecordMetadata } from 'kafkajs';
import { parseRecord, type SchemaLimits } from '../filters/schema';
import type { Reason } from '../filters/types';
import { MAX_ID_LENGTH, type TrainingRecord } from '../core/record';
import type { Config } from './config';
import { TayguardError } from '../core/errors';

/** What the sidecar enforces; give the values of its configuration (README "Configuration"). */
export interface RecordLimits {
  /** NUM_CLASSES. */
  readonly numClasses: number;
  /** MODEL: 'text' (default) or 'dense'. */
  readonly task?: 'text' | 'dense';
  /** FEATURE_DIM, required for task 'dense'. */
  readonly featureDim?: number;
  /** MAX_TEXT_CHARS (default 20000). */
  readonly maxTextChars?: number;
  /** MAX_MESSAGE_BYTES (default 262144). */
  readonly maxMessageBytes?: number;
  /** MAX_FEATURE_ABS: largest |feature| of a dense record (default: the schema stage's, 1e6). */
  readonly maxFeatureAbs?: number;
}

/** A record object, or one already serialised (a JSON string or its bytes, sent as they are). */
export type RecordInput = TrainingRecord | Record<string, unknown> | string | Buffer;

export interface RecordProblem {
  /** Position in the batch given to send() or validateRecords(). */
  readonly index: number;
  /** The record's id when it has a usable one. */
  readonly id: string | null;
  /** The sidecar's schema reasons (stage "schema"), with the same codes the quarantine topic would carry. */
  readonly reasons: readonly Reason[];
}

export type ValidationResult =
  | { readonly ok: true; readonly record: TrainingRecord; readonly value: Buffer }
  | { readonly ok: false; readonly reasons: readonly Reason[] };

/** RECORD_INVALID with the problems of every bad record in the batch; nothing of the batch was sent. */
export class RecordContractError extends TayguardError {
  readonly problems: readonly RecordProblem[];

  constructor(problems: readonly RecordProblem[], total: number) {
    const shown = problems.slice(0, 10).map((p) => `  #${p.index}${p.id === null ? '' : ` (id ${p.id})`}: ${p.reasons.map((r) => `${r.code}: ${r.message}`).join('; ')}`);
    const more = problems.length > shown.length ? [`  … and ${problems.length - shown.length} more (see error.problems)`] : [];
    super(
      'RECORD_INVALID',
      `${problems.length} of ${total} record(s) break the record contract (README "Record contract"); nothing was sent. ` +
        `Fix them, or send only the valid ones (validateRecords() splits a batch):\n${[...shown, ...more].join('\n')}`,
    );
    this.name = 'RecordContractError';
    this.problems = problems;
  }
}

function schemaLimits(limits: RecordLimits): SchemaLimits {
  const task = limits.task ?? 'text';
  if (!(Number.isInteger(limits.numClasses) && limits.numClasses >= 2)) {
    throw new TayguardError('ARGUMENT_INVALID', `limits.numClasses must be an integer ≥ 2 (the sidecar's NUM_CLASSES), got ${String(limits.numClasses)}`);
  }
  if (task === 'dense' && !(Number.isInteger(limits.featureDim) && limits.featureDim! > 0)) {
    throw new TayguardError('ARGUMENT_INVALID', `limits.featureDim is required for task "dense" (the sidecar's FEATURE_DIM), got ${String(limits.featureDim)}`);
  }
  // Defaults are src/config.ts's, so a producer beside a default sidecar needs only numClasses.
  return {
    numClasses: limits.numClasses,
    task,
    featureDim: task === 'dense' ? limits.featureDim : undefined,
    maxTextChars: limits.maxTextChars ?? 20000,
    maxMessageBytes: limits.maxMessageBytes ?? 256 * 1024,
    ...(limits.maxFeatureAbs !== undefined ? { maxFeatureAbs: limits.maxFeatureAbs } : {}),
  };
}

/** The limits a sidecar with this configuration enforces (for a producer that loads the same environment). */
export function limitsFromConfig(config: Pick<Config, 'model' | 'limits' | 'ops'>): RecordLimits {
  return {
    numClasses: config.model.numClasses,
    task: config.model.kind,
    featureDim: config.model.kind === 'dense' ? config.model.inputDim : undefined,
    maxTextChars: config.limits.maxTextChars,
    maxMessageBytes: config.limits.maxMessageBytes,
    maxFeatureAbs: config.ops.maxFeatureAbs,
  };
}

function toBytes(input: RecordInput): Buffer {
  if (Buffer.isBuffer(input)) return input;
  if (typeof input === 'string') return Buffer.from(input, 'utf8');
  // JSON.stringify turns NaN and ±Infinity into null, which the schema then refuses (non_finite_feature).
  return Buffer.from(JSON.stringify(input) ?? '', 'utf8');
}

function checked(input: RecordInput, limits: SchemaLimits): ValidationResult {
  const value = toBytes(input);
  const parsed = parseRecord({ value }, limits);
  return parsed.ok ? { ok: true, record: parsed.record, value } : { ok: false, reasons: parsed.reasons };
}

/** One record against the contract, exactly as the sidecar's schema stage would judge its bytes. */
export function validateRecord(input: RecordInput, limits: RecordLimits): ValidationResult {
  return checked(input, schemaLimits(limits));
}

/** A batch split into what would pass the sidecar's schema stage and what would be quarantined (and why). */
export function validateRecords(inputs: readonly RecordInput[], limits: RecordLimits): { valid: { index: number; record: TrainingRecord; value: Buffer }[]; invalid: RecordProblem[] } {
  const l = schemaLimits(limits);
  const valid: { index: number; record: TrainingRecord; value: Buffer }[] = [];
  const invalid: RecordProblem[] = [];
  inputs.forEach((input, index) => {
    const r = checked(input, l);
    if (r.ok) valid.push({ index, record: r.record, value: r.value });
    else invalid.push({ index, id: idOf(input), reasons: r.reasons });
  });
  return { valid, invalid };
}

function idOf(input: RecordInput): string | null {
  let value: unknown = input;
  if (typeof input === 'string' || Buffer.isBuffer(input)) {
    try {
      value = JSON.parse(input.toString());
    } catch {
      return null;
    }
  }
  const id = (value as { id?: unknown } | null)?.id;
  return typeof id === 'string' && id.length > 0 && id.length <= MAX_ID_LENGTH ? id : null;
}

export interface RecordProducerOptions {
  /** What the sidecar enforces. */
  readonly limits: RecordLimits;
  /** The records topic; default `<topicPrefix>.records`. */
  readonly topic?: string;
  /** TOPIC_PREFIX of the sidecar (default "tayguard"). */
  readonly topicPrefix?: string;
  /** Passed to kafka.producer() when a Kafka client (not a producer) is given. */
  readonly producerConfig?: ProducerConfig;
  /** Default -1: a record counts as sent once every in-sync replica has it. */
  readonly acks?: number;
}

export interface RecordProducer {
  readonly topic: string;
  connect(): Promise<void>;
  /**
   * Validate every record, then send them all keyed by their source (the contract's key), or throw
   * RecordContractError and send none. Headers, when given, go on every message.
   */
  send(records: RecordInput | readonly RecordInput[], options?: { headers?: Record<string, string> }): Promise<RecordMetadata[]>;
  disconnect(): Promise<void>;
}

const isKafka = (k: Kafka | Producer): k is Kafka => typeof (k as Kafka).producer === 'function';

export function createRecordProducer(kafkaOrProducer: Kafka | Producer, options: RecordProducerOptions): RecordProducer {
  const limits = schemaLimits(options.limits);
  const topic = options.topic ?? `${options.topicPrefix ?? 'tayguard'}.records`;
  // With a Kafka client we create, connect and disconnect our own producer; a producer given to us stays the
  // caller's, but connect()/disconnect() still pass through so both uses read the same.
  const producer = isKafka(kafkaOrProducer) ? kafkaOrProducer.producer(options.producerConfig) : kafkaOrProducer;
  return {
    topic,
    connect: () => producer.connect(),
    disconnect: () => producer.disconnect(),
    async send(records, sendOptions = {}) {
      const batch: readonly RecordInput[] = Array.isArray(records) ? records : [records as RecordInput];
      const problems: RecordProblem[] = [];
      const messages: { key: string; value: Buffer; headers?: Record<string, string> }[] = [];
      batch.forEach((input, index) => {
        const r = checked(input, limits);
        if (r.ok) messages.push({ key: r.record.source, value: r.value, ...(sendOptions.headers ? { headers: sendOptions.headers } : {}) });
        else problems.push({ index, id: idOf(input), reasons: r.reasons });
      });
      if (problems.length > 0) throw new RecordContractError(problems, batch.length);
      if (messages.length === 0) return [];
      return producer.send({ topic, acks: options.acks ?? -1, messages });
    },
  };
}
