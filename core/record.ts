/** The record contract on `<prefix>.records` (README "Record contract"). Key: the source. */
export interface TrainingRecord {
  readonly id: string;
  readonly source: string;
  readonly ts?: number;
  readonly label: number;
  readonly text?: string;
  readonly features?: readonly number[];
  /**
   * What the deployment knows about the source's account, set by the producer from its own account records (never
   * from user input, like `source`): trust uses it instead of "first seen here" (filters/source-registry.ts).
   */
  readonly sourceMeta?: SourceMeta;
}

export interface SourceMeta {
  /** When the account was created (ISO 8601 with a time zone, e.g. "2024-03-01T12:00:00Z"). */
  readonly createdAt?: string;
  /** The deployment verified the account (e-mail, phone, payment, …). */
  readonly verified?: boolean;
}

/** Where a message came from: enough to find it again and to commit past it. */
export interface RecordOrigin {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
}

/** A message as consumed, before anything is known about its contents. */
export interface RawMessage extends RecordOrigin {
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  /** The Kafka message timestamp (epoch ms as a string, as kafkajs gives it); the record's event time is taken from it. */
  readonly timestamp?: string;
  /** Kafka headers as UTF-8 strings (first value of each). */
  readonly headers?: Readonly<Record<string, string>>;
}

export const MAX_ID_LENGTH = 128;
