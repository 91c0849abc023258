/**
 * The small Kafka interface the rest of tayguard uses, and its kafkajs implementation. Kept narrow on purpose:
 * kafkajs is in maintenance limbo, and @confluentinc/kafka-javascript offers a KafkaJS-compatible API that
 * can slot in here without touching ingest.
 */
import { Kafka, Partitioners, logLevel, type IHeaders, type Consumer, type Producer, type LogEntry } from 'kafkajs';
import type { Logger } from 'pino';
import type { RawMessage } from '../../core/record';
import { TayguardError } from '../../core/errors';

export interface ConsumedBatch {
  readonly topic: string;
  readonly partition: number;
  readonly highWatermark: string;
  readonly messages: readonly RawMessage[];
}

export interface BatchControl {
  heartbeat(): Promise<void>;
  /** Move the fetch position past this offset (in memory only: committing is a separate, later act). */
  resolve(offset: string): void;
  /** False once the consumer is stopping or the batch was revoked: stop handling messages. */
  shouldContinue(): boolean;
}

export interface TopicOffset {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
}

export interface RecordConsumer {
  subscribe(topic: string, fromBeginning: boolean): Promise<void>;
  run(handlers: {
    onBatch(batch: ConsumedBatch, control: BatchControl): Promise<void>;
    onAssigned(assignment: Record<string, number[]>): void;
    /** `restart`: whether kafkajs restarts the consumer by itself (false: it gave up; see restart()). */
    onCrash(error: Error, restart: boolean): void;
    /** A request to the broker succeeded (fetch, heartbeat, commit): readiness tracks how long ago. */
    onBrokerContact?(): void;
  }): Promise<void>;
  /** Run again after kafkajs gave up on the consumer (a crash with restart=false), with the same handlers. */
  restart(): Promise<void>;
  /** Log start and end offset of every partition of `topic`, from the broker. */
  partitionOffsets(topic: string): Promise<{ partition: number; low: bigint; high: bigint }[]>;
  seek(to: TopicOffset): void;
  commit(offsets: readonly TopicOffset[]): Promise<void>;
  /** Never throws: after a crash kafkajs throws synchronously from pause(), and stopping must go on regardless. */
  pauseAll(topic: string): void;
  disconnect(): Promise<void>;
}

export interface RecordProducer {
  /** `timestamp` (epoch ms as a string) sets the Kafka CreateTime, e.g. when replaying history at its event time. */
  send(topic: string, messages: readonly { key: string | null; value: string | Buffer; headers?: Record<string, string>; timestamp?: string }[]): Promise<void>;
  disconnect(): Promise<void>;
}

export interface KafkaOptions {
  readonly brokers: readonly string[];
  readonly clientId: string;
  readonly logger?: Logger;
}

function logCreator(logger: Logger | undefined) {
  return () => (entry: LogEntry) => {
    if (!logger) return;
    const { message, ...extra } = entry.log;
    const fields = { kafka: entry.namespace, ...extra };
    if (entry.level === logLevel.ERROR) logger.error(fields, message);
    else if (entry.level === logLevel.WARN) logger.warn(fields, message);
    else logger.debug(fields, message);
  };
}

function headerStrings(headers: IHeaders | undefined): Record<string, string> | undefined {
  if (!headers) return undefined;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) {
    const first = Array.isArray(v) ? v[0] : v;
    if (first !== undefined) out[k] = first.toString();
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

export function createKafka(o: KafkaOptions): Kafka {
  return new Kafka({
    clientId: o.clientId,
    brokers: [...o.brokers],
    logLevel: logLevel.WARN,
    logCreator: logCreator(o.logger),
    retry: { retries: 8, initialRetryTime: 200 },
    connectionTimeout: 3000,
  });
}

export async function createProducer(kafka: Kafka): Promise<RecordProducer> {
  const producer: Producer = kafka.producer({ allowAutoTopicCreation: true, createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  return {
    async send(topic, messages) {
      if (messages.length === 0) return;
      // acks -1: the quarantine is a durable outcome only once all in-sync replicas have it.
      await producer.send({ topic, acks: -1, messages: messages.map((m) => ({ key: m.key, value: m.value, ...(m.headers ? { headers: m.headers } : {}), ...(m.timestamp ? { timestamp: m.timestamp } : {}) })) });
    },
    disconnect: () => producer.disconnect(),
  };
}

export async function createConsumer(kafka: Kafka, groupId: string, sessionTimeoutMs = 30000): Promise<RecordConsumer> {
  const consumer: Consumer = kafka.consumer({
    groupId,
    allowAutoTopicCreation: true,
    sessionTimeout: sessionTimeoutMs,
    heartbeatInterval: Math.max(500, Math.floor(sessionTimeoutMs / 10)),
    maxBytesPerPartition: 1024 * 1024,
    // Return a fetch within 1 s even when little data is waiting: a sidecar should not sit on a short tail.
    maxWaitTimeInMs: 1000,
  });
  await consumer.connect();
  let subscription: { topics: string[]; fromBeginning: boolean } | undefined;
  let runConfig: Parameters<Consumer['run']>[0] | undefined;
  return {
    subscribe: (topic, fromBeginning) => {
      subscription = { topics: [topic], fromBeginning };
      return consumer.subscribe(subscription);
    },
    async run(h) {
      consumer.on(consumer.events.GROUP_JOIN, (e) => h.onAssigned(e.payload.memberAssignment as Record<string, number[]>));
      consumer.on(consumer.events.CRASH, (e) => h.onCrash(e.payload.error, e.payload.restart));
      if (h.onBrokerContact) {
        const contact = h.onBrokerContact;
        for (const event of [consumer.events.FETCH, consumer.events.HEARTBEAT, consumer.events.COMMIT_OFFSETS, consumer.events.GROUP_JOIN]) consumer.on(event, () => contact());
      }
      await consumer.run((runConfig = {
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: 1,
        eachBatch: async ({ batch, heartbeat, isRunning, isStale, resolveOffset }) => {
          const messages: RawMessage[] = batch.messages.map((m) => ({
            topic: batch.topic,
            partition: batch.partition,
            offset: m.offset,
            key: m.key ?? null,
            value: m.value ?? null,
            headers: headerStrings(m.headers),
            timestamp: m.timestamp,
          }));
          await h.onBatch(
            { topic: batch.topic, partition: batch.partition, highWatermark: batch.highWatermark, messages },
            { heartbeat, resolve: resolveOffset, shouldContinue: () => isRunning() && !isStale() },
          );
        },
      }));
    },
    async restart() {
      if (!subscription || !runConfig) throw new TayguardError('INTERNAL', 'the Kafka consumer was restarted before it ever ran; this is a bug in tayguard: report it with the log');
      await consumer.connect();
      await consumer.subscribe(subscription);
      await consumer.run(runConfig);
    },
    async partitionOffsets(topic) {
      const admin = kafka.admin();
      await admin.connect();
      try {
        const ends = await admin.fetchTopicOffsets(topic);
        return ends.map((e) => ({ partition: e.partition, low: BigInt(e.low), high: BigInt(e.high) }));
      } finally {
        await admin.disconnect().catch(() => undefined);
      }
    },
    seek: (to) => consumer.seek({ topic: to.topic, partition: to.partition, offset: to.offset }),
    commit: (offsets) => consumer.commitOffsets(offsets.map((o) => ({ ...o }))),
    pauseAll: (topic) => {
      try {
        consumer.pause([{ topic }]);
      } catch {
        // Not running (crashed, or never joined): there is nothing to pause.
      }
    },
    disconnect: () => consumer.disconnect(),
  };
}
