/**
 * The sidecar: wires config, model, checkpoint store, pipeline, Kafka ingest and HTTP together, and owns the
 * one ordering rule everything else relies on (docs/architecture.md invariant 1):
 *   train buffered records → flush quarantine (acked) → write checkpoint (fsync) → publish model → commit offsets.
 * Batch handling and checkpoints never interleave: both run under one lock.
 */
import type { Server } from 'node:http';
import { once } from 'node:events';
import type { Config } from './config';
import { createLogger, type Logger } from './logger';
import type { Metrics } from './metrics';
import type { TfjsLearner } from '../middleware/learner';
import { CheckpointStore } from './checkpoint/store';
import { Deduplicator } from './dedup';
import { OutcomeTally } from './counts';
import { Pipeline, type QuarantineSink } from './pipeline';
import type { Trainer } from '../train/types';
import { budgetStatus, type BudgetResponse } from './privacy-status';
import type { UpdateGate } from '../train/gate';
import type { ReleaseSigner } from './admin/release';
import { AdminService } from './admin/service';
import { Auditor } from './audit/auditor';
import type { DetectorChain } from '../filters';
import type { ConsumedBatch, BatchControl } from './ingest/client';
import { createApp } from './http/app';
import { TayguardError } from '../core/errors';
import { faultPoint } from './faults';
import type { Payload } from '../middleware/featurize';
import { WeightAverage } from '../train/average';
import { Health } from './health';
import type { SidecarStatus } from './http/types';
import { StepGuard } from '../train/guard';
import { probeCandidate } from '../middleware/probe';
import { applyServerLimits } from './http/limits';
import { stopOutcome, type StopOutcome } from './stop-outcome';
import { StatusHistory, sampleOf } from './history';
import { assembleSidecar, type SidecarParts } from './assemble';
import { ConsumeLoop } from './ingest/loop';
import { announceVersion, composeCheckpoint, publishVersion, scoreAuditRound } from './checkpoint/sidecar-step';

/**
 * Build a sidecar in one go: load the model, resume from the newest checkpoint, build the screens, the update
 * gate, the step stages (train/step-order.ts), the trainer and the audit. No Kafka needed; start() connects.
 */
export async function createSidecar(config: Config, logger: Logger = createLogger(config.logLevel)): Promise<Sidecar> {
  return new Sidecar(await assembleSidecar(config, logger));
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
  /** The Kafka side: producer, consumer, quarantine reader, timers (src/ingest/loop.ts). */
  private readonly ingest: ConsumeLoop;
  /** What createSidecar built; its seq, modelVersion and lastCheckpointAt are the start-up values (the fields below are current). */
  private readonly parts: SidecarParts;
  private server?: Server;
  private lock: Promise<unknown> = Promise.resolve();
  private readonly backend: string;
  private seq: number;
  private modelVersion: number;
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
    this.parts = parts;
    ({
      config: this.config,
      logger: this.logger,
      metrics: this.metrics,
      store: this.store,
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
    this.ingest = new ConsumeLoop(parts, {
      stopping: () => this.stopping,
      exclusive: (fn) => this.exclusive(fn),
      checkpointLocked: () => this.checkpointLocked(),
      pipeline: () => this.pipeline,
      buildPipeline: (sink) => this.buildPipeline(sink),
      stop: () => this.stop(),
    });
    this.admin = new AdminService({
      signer: this.signer,
      recordsTopic: this.config.topics.records,
      quarantineTopic: this.config.topics.quarantine,
      producer: () => this.ingest.producer,
      reader: () => this.ingest.quarantineReader,
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
    await this.ingest.start();
  }

  /** One batch, under the lock (the consume loop calls it; tests call it directly after buildPipeline). */
  private handleBatch(batch: ConsumedBatch, control: BatchControl): Promise<void> {
    return this.ingest.handleBatch(batch, control);
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
      const offsets = this.dedup.nextOffsets(this.config.topics.records);
      const { header, weights } = composeCheckpoint(this.parts, { seq, modelVersion, offsets, snapshot, averaged });
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
      scoreAuditRound(this.parts, this.budget().epsilon?.spent ?? null);
      this.lastCheckpointError = null;
      this.health.checkpointSucceeded();
      this.metrics.checkpoints.inc();
      if (modelVersion !== this.modelVersion) {
        try {
          const rolledBack = this.gate ? this.gate.rollbackCount > this.rollbacksPublished : false;
          const published = this.budget(); // the figure just checkpointed: what this version is published under
          const version = await publishVersion(this.parts, { version: modelVersion, createdAt: header.createdAt, checkpointSeq: seq, gate: this.gate ? { rolledBack } : null }, published);
          if (this.gate) this.rollbacksPublished = this.gate.rollbackCount;
          await announceVersion(this.parts, this.ingest.producer, version);
          this.modelVersion = modelVersion;
          this.metrics.modelVersion.set(modelVersion);
        } catch (e) {
          // The checkpoint is the source of truth; a failed publish is retried with the next checkpoint.
          this.logger.error({ err: e }, 'publishing the model version failed');
        }
      }
      this.sampleHistory(header.createdAt);
      if (this.ingest.consumer && offsets.length > 0) {
        try {
          await this.ingest.consumer.commit(offsets);
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
      ready: this.ingest.joined && this.modelLoaded && !this.stopping && this.health.report().ok,
      joined: this.ingest.joined,
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
    this.ingest.clearTimers();
    if (this.ingest.consumer) this.ingest.consumer.pauseAll(this.config.topics.records);
    const deadline = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), STOP_DEADLINE_MS).unref());
    let checkpointError: unknown;
    const work = (async () => {
      if (this.pipeline) await this.checkpoint().catch((e) => (checkpointError = e));
      await this.ingest.consumer?.disconnect().catch((e) => this.logger.warn({ err: e }, 'consumer disconnect failed'));
      await this.ingest.producer?.disconnect().catch((e) => this.logger.warn({ err: e }, 'producer disconnect failed'));
      await this.ingest.quarantineReader?.close().catch((e) => this.logger.warn({ err: e }, 'quarantine reader disconnect failed'));
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
