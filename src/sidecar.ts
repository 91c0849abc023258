/**
 * The sidecar: wires config, model, checkpoint store, pipeline, Kafka ingest and HTTP together, and owns the
 * one ordering rule everything else relies on (ARCHITECTURE.md invariant 1):
 *   train buffered records → flush quarantine (acked) → write checkpoint (fsync) → publish model → commit offsets.
 * Batch handling and checkpoints never interleave: both run under one lock.
 */
import type { Server } from 'node:http';
import { once } from 'node:events';
import type { Config } from './config';
import { createLogger, type Logger } from './logger';
import { createMetrics, type Metrics } from './metrics';
import { initTf } from './tf';
import { createLearner } from './model/build';
import type { TfjsLearner } from '../middleware/learner';
import { CheckpointStore, type CheckpointHeader } from './checkpoint/store';
import { resumeState } from './checkpoint/resume';
import { ModelPublisher } from './checkpoint/publish';
import { Deduplicator } from './dedup';
import { OutcomeTally, type OutcomeCounts } from './counts';
import { Pipeline, type QuarantineSink } from './pipeline';
import { PlainTrainer } from './trainer/plain';
import { DpTrainer } from './trainer/dp';
import type { Trainer } from './trainer/types';
import { budgetStatus, type BudgetResponse } from './privacy-status';
import { readPretrainInfo } from './pretrain/pretrain';
import { createScreens } from './screens';
import { createUpdateGate } from './gate';
import type { UpdateGate, GateAlert } from '../filters/update-gate';
import { releaseSigner, type ReleaseSigner } from './admin/release';
import { AdminService } from './admin/service';
import { Auditor } from './audit';
import type { DetectorChain } from '../filters';
import { createConsumer, createKafka, createProducer, type RecordConsumer, type RecordProducer, type ConsumedBatch, type BatchControl } from './kafka/client';
import { createApp } from './http/app';
import { TayguardError } from './errors';
import { faultPoint } from './faults';
import type { Payload } from '../middleware/featurize';
import { WeightAverage } from '../middleware/weight-average';
import { Health, type HealthReport } from './health';
import { StepGuard } from './trainer/guard';
import { checkOffsetsAtStart, checkBatchOffsets } from './kafka/offsets';
import { retryWithBackoff } from './retry';
import { probeCandidate } from './model/probe';
import { applyServerLimits } from './http/limits';
import { stopOutcome, type StopOutcome } from './stop-outcome';
import { resilientSink } from './quarantine/sink';
import { describeTrainingLoss } from './loss-metric';

export interface SidecarOptions {
  readonly config: Config;
  readonly logger?: Logger;
}

export interface SidecarStatus {
  readonly ready: boolean;
  readonly joined: boolean;
  readonly modelLoaded: boolean;
  readonly stopping: boolean;
  readonly modelVersion: number;
  readonly checkpointSeq: number;
  readonly backend: string;
  readonly inputDim: number;
  readonly counts: OutcomeCounts;
  readonly lastCheckpointAt: string | null;
  readonly lastCheckpointError: string | null;
  readonly gate: { canaries: number; accepted: number; rejected: number; alerts: GateAlert[] } | null;
  /** Failing checks behind a 503 (src/health.ts), and the numeric guard's recent rollbacks. */
  readonly health: HealthReport & { readonly stepRollbacks: number };
}

const STOP_DEADLINE_MS = 25_000;

export class Sidecar {
  readonly config: Config;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** The model being trained. Never read by /v1/predict: see `serving`. */
  learner!: TfjsLearner;
  /**
   * The model as of the last checkpoint, which is what predictions use. Serving the in-training weights would
   * reveal steps that a crash could make the accountant forget (their records are redelivered and trained
   * again); serving only checkpointed weights keeps every observable step accounted.
   */
  serving!: TfjsLearner;
  /** The moving average of the weights that `serving` is restored from when AVERAGE_DECAY > 0. */
  average?: WeightAverage;
  trainer!: Trainer;
  screens!: DetectorChain;
  gate?: UpdateGate;
  auditor?: Auditor;
  pipeline!: Pipeline;
  private dedup!: Deduplicator;
  private tally!: OutcomeTally;
  private readonly store: CheckpointStore;
  private readonly publisher: ModelPublisher;
  private consumer?: RecordConsumer;
  private producer?: RecordProducer;
  private server?: Server;
  private timer?: NodeJS.Timeout;
  private quietTimer?: NodeJS.Timeout;
  private lock: Promise<unknown> = Promise.resolve();
  private backend = 'unknown';
  private seq = 0;
  private modelVersion = 0;
  private joined = false;
  private modelLoaded = false;
  private stopping = false;
  private stopped?: Promise<void>;
  private lastCheckpointAt: string | null = null;
  private lastCheckpointError: string | null = null;
  private readonly signer?: ReleaseSigner;
  readonly admin: AdminService;
  /** The budget as of the last durable checkpoint (or start-up): the only figure the public surface shows. */
  private checkpointedBudget?: BudgetResponse;
  /** What the model started from (budget statement): fresh, public pretraining, or another MODEL_PATH model. */
  private startedFrom: BudgetResponse['start'] = { from: 'fresh' };
  readonly health: Health;
  guard?: StepGuard;
  /** How the last stop went (clean: everything handled is in a durable checkpoint); set by stop(). */
  lastStop?: StopOutcome;

  constructor(o: SidecarOptions) {
    this.config = o.config;
    this.logger = o.logger ?? createLogger(o.config.logLevel);
    this.metrics = createMetrics();
    this.store = new CheckpointStore(o.config.checkpoint.dir, o.config.checkpoint.kept);
    this.publisher = new ModelPublisher(o.config.checkpoint.modelDir);
    this.health = new Health(this.metrics, o.config.ops.readyBrokerTimeoutMs);
    if (o.config.http.adminToken) this.signer = releaseSigner(o.config.http.adminToken);
    this.admin = new AdminService({
      signer: this.signer,
      recordsTopic: o.config.topics.records,
      producer: () => this.producer,
      registry: () => this.screens.registry,
      logger: this.logger,
      indexBytes: o.config.ops.quarantineIndexBytes,
    });
  }

  /** Run `fn` exclusively with respect to batch handling and checkpoints. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(fn, fn);
    this.lock = run.catch(() => undefined);
    return run;
  }

  /** Load the model and resume from the newest checkpoint. No Kafka needed. */
  async init(): Promise<void> {
    this.backend = await initTf();
    await this.store.init();
    await this.publisher.init();
    this.learner = await createLearner(this.config);
    const pretrained = await readPretrainInfo(this.config.model.path);
    this.startedFrom = pretrained
      ? { from: 'public-pretraining', publicData: { file: pretrained.publicData.file, sha256: pretrained.publicData.sha256, records: pretrained.publicData.records } }
      : this.config.model.path !== undefined ? { from: 'model-path' } : { from: 'fresh' };
    this.serving = await createLearner(this.config);
    const latest = await this.store.latest();
    const resumed = latest ? resumeState(latest, this.config, this.modelIdentity()) : undefined;
    if (latest && resumed) {
      this.learner.restore(resumed.weights);
      this.seq = resumed.seq;
      this.modelVersion = resumed.modelVersion;
      this.lastCheckpointAt = resumed.createdAt;
      this.logger.info({ checkpoint: latest.file, seq: resumed.seq, offsets: latest.header.offsets }, 'resumed from checkpoint');
    }
    if (this.config.training.averageDecay > 0) {
      this.average = new WeightAverage(this.learner, this.config.training.averageDecay);
      if (resumed?.average) this.average.restore(resumed.average.weights.data, resumed.average.state);
      // Trained weights without an average (a checkpoint from before AVERAGE_DECAY, a MODEL_PATH model): start there.
      else if (resumed || this.config.model.path) this.average.startWarm();
    }
    // With AVERAGE_DECAY now 0 over a checkpoint that served an average, keep serving that average (it is the
    // published version the checkpoint names) until the next checkpoint publishes the trained weights.
    this.serving.restore(this.average?.snapshot() ?? resumed?.average?.weights ?? this.learner.snapshot());
    this.dedup = Deduplicator.fromJSON(resumed?.dedup, this.config.limits.dedupIdsKept);
    this.tally = new OutcomeTally(this.metrics, resumed?.counts);
    this.screens = createScreens(this.config, { serving: this.serving, trainedRecords: () => this.tally.counts.trained });
    if (resumed?.screens) this.screens.restore(resumed.screens);
    if (this.config.gate) this.gate = createUpdateGate(this.config, this.learner, this.screens.registry, this.metrics, this.logger, this.average);
    if (this.gate && resumed?.gate) this.gate.restore(resumed.gate.state, resumed.gate.best);
    // The average is the outermost stage: it folds in a step only once the gate has let it stand.
    const stages = [...(this.average ? [this.average.stage()] : []), ...(this.gate ? [this.gate.stage()] : [])];
    // Innermost: the gate and the average only ever see a step that the numeric guard let stand.
    this.guard = new StepGuard(this.learner, this.metrics, this.logger, this.config.ops.maxFeatureAbs);
    stages.push(this.guard.stage());
    const p = this.config.privacy;
    this.trainer =
      p === null
        ? new PlainTrainer(this.learner, this.metrics, this.config.training.batchSize, stages)
        : new DpTrainer(this.learner, this.metrics, p, resumed?.trainer ?? undefined, stages);
    describeTrainingLoss(this.metrics, this.trainer.mode, this.gate !== undefined);
    if (this.config.audit) {
      this.auditor = new Auditor(
        {
          ...this.config.audit,
          numClasses: this.config.model.numClasses,
          task: this.config.model.kind,
          featureDim: this.learner.featurizer.dim,
          delta: p?.delta ?? 1e-6,
          exposure: this.trainer.exposure,
        },
        resumed?.audit,
      );
    }
    this.metrics.modelVersion.set(this.modelVersion);
    this.updatePrivacyGauges();
    this.modelLoaded = true;
  }

  private modelIdentity() {
    return { task: this.config.model.kind, inputDim: this.learner.featurizer.dim, numClasses: this.learner.numClasses };
  }

  /** Build the pipeline around a quarantine sink (the Kafka producer in production). */
  private buildPipeline(sink: QuarantineSink): void {
    const c = this.config;
    this.pipeline = new Pipeline({
      trainer: this.trainer,
      limits: {
        numClasses: c.model.numClasses,
        featureDim: c.model.kind === 'dense' ? this.learner.featurizer.dim : undefined,
        task: c.model.kind,
        maxTextChars: c.limits.maxTextChars,
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
      onQuarantine: (entry) => this.admin.index.add(entry),
    });
  }

  async start(): Promise<void> {
    if (!this.modelLoaded) await this.init();
    await this.listen();
    const c = this.config;
    const kafka = createKafka({ brokers: c.kafka.brokers, clientId: c.kafka.clientId, logger: this.logger });
    try {
      this.producer = await createProducer(kafka);
      this.consumer = await createConsumer(kafka, c.kafka.groupId, c.kafka.sessionTimeoutMs);
    } catch (e) {
      throw new TayguardError('BROKER_UNAVAILABLE', `cannot reach Kafka at ${c.kafka.brokers.join(',')}: ${(e as Error).message}. Check KAFKA_BROKERS (for a local broker: npm run broker)`, { cause: e, retriable: true });
    }
    const producer = this.producer;
    this.buildPipeline(resilientSink((messages) => producer.send(c.topics.quarantine, messages), this.metrics, this.logger));
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
        if (this.pipeline.handledSinceCheckpoint > 0 || this.trainer.stepsSinceCheckpoint > 0) await this.checkpointLocked();
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
    if (!checkBatchOffsets(batch, this.offsetContext())) return;
    for (const message of batch.messages) {
      if (this.stopping || !control.shouldContinue()) break;
      const stepsBefore = this.trainer.stepsSinceCheckpoint;
      await this.pipeline.handle(message);
      control.resolve(message.offset);
      if (this.auditor) {
        // Canaries ride along with user traffic, straight into the trainer: never counted, never on Kafka. When
        // one is due depends on consumed messages and steps only — never on whether a record was trained.
        const canary = this.auditor.canaryDue(this.trainer.progress);
        if (canary) await this.trainer.admitCanary(canary);
      }
      // A training step blocks the event loop for its duration; give heartbeats a turn after each one.
      if (this.trainer.stepsSinceCheckpoint !== stepsBefore) await control.heartbeat();
      if (this.pipeline.handledSinceCheckpoint >= this.config.checkpoint.everyRecords && !(await this.durably('checkpoint', () => this.checkpointLocked(), control))) return;
    }
    const last = batch.messages[batch.messages.length - 1];
    if (last) this.metrics.lag.set({ topic: batch.topic, partition: String(batch.partition) }, Math.max(0, Number(BigInt(batch.highWatermark) - BigInt(last.offset) - 1n)));
    await this.durably('quarantine flush', () => this.pipeline.flushQuarantine(), control);
  }

  /** Make everything handled so far durable, then commit. Safe to call at any time. */
  checkpoint(): Promise<void> {
    return this.exclusive(() => this.checkpointLocked());
  }

  private async checkpointLocked(): Promise<void> {
    if (!this.pipeline || (this.pipeline.handledSinceCheckpoint === 0 && this.trainer.stepsSinceCheckpoint === 0)) return;
    const end = this.metrics.checkpointSeconds.startTimer();
    try {
      await this.trainer.flush();
      await this.pipeline.flushQuarantine();
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
      // Weight bytes: trained, then averaged, then the gate's best model, each block one model long (checkpoint/resume.ts).
      const gateBest = this.gate?.bestSnapshot();
      const blocks = [snapshot.data, ...(averaged ? [averaged.data] : []), ...(gateBest ? [gateBest.data] : [])];
      const topic = this.config.topics.records;
      const offsets = this.dedup.nextOffsets(topic);
      const header: CheckpointHeader = {
        seq,
        createdAt: new Date().toISOString(),
        model: this.modelIdentity(),
        weightSpecs: snapshot.specs,
        optimizer: { name: 'sgd', learningRate: this.config.training.learningRate },
        offsets: { [topic]: Object.fromEntries(offsets.map((o) => [String(o.partition), o.offset])) },
        dedup: this.dedup.toJSON(),
        counts: this.tally.counts,
        accountant: this.trainer.toJSON(),
        extra: {
          modelVersion,
          screens: this.screens.toJSON(),
          ...(this.auditor ? { audit: this.auditor.toJSON() } : {}),
          ...(this.gate ? { gate: { ...this.gate.toJSON(), ...(gateBest ? { bestOffset: snapshot.data.length * (averaged ? 2 : 1) } : {}) } } : {}),
          // The averaged weights follow the training weights in the same file, from byte `offset`.
          ...(this.average ? { average: { ...this.average.toJSON(), offset: snapshot.data.length } } : {}),
        },
      };
      faultPoint('before-checkpoint-write');
      await this.store.write(header, blocks.length > 1 ? Buffer.concat(blocks) : snapshot.data);
      faultPoint('after-checkpoint-write');
      this.seq = seq;
      this.trainer.markCheckpointed();
      this.pipeline.handledSinceCheckpoint = 0;
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
          await this.publisher.publish(this.serving.model, {
            version: modelVersion,
            createdAt: header.createdAt,
            checkpointSeq: seq,
            featurizer: this.learner.featurizer.describe(),
            numClasses: this.learner.numClasses,
            backend: this.backend,
            privacy: { epsilon: this.budget().epsilon?.spent ?? null, delta: this.budget().delta, accountant: this.budget().accountant, unit: this.budget().unit },
          });
          this.modelVersion = modelVersion;
          this.metrics.modelVersion.set(modelVersion);
        } catch (e) {
          // The checkpoint is the source of truth; a failed publish is retried with the next checkpoint.
          this.logger.error({ err: e }, 'publishing the model version failed');
        }
      }
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

  /** GET /v1/privacy/audit */
  audit(): unknown {
    return this.auditor?.status() ?? { enabled: false, note: 'the membership-inference audit is off: set AUDIT_CANARIES (e.g. 200) to run it continuously' };
  }

  /** Stages that look across records: they can change which records are trained on (invariant 4). */
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
