/**
 * The Kafka consume loop of a sidecar (src/sidecar.ts): connect the producer, consumer and quarantine reader,
 * check the offsets against the checkpoint, run the consumer (every batch under the sidecar's lock, a checkpoint
 * every CHECKPOINT_EVERY_RECORDS), seek to where the checkpoint ends on assignment, restart a crashed consumer,
 * and the timers for periodic checkpoints and quiet-stream steps. The sidecar owns the lock, the record path and
 * the checkpoint (docs/architecture.md invariant 1); this file only drives them.
 */
import type { Config } from '../config';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';
import type { Health } from '../health';
import type { Deduplicator } from '../dedup';
import type { Trainer } from '../../train/types';
import type { Auditor } from '../audit/auditor';
import type { Pipeline, QuarantineSink } from '../pipeline';
import type { SidecarParts } from '../assemble';
import { createConsumer, createKafka, createProducer, type RecordConsumer, type RecordProducer, type ConsumedBatch, type BatchControl } from './client';
import { checkOffsetsAtStart, checkBatchOffsets } from './offsets';
import { retryWithBackoff } from '../retry';
import { resilientSink } from '../quarantine/sink';
import { topicReader, type TopicReader } from '../quarantine/reader';
import { TayguardError } from '../../core/errors';

/** What the loop drives in its sidecar. */
export interface ConsumeHost {
  /** True once stop() has begun: no further messages, timers idle, retries give up. */
  stopping(): boolean;
  /** Run `fn` exclusively with respect to batch handling and checkpoints. */
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
  /** Write a checkpoint; the caller holds the lock. */
  checkpointLocked(): Promise<void>;
  /** The record path, once built. */
  pipeline(): Pipeline | undefined;
  buildPipeline(sink: QuarantineSink): Pipeline;
  stop(): Promise<void>;
}

export class ConsumeLoop {
  consumer?: RecordConsumer;
  producer?: RecordProducer;
  /** Reads the quarantine topic at an offset for the admin list and releases (no consumer group). */
  quarantineReader?: TopicReader;
  /** In the consumer group (set on assignment, cleared when the consumer crashes). */
  joined = false;
  private timer?: NodeJS.Timeout;
  private quietTimer?: NodeJS.Timeout;
  private readonly config: Config;
  private readonly logger: Logger;
  private readonly metrics: Metrics;
  private readonly health: Health;
  private readonly dedup: Deduplicator;
  private readonly trainer: Trainer;
  private readonly auditor?: Auditor;
  private readonly backend: string;

  constructor(
    parts: Pick<SidecarParts, 'config' | 'logger' | 'metrics' | 'health' | 'dedup' | 'trainer' | 'auditor' | 'backend'>,
    private readonly host: ConsumeHost,
  ) {
    ({ config: this.config, logger: this.logger, metrics: this.metrics, health: this.health, dedup: this.dedup, trainer: this.trainer, auditor: this.auditor, backend: this.backend } = parts);
  }

  /** Connect to Kafka, build the record path, check the offsets, run the consumer and the timers. */
  async start(): Promise<void> {
    const c = this.config;
    const kafka = createKafka({ brokers: c.kafka.brokers, clientId: c.kafka.clientId, logger: this.logger });
    try {
      this.producer = await createProducer(kafka);
      this.consumer = await createConsumer(kafka, c.kafka.groupId, c.kafka.sessionTimeoutMs);
      this.quarantineReader = topicReader(kafka, c.topics.quarantine);
    } catch (e) {
      throw new TayguardError('BROKER_UNAVAILABLE', `cannot reach Kafka at ${c.kafka.brokers.join(',')}: ${(e as Error).message}. Check KAFKA_BROKERS (for a local broker: npm run broker)`, { cause: e, retriable: true });
    }
    const producer = this.producer;
    const pipeline = this.host.buildPipeline(resilientSink((messages) => producer.send(c.topics.quarantine, messages), this.metrics, this.logger));
    const consumer = this.consumer;
    await consumer.subscribe(c.topics.records, c.kafka.fromBeginning);
    await checkOffsetsAtStart(consumer, this.offsetContext()).catch(async (e) => {
      await this.host.stop();
      throw e;
    });
    await consumer.run({
      onBatch: (batch, control) => this.host.exclusive(() => this.handleBatch(batch, control)),
      onAssigned: (assignment) => this.onAssigned(assignment),
      onCrash: (error, restart) => {
        this.joined = false;
        this.logger.error({ err: error, restart }, 'Kafka consumer crashed');
        this.health.consumerCrashed(error, restart);
        if (!restart) this.restartConsumer();
      },
      onBrokerContact: () => this.health.brokerContact(),
    });
    this.timer = setInterval(() => {
      if (this.host.stopping()) return;
      void this.host.exclusive(async () => {
        if (pipeline.handledSinceCheckpoint > 0 || this.trainer.stepsSinceCheckpoint > 0) await this.host.checkpointLocked();
      }).catch(() => undefined);
    }, c.checkpoint.intervalMs);
    this.timer.unref();
    if (c.checkpoint.quietStepIntervalMs > 0) {
      // Quiet-stream steps: decided by the clock and by whether any message is still inside its window only.
      this.quietTimer = setInterval(() => {
        if (this.host.stopping()) return;
        void this.host.exclusive(() => this.trainer.tick()).catch((e) => this.logger.error({ err: e }, 'quiet-stream step failed'));
      }, c.checkpoint.quietStepIntervalMs);
      this.quietTimer.unref();
    }
    this.logger.info({ topic: c.topics.records, brokers: c.kafka.brokers, backend: this.backend }, 'consuming');
  }

  /** kafkajs gave up on the consumer (a non-retriable error): start it again with backoff until it runs. */
  private restartConsumer(): void {
    const consumer = this.consumer;
    if (!consumer || this.host.stopping()) return;
    void retryWithBackoff(() => consumer.restart(), {
      abandon: () => this.host.stopping(),
      initialMs: 1000,
      onError: (e, attempt, delay) => this.logger.error({ err: e, attempt }, `restarting the Kafka consumer failed; next attempt in ${delay} ms`),
    });
  }

  private offsetContext() {
    return { dedup: this.dedup, topic: this.config.topics.records, policy: this.config.ops.offsetResetPolicy, health: this.health, logger: this.logger, consumer: this.consumer };
  }

  /** Batch handling waits (heartbeating) until `fn` — a flush or checkpoint — succeeds; see src/retry.ts. */
  private async durably(what: 'checkpoint' | 'quarantine flush', fn: () => Promise<unknown>, control: BatchControl): Promise<boolean> {
    const done = await retryWithBackoff(fn, {
      abandon: () => this.host.stopping() || !control.shouldContinue(),
      beat: () => control.heartbeat(),
      onError: (e, attempt, delay) => {
        // A failed checkpoint is recorded by checkpointLocked itself.
        if (what === 'quarantine flush') this.health.flushFailed(e);
        this.logger.error({ err: e, attempt }, `${what} failed; consumption waits and retries in ${delay} ms`);
      },
    });
    if (done && what === 'quarantine flush') this.health.flushSucceeded();
    return done;
  }

  private onAssigned(assignment: Record<string, number[]>): void {
    this.joined = true;
    this.health.consumerJoined();
    // Resume exactly where the checkpoint ends. Committed offsets can only lag the checkpoint (commits follow
    // it), and anything redelivered below the watermark is ignored anyway; the seek just avoids re-reading.
    const topic = this.config.topics.records;
    const assigned = new Set(assignment[topic] ?? []);
    for (const to of this.dedup.nextOffsets(topic)) {
      if (assigned.has(to.partition)) this.consumer?.seek(to);
    }
    this.logger.info({ assignment }, 'joined consumer group');
  }

  async handleBatch(batch: ConsumedBatch, control: BatchControl): Promise<void> {
    const pipeline = this.host.pipeline();
    if (!pipeline) throw new TayguardError('INTERNAL', 'a batch arrived before start() built the record path; this is a bug in tayguard: report it');
    if (!checkBatchOffsets(batch, this.offsetContext())) return;
    for (const message of batch.messages) {
      if (this.host.stopping() || !control.shouldContinue()) break;
      const stepsBefore = this.trainer.stepsSinceCheckpoint;
      await pipeline.handle(message);
      control.resolve(message.offset);
      if (this.auditor) {
        // Canaries ride along with user traffic, straight into the trainer: never counted, never on Kafka. When
        // one is due depends on consumed messages and steps only — never on whether a record was trained.
        const canary = this.auditor.canaryDue(this.trainer.progress);
        if (canary) await this.trainer.admitCanary(canary);
      }
      // A training step blocks the event loop for its duration; give heartbeats a turn after each one.
      if (this.trainer.stepsSinceCheckpoint !== stepsBefore) await control.heartbeat();
      if (pipeline.handledSinceCheckpoint >= this.config.checkpoint.everyRecords && !(await this.durably('checkpoint', () => this.host.checkpointLocked(), control))) return;
    }
    const last = batch.messages[batch.messages.length - 1];
    if (last) this.metrics.lag.set({ topic: batch.topic, partition: String(batch.partition) }, Math.max(0, Number(BigInt(batch.highWatermark) - BigInt(last.offset) - 1n)));
    await this.durably('quarantine flush', () => pipeline.flushQuarantine(), control);
  }

  /** Stop the checkpoint and quiet-stream timers (stop() does this first). */
  clearTimers(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.quietTimer) clearInterval(this.quietTimer);
  }
}
