/**
 * The sidecar: wires config, model, checkpoint store, pipeline, Kafka ingest and HTTP together, and owns the
 * one ordering rule everything else relies on (docs/architecture.md invariant 1):
 *   train buffered records → flush quarantine (acked) → write checkpoint (fsync) → publish model → commit offsets.
 * Batch handling and checkpoints never interleave: both run under one lock.
 */
import type { Server } from 'node:http';
import * as path from 'node:path';
import { once } from 'node:events';
import type { Config } from './config';
import { createLogger, type Logger } from './logger';
import { createMetrics, type Metrics } from './metrics';
import { initTf } from '../core/tf';
import { createLearner } from '../middleware/build';
import type { TfjsLearner } from '../middleware/learner';
import { CheckpointStore } from './checkpoint/store';
import { checkCheckpointBudget, describeWorstCase, worstCaseCheckpoint } from './checkpoint/budget';
import { encodeCheckpoint } from './checkpoint/encode';
import { resumeState, type ModelIdentity } from './checkpoint/resume';
import { ModelPublisher, type PublishedVersion } from './checkpoint/publish';
import { Deduplicator } from './dedup';
import { OutcomeTally } from './counts';
import { Pipeline, type QuarantineSink } from './pipeline';
import { PlainTrainer } from '../train/plain';
import { DpTrainer } from '../train/dp';
import type { Trainer } from '../train/types';
import { budgetStatus, type BudgetResponse } from './privacy-status';
import { readPretrainInfo } from './pretrain/pretrain';
import { createScreens } from './screens';
import { buildWitness } from './witness';
import { createUpdateGate } from '../train/gate-factory';
import type { UpdateGate } from '../train/gate';
import { aroundTheUpdate } from '../train/step-order';
import { releaseSigner, type ReleaseSigner } from './admin/release';
import { AdminService } from './admin/service';
import { Auditor } from './audit/auditor';
import type { DetectorChain } from '../filters';
import { createConsumer, createKafka, createProducer, type RecordConsumer, type RecordProducer, type ConsumedBatch, type BatchControl } from './ingest/client';
import { createApp } from './http/app';
import { TayguardError } from '../core/errors';
import { faultPoint } from './faults';
import type { Payload } from '../middleware/featurize';
import { WeightAverage } from '../train/average';
import { Health } from './health';
import type { SidecarStatus } from './http/types';
import { StepGuard } from '../train/guard';
import { checkOffsetsAtStart, checkBatchOffsets } from './ingest/offsets';
import { retryWithBackoff } from './retry';
import { probeCandidate } from '../middleware/probe';
import { applyServerLimits } from './http/limits';
import { stopOutcome, type StopOutcome } from './stop-outcome';
import { resilientSink } from './quarantine/sink';
import { topicReader, type TopicReader } from './quarantine/reader';
import { describeTrainingLoss } from './loss-metric';
import { StatusHistory, sampleOf } from './history';

/** Everything a sidecar is made of, built by createSidecar before the Sidecar exists. */
interface SidecarParts {
  readonly config: Config;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly store: CheckpointStore;
  readonly publisher: ModelPublisher;
  readonly health: Health;
  readonly signer?: ReleaseSigner;
  readonly backend: string;
  readonly learner: TfjsLearner;
  readonly serving: TfjsLearner;
  readonly average?: WeightAverage;
  readonly dedup: Deduplicator;
  readonly tally: OutcomeTally;
  readonly screens: DetectorChain;
  readonly gate?: UpdateGate;
  readonly guard: StepGuard;
  readonly trainer: Trainer;
  readonly auditor?: Auditor;
  /** Where the newest checkpoint left off (zeros and null on a fresh start). */
  readonly seq: number;
  readonly modelVersion: number;
  readonly lastCheckpointAt: string | null;
  /** What the model started from, for the budget's statement. */
  readonly startedFrom: BudgetResponse['start'];
}

/**
 * Build a sidecar in one go: load the model, resume from the newest checkpoint, build the screens, the update
 * gate, the step stages (train/step-order.ts), the trainer and the audit. No Kafka needed; start() connects.
 */
export async function createSidecar(config: Config, logger: Logger = createLogger(config.logLevel)): Promise<Sidecar> {
  const metrics = createMetrics();
  const backend = await initTf();
  const store = new CheckpointStore(config.checkpoint.dir, config.checkpoint.kept, config.ops.checkpointBudgetBytes);
  const publisher = new ModelPublisher(config.checkpoint.modelDir, config.checkpoint.versionsKept);
  await store.init();
  await publisher.init();
  const learner = await createLearner(config);
  const serving = await createLearner(config);
  const pretrained = await readPretrainInfo(config.model.path);
  const startedFrom: BudgetResponse['start'] = pretrained
    ? { from: 'public-pretraining', publicData: { file: pretrained.publicData.file, sha256: pretrained.publicData.sha256, records: pretrained.publicData.records } }
    : config.model.path !== undefined
      ? { from: 'model-path' }
      : { from: 'fresh' };
  const latest = await store.latest();
  const resumed = latest ? resumeState(latest, config, modelIdentity(config, learner)) : undefined;
  if (latest && resumed) {
    learner.restore(resumed.weights);
    logger.info({ checkpoint: latest.file, seq: resumed.seq, offsets: latest.header.offsets }, 'resumed from checkpoint');
  }
  let average: WeightAverage | undefined;
  if (config.training.averageDecay > 0) {
    average = new WeightAverage(learner, config.training.averageDecay);
    if (resumed?.average) average.restore(resumed.average.weights.data, resumed.average.state);
    // Trained weights without an average (a checkpoint from before AVERAGE_DECAY, a MODEL_PATH model): start there.
    else if (resumed || config.model.path) average.startWarm();
  }
  // With AVERAGE_DECAY now 0 over a checkpoint that served an average, keep serving that average (it is the
  // published version the checkpoint names) until the next checkpoint publishes the trained weights.
  serving.restore(average?.snapshot() ?? resumed?.average?.weights ?? learner.snapshot());
  const dedup = Deduplicator.fromJSON(resumed?.dedup, config.limits.dedupIdsKept);
  const tally = new OutcomeTally(metrics, resumed?.counts);
  // The witness (trusted data only, never served) must exist before the screens that judge with it.
  const witness = await buildWitness(config, logger);
  const screens = createScreens(config, { serving, trainedRecords: () => tally.counts.trained, witness });
  // Refuse a configuration whose worst-case checkpoint exceeds CHECKPOINT_MAX_BYTES (src/checkpoint/budget.ts),
  // with the loaded model's real size and the chain's own state budgets.
  const budgets = screens.stateBudgets();
  const fixedState = Object.entries(screens.stateBytes()).filter(([k]) => !(k in budgets)).reduce((n, [, b]) => n + b, 0);
  const worstCase = worstCaseCheckpoint(config, { modelParams: learner.model.countParams(), screenStateBytes: Object.values(budgets).reduce((n, b) => n + b, 0) + fixedState });
  checkCheckpointBudget(worstCase, config.ops.checkpointBudgetBytes);
  logger.info({ worstCaseBytes: worstCase.total, budgetBytes: config.ops.checkpointBudgetBytes }, `checkpoint worst case ${describeWorstCase(worstCase)}, within CHECKPOINT_MAX_BYTES`);
  if (resumed?.screens) screens.restore(resumed.screens);
  for (const [screen, bytes] of Object.entries(screens.stateBudgets())) metrics.screenStateBudget.set({ screen }, bytes);
  for (const [screen, bytes] of Object.entries(screens.stateBytes())) metrics.screenStateBytes.set({ screen }, bytes);
  const gate = config.gate ? createUpdateGate(config, learner, screens.registry, metrics, logger, average) : undefined;
  if (gate && resumed?.gate) gate.restore(resumed.gate.state, resumed.gate.best);
  const guard = new StepGuard(learner, metrics, logger, config.ops.maxFeatureAbs);
  // The step order (train/step-order.ts): average → gate → guard around privatize → update.
  const stages = aroundTheUpdate({ average: average?.stage(), gate: gate?.stage(), guard: guard.stage() });
  const p = config.privacy;
  const trainer: Trainer =
    p === null
      ? new PlainTrainer(learner, metrics, config.training.batchSize, stages)
      : new DpTrainer(learner, metrics, p, resumed?.trainer ?? undefined, stages);
  describeTrainingLoss(metrics, trainer.mode, gate !== undefined);
  const auditor = config.audit
    ? new Auditor(
        {
          ...config.audit,
          numClasses: config.model.numClasses,
          task: config.model.kind,
          featureDim: learner.featurizer.dim,
          delta: p?.delta ?? 1e-6,
          exposure: trainer.exposure,
        },
        resumed?.audit,
      )
    : undefined;
  return new Sidecar({
    config,
    logger,
    metrics,
    store,
    publisher,
    health: new Health(metrics, config.ops.readyBrokerTimeoutMs),
    signer: config.http.adminToken ? releaseSigner(config.http.adminToken) : undefined,
    backend,
    learner,
    serving,
    average,
    dedup,
    tally,
    screens,
    gate,
    guard,
    trainer,
    auditor,
    seq: resumed?.seq ?? 0,
    modelVersion: resumed?.modelVersion ?? 0,
    lastCheckpointAt: resumed?.createdAt ?? null,
    startedFrom,
  });
}

function modelIdentity(config: Config, learner: TfjsLearner): ModelIdentity {
  return { task: config.model.kind, inputDim: learner.featurizer.dim, numClasses: learner.numClasses };
}

const STOP_DEADLINE_MS = 25_000;

/** A running sidecar; built by createSidecar (the constructor takes the finished parts). */
export class Sidecar {
  readonly config: Config;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** The model being trained. Never read by /v1/predict: see `serving`. */
  readonly learner: TfjsLearner;
  /**
   * The model as of the last checkpoint, which is what predictions use. Serving the in-training weights would
   * reveal steps that a crash could make the accountant forget (their records are redelivered and trained
   * again); serving only checkpointed weights keeps every observable step accounted.
   */
  readonly serving: TfjsLearner;
  /** The moving average of the weights that `serving` is restored from when AVERAGE_DECAY > 0. */
  readonly average?: WeightAverage;
  readonly trainer: Trainer;
  readonly screens: DetectorChain;
  readonly gate?: UpdateGate;
  readonly auditor?: Auditor;
  readonly guard: StepGuard;
  /** The record path; built by start() around the Kafka producer's quarantine sink. */
  pipeline?: Pipeline;
  private readonly dedup: Deduplicator;
  private readonly tally: OutcomeTally;
  private readonly store: CheckpointStore;
  private readonly publisher: ModelPublisher;
  private consumer?: RecordConsumer;
  private producer?: RecordProducer;
  /** Reads the quarantine topic at an offset for the admin list and releases (no consumer group). */
  private quarantineReader?: TopicReader;
  private server?: Server;
  private timer?: NodeJS.Timeout;
  private quietTimer?: NodeJS.Timeout;
  private lock: Promise<unknown> = Promise.resolve();
  private readonly backend: string;
  private seq: number;
  private modelVersion: number;
  private joined = false;
  private readonly modelLoaded = true;
  private stopping = false;
  private stopped?: Promise<void>;
  private lastCheckpointAt: string | null;
  private lastCheckpointError: string | null = null;
  private readonly signer?: ReleaseSigner;
  readonly admin: AdminService;
  /** The budget as of the last durable checkpoint (or start-up): the only figure the public surface shows. */
  private checkpointedBudget?: BudgetResponse;
  /** What the model started from (budget statement): fresh, public pretraining, or another MODEL_PATH model. */
  private readonly startedFrom: BudgetResponse['start'];
  /** The gate's rollback count when the last version was published (a later rollback marks the next version). */
  private rollbacksPublished = 0;
  readonly health: Health;
  /** How the last stop went (clean: everything handled is in a durable checkpoint); set by stop(). */
  lastStop?: StopOutcome;
  /** One sample per checkpoint for the status page (GET /v1/history). */
  private readonly figures = new StatusHistory();

  constructor(parts: SidecarParts) {
    ({
      config: this.config,
      logger: this.logger,
      metrics: this.metrics,
      store: this.store,
      publisher: this.publisher,
      health: this.health,
      signer: this.signer,
      backend: this.backend,
      learner: this.learner,
      serving: this.serving,
      average: this.average,
      dedup: this.dedup,
      tally: this.tally,
      screens: this.screens,
      gate: this.gate,
      guard: this.guard,
      trainer: this.trainer,
      auditor: this.auditor,
      seq: this.seq,
      modelVersion: this.modelVersion,
      lastCheckpointAt: this.lastCheckpointAt,
      startedFrom: this.startedFrom,
    } = parts);
    this.admin = new AdminService({
      signer: this.signer,
      recordsTopic: this.config.topics.records,
      quarantineTopic: this.config.topics.quarantine,
      producer: () => this.producer,
      reader: () => this.quarantineReader,
      registry: () => this.screens.registry,
      logger: this.logger,
      indexBytes: this.config.ops.quarantineIndexBytes,
    });
    this.metrics.modelVersion.set(this.modelVersion);
    this.updatePrivacyGauges();
    this.sampleHistory(new Date().toISOString());
  }

  /** Run `fn` exclusively with respect to batch handling and checkpoints. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(fn, fn);
    this.lock = run.catch(() => undefined);
    return run;
  }

  /** Build the pipeline around a quarantine sink (the Kafka producer in production). */
  private buildPipeline(sink: QuarantineSink): Pipeline {
    const c = this.config;
    this.pipeline = new Pipeline({
      trainer: this.trainer,
      limits: {
        numClasses: c.model.numClasses,
        featureDim: c.model.kind === 'dense' ? this.learner.featurizer.dim : undefined,
        task: c.model.kind,
        maxTextChars: c.limits.maxTextChars,
        textReadChars: c.limits.textReadChars,
        maxMessageBytes: c.limits.maxMessageBytes,
        maxFeatureAbs: c.ops.maxFeatureAbs,
      },
      dedup: this.dedup,
      tally: this.tally,
      metrics: this.metrics,
      quarantine: sink,
      detectors: this.screens.detectors,
      release: this.signer,
      maxStoredRecordBytes: c.ops.quarantineRecordBytes,
      maxClockSkewMs: c.ops.maxClockSkewMs,
      onStepError: (e) => this.logger.error({ err: e }, 'a training step failed outside the numeric guard; the step is charged, the message keeps its outcome'),
      onQuarantine: (entry) => this.admin.index.add(entry),
    });
    return this.pipeline;
  }

  async start(): Promise<void> {
    await this.listen();
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
    const pipeline = this.buildPipeline(resilientSink((messages) => producer.send(c.topics.quarantine, messages), this.metrics, this.logger));
    const consumer = this.consumer;
    await consumer.subscribe(c.topics.records, c.kafka.fromBeginning);
    await checkOffsetsAtStart(consumer, this.offsetContext()).catch(async (e) => {
      await this.stop();
      throw e;
    });
    await consumer.run({
      onBatch: (batch, control) => this.exclusive(() => this.handleBatch(batch, control)),
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
      if (this.stopping) return;
      void this.exclusive(async () => {
        if (pipeline.handledSinceCheckpoint > 0 || this.trainer.stepsSinceCheckpoint > 0) await this.checkpointLocked();
      }).catch(() => undefined);
    }, c.checkpoint.intervalMs);
    this.timer.unref();
    if (c.checkpoint.quietStepIntervalMs > 0) {
      // Quiet-stream steps: decided by the clock and by whether any message is still inside its window only.
      this.quietTimer = setInterval(() => {
        if (this.stopping) return;
        void this.exclusive(() => this.trainer.tick()).catch((e) => this.logger.error({ err: e }, 'quiet-stream step failed'));
      }, c.checkpoint.quietStepIntervalMs);
      this.quietTimer.unref();
    }
    this.logger.info({ topic: c.topics.records, brokers: c.kafka.brokers, backend: this.backend }, 'consuming');
  }

  /** kafkajs gave up on the consumer (a non-retriable error): start it again with backoff until it runs. */
  private restartConsumer(): void {
    const consumer = this.consumer;
    if (!consumer || this.stopping) return;
    void retryWithBackoff(() => consumer.restart(), {
      abandon: () => this.stopping,
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
      abandon: () => this.stopping || !control.shouldContinue(),
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

  private async handleBatch(batch: ConsumedBatch, control: BatchControl): Promise<void> {
    const pipeline = this.pipeline;
    if (!pipeline) throw new TayguardError('INTERNAL', 'a batch arrived before start() built the record path; this is a bug in tayguard: report it');
    if (!checkBatchOffsets(batch, this.offsetContext())) return;
    for (const message of batch.messages) {
      if (this.stopping || !control.shouldContinue()) break;
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
      if (pipeline.handledSinceCheckpoint >= this.config.checkpoint.everyRecords && !(await this.durably('checkpoint', () => this.checkpointLocked(), control))) return;
    }
    const last = batch.messages[batch.messages.length - 1];
    if (last) this.metrics.lag.set({ topic: batch.topic, partition: String(batch.partition) }, Math.max(0, Number(BigInt(batch.highWatermark) - BigInt(last.offset) - 1n)));
    await this.durably('quarantine flush', () => pipeline.flushQuarantine(), control);
  }

  /** Make everything handled so far durable, then commit. Safe to call at any time. */
  checkpoint(): Promise<void> {
    return this.exclusive(() => this.checkpointLocked());
  }

  private async checkpointLocked(): Promise<void> {
    const pipeline = this.pipeline;
    if (!pipeline || (pipeline.handledSinceCheckpoint === 0 && this.trainer.stepsSinceCheckpoint === 0)) return;
    const end = this.metrics.checkpointSeconds.startTimer();
    try {
      await this.trainer.flush();
      await pipeline.flushQuarantine();
      const trained = this.trainer.stepsSinceCheckpoint;
      if (this.gate && trained > 0) {
        // The gate judged (and if need be rolled back) every ROLLBACK_EVERY_STEPS steps; report its last judgement.
        const score = this.gate.servedScore ?? this.gate.score();
        this.metrics.canaryAccuracy.set(score.accuracy);
        this.metrics.canaryLoss.set(score.loss);
      }
      const seq = this.seq + 1;
      let modelVersion = trained > 0 ? seq : this.modelVersion;
      const snapshot = this.learner.snapshot();
      const averaged = this.average?.snapshot();
      // Never publish a broken model: one that fails the probe keeps the last good version served.
      const unservable = trained > 0 ? probeCandidate(this.serving, averaged ?? snapshot) : null;
      if (unservable) {
        modelVersion = this.modelVersion;
        this.health.publishRefused(unservable);
        this.logger.error({ reason: unservable }, `ALERT: the trained model failed the publish probe (${unservable}); version ${this.modelVersion} stays served`);
      }
      const gateBest = this.gate?.bestSnapshot();
      const topic = this.config.topics.records;
      const offsets = this.dedup.nextOffsets(topic);
      const { header, weights } = encodeCheckpoint({
        seq,
        createdAt: new Date().toISOString(),
        model: modelIdentity(this.config, this.learner),
        learningRate: this.config.training.learningRate,
        topic,
        offsets,
        dedup: this.dedup.toJSON(),
        counts: this.tally.counts,
        accountant: this.trainer.toJSON(),
        modelVersion,
        screens: this.screens.toJSON(),
        ...(this.auditor ? { audit: this.auditor.toJSON() } : {}),
        ...(this.gate ? { gate: { state: this.gate.toJSON(), best: gateBest } } : {}),
        ...(this.average && averaged ? { average: { state: this.average.toJSON(), weights: averaged } } : {}),
        weights: snapshot,
      });
      faultPoint('before-checkpoint-write');
      await this.store.write(header, weights);
      faultPoint('after-checkpoint-write');
      for (const [screen, bytes] of Object.entries(this.screens.stateBytes())) this.metrics.screenStateBytes.set({ screen }, bytes);
      for (const [screen, bytes] of Object.entries(this.screens.stateBudgets())) this.metrics.screenStateBudget.set({ screen }, bytes);
      this.seq = seq;
      this.trainer.markCheckpointed();
      pipeline.handledSinceCheckpoint = 0;
      // Only a checkpoint that trained changes what is served (and publishes a new version): otherwise serving
      // keeps the weights of the version it names.
      if (trained > 0 && !unservable) this.serving.restore(averaged ?? snapshot);
      this.lastCheckpointAt = header.createdAt;
      this.updatePrivacyGauges();
      this.scoreAudit();
      this.lastCheckpointError = null;
      this.health.checkpointSucceeded();
      this.metrics.checkpoints.inc();
      if (modelVersion !== this.modelVersion) {
        try {
          const rolledBack = this.gate ? this.gate.rollbackCount > this.rollbacksPublished : false;
          const published = this.budget(); // the figure just checkpointed: what this version is published under
          const version = await this.publisher.publish(this.serving.model, {
            version: modelVersion,
            createdAt: header.createdAt,
            checkpointSeq: seq,
            featurizer: this.learner.featurizer.describe(),
            numClasses: this.learner.numClasses,
            backend: this.backend,
            privacy: {
              epsilon: published.epsilon?.spent ?? null,
              delta: published.delta,
              accountant: published.accountant,
              unit: published.unit,
              ...(this.config.privacy ? { sampleRate: this.config.privacy.sampleRate, noiseMultiplier: this.config.privacy.noiseMultiplier } : {}),
            },
            gate: this.gate ? { rolledBack } : null,
          });
          if (this.gate) this.rollbacksPublished = this.gate.rollbackCount;
          await this.announce(version);
          this.modelVersion = modelVersion;
          this.metrics.modelVersion.set(modelVersion);
        } catch (e) {
          // The checkpoint is the source of truth; a failed publish is retried with the next checkpoint.
          this.logger.error({ err: e }, 'publishing the model version failed');
        }
      }
      this.sampleHistory(header.createdAt);
      if (this.consumer && offsets.length > 0) {
        try {
          await this.consumer.commit(offsets);
          faultPoint('after-commit');
        } catch (e) {
          // Safe to continue: the checkpoint holds these offsets and the watermark filters redeliveries.
          this.logger.warn({ err: e }, 'committing offsets failed; the next checkpoint retries');
        }
      }
    } catch (e) {
      this.lastCheckpointError = (e as Error).message;
      this.health.checkpointFailed(e);
      this.logger.error({ err: e }, 'checkpoint failed');
      throw e;
    } finally {
      end();
    }
  }

  /**
   * Tell `<prefix>.models` about a new version, for learners that would rather subscribe than poll MODEL_DIR. Not a
   * durable outcome: the version directory is the source of truth, so a failed announcement is logged, not retried.
   */
  private async announce(v: PublishedVersion): Promise<void> {
    if (!this.producer) return;
    const message = { name: v.name, version: v.version, path: path.join(this.config.checkpoint.modelDir, v.name), weightsSha256: v.weightsSha256, epsilon: v.privacy.epsilon, delta: v.privacy.delta, createdAt: v.createdAt };
    try {
      await this.producer.send(this.config.topics.models, [{ key: v.name, value: JSON.stringify(message) }]);
    } catch (e) {
      this.logger.warn({ err: e, version: v.version }, `announcing the version on ${this.config.topics.models} failed; it is published in MODEL_DIR`);
    }
  }

  /** Start the HTTP server (start() does this; tests may call it alone to check the API without Kafka). */
  async listen(): Promise<void> {
    const app = createApp(this, this.config, this.logger);
    this.server = app.listen(this.config.http.port, this.config.http.host);
    applyServerLimits(this.server, this.config);
    await once(this.server, 'listening');
  }

  get port(): number {
    const address = this.server?.address();
    return typeof address === 'object' && address ? address.port : this.config.http.port;
  }

  status(): SidecarStatus {
    return {
      ready: this.joined && this.modelLoaded && !this.stopping && this.health.report().ok,
      joined: this.joined,
      modelLoaded: this.modelLoaded,
      stopping: this.stopping,
      modelVersion: this.modelVersion,
      checkpointSeq: this.seq,
      backend: this.backend,
      inputDim: this.learner?.featurizer.dim ?? this.config.model.inputDim,
      counts: this.tally?.counts,
      lastCheckpointAt: this.lastCheckpointAt,
      lastCheckpointError: this.lastCheckpointError,
      gate: this.gate
        ? { canaries: this.gate.canaries.size, accepted: this.gate.accepted, rejected: this.gate.rejected, alerts: [...this.gate.alerts] }
        : null,
      health: { ...this.health.report(), stepRollbacks: this.guard?.rollbacks ?? 0 },
    };
  }

  predict(payloads: readonly Payload[]): { modelVersion: number; probabilities: number[][] } {
    if (!this.modelLoaded) throw new TayguardError('MODEL_NOT_READY', 'the model is still loading; retry in a moment', { retriable: true });
    return { modelVersion: this.modelVersion, probabilities: this.serving.predict(payloads) };
  }

  /**
   * GET /v1/privacy/budget: the guarantee as configured and as spent (never a made-up ε) — always the figure of
   * the last checkpoint, like the weights that predictions use, so the reported ε can never go down after a
   * crash. Only the audit's latest round is added live (it is computed from the published model).
   */
  budget(): BudgetResponse {
    this.checkpointedBudget ??= this.budgetNow();
    return { ...this.checkpointedBudget, audit: this.auditor?.latest() ?? null };
  }

  private budgetNow(): BudgetResponse {
    return budgetStatus(this.config, this.trainer, this.lastCheckpointAt, this.crossRecordScreens(), this.startedFrom);
  }

  /** After a checkpoint: score the audit round on the published weights if its canaries are fully exposed. */
  private scoreAudit(): void {
    if (!this.auditor) return;
    const spent = this.budget().epsilon?.spent ?? null;
    const result = this.auditor.maybeScore(this.trainer.progress, this.serving, spent);
    if (!result) return;
    this.metrics.auditRounds.inc();
    this.metrics.auditLowerBound.set(result.epsilonLowerBound);
    this.metrics.auditAlarm.set(result.alarm ? 1 : 0);
    if (result.alarm) {
      this.logger.error({ audit: result }, `ALARM: the audit's ε lower bound ${result.epsilonLowerBound.toFixed(3)} exceeds the accountant's ε ${result.epsilonAccounted?.toFixed(3)}: suspect clipping, noise, sampling or accounting`);
    } else if (result.exceeds) {
      this.logger.warn({ audit: result }, `the audit's ε lower bound exceeds the accountant's ε in this round (expected in ~5% of rounds); a second round in a row raises the alarm`);
    } else {
      this.logger.info({ audit: result }, 'privacy audit round completed');
    }
  }

  /** GET /v1/history: the figures at each checkpoint, both halves (the HTTP layer releases the operator half to the operator only). */
  history(): StatusHistory {
    return this.figures;
  }

  private sampleHistory(at: string): void {
    this.figures.record(sampleOf(at, this.status(), this.budget(), this.gate));
  }

  /** GET /v1/privacy/audit */
  audit(): unknown {
    return this.auditor?.status() ?? { enabled: false, note: 'the membership-inference audit is off: set AUDIT_CANARIES (e.g. 200) to run it continuously' };
  }

  /** Stages that look across records: they can change which records are trained on (docs/architecture.md invariant 4). */
  private crossRecordScreens() {
    return [...(this.screens?.detectors ?? []), ...(this.gate ? [this.gate] : [])]
      .filter((d) => d.scope === 'cross-record')
      .map((d) => ({
        stage: d.name,
        scope: 'cross-record' as const,
        note: 'decides admission from other records\' statistics (not noised): outside the DP guarantee, see docs/privacy.md',
      }));
  }

  /** At start-up and right after each durable checkpoint: the figure /v1/privacy/budget reports until the next. */
  private updatePrivacyGauges(): void {
    this.checkpointedBudget = this.budgetNow();
    const b = this.checkpointedBudget;
    if (b.epsilon === null || b.mechanism === 'none') return;
    this.metrics.epsilonSpent.set(b.epsilon.spent);
    this.metrics.epsilonLimit.set(b.epsilon.limit);
    this.metrics.epsilonRemaining.set(b.epsilon.remaining);
    this.metrics.budgetExhausted.set(b.epsilon.exhausted ? 1 : 0);
    this.metrics.dpSteps.set(b.mechanism.steps);
  }

  /**
   * Graceful stop (SIGTERM): stop fetching, finish the batch in hand, checkpoint, commit, disconnect.
   * Bounded by STOP_DEADLINE_MS so the process exits within 30 s even if the broker is gone; whatever was not
   * checkpointed by then is simply redelivered next time (its offsets were never committed).
   */
  stop(): Promise<void> {
    this.stopped ??= this.doStop();
    return this.stopped;
  }

  private async doStop(): Promise<void> {
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    if (this.quietTimer) clearInterval(this.quietTimer);
    if (this.consumer) this.consumer.pauseAll(this.config.topics.records);
    const deadline = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), STOP_DEADLINE_MS).unref());
    let checkpointError: unknown;
    const work = (async () => {
      if (this.pipeline) await this.checkpoint().catch((e) => (checkpointError = e));
      await this.consumer?.disconnect().catch((e) => this.logger.warn({ err: e }, 'consumer disconnect failed'));
      await this.producer?.disconnect().catch((e) => this.logger.warn({ err: e }, 'producer disconnect failed'));
      await this.quarantineReader?.close().catch((e) => this.logger.warn({ err: e }, 'quarantine reader disconnect failed'));
    })();
    const timedOut = (await Promise.race([work, deadline])) === 'timeout';
    if (timedOut) this.logger.error('stop deadline reached; exiting without a final checkpoint');
    this.lastStop = stopOutcome({ timedOut, checkpointError, pipeline: this.pipeline, trainer: this.trainer });
    if (this.server) {
      this.server.closeAllConnections();
      await new Promise<void>((resolve) => this.server?.close(() => resolve()));
    }
    this.logger.info({ counts: this.tally?.counts }, 'stopped');
  }
}
