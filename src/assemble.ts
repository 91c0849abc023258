/**
 * Assembling a sidecar's parts before it exists (createSidecar in src/sidecar.ts): load the model, resume from the
 * newest checkpoint, build the witness and the screens, refuse a configuration whose worst-case checkpoint exceeds
 * CHECKPOINT_MAX_BYTES (start-up validation), then the update gate, the step stages, the trainer and the audit.
 * No Kafka needed.
 */
import type { Config } from './config';
import type { Logger } from './logger';
import { createMetrics, type Metrics } from './metrics';
import { initTf } from '../core/tf';
import { createLearner } from '../middleware/build';
import type { TfjsLearner } from '../middleware/learner';
import { CheckpointStore } from './checkpoint/store';
import { checkCheckpointBudget, describeWorstCase, worstCaseCheckpoint } from './checkpoint/budget';
import { resumeState, type ModelIdentity } from './checkpoint/resume';
import { ModelPublisher } from './checkpoint/publish';
import { Deduplicator } from './dedup';
import { OutcomeTally } from './counts';
import { PlainTrainer } from '../train/plain';
import { DpTrainer } from '../train/dp';
import type { Trainer } from '../train/types';
import type { BudgetResponse } from './privacy-status';
import { readPretrainInfo } from './pretrain/pretrain';
import { createScreens } from './screens';
import { buildWitness } from './witness';
import { createUpdateGate } from '../train/gate-factory';
import type { UpdateGate } from '../train/gate';
import { aroundTheUpdate } from '../train/step-order';
import { releaseSigner, type ReleaseSigner } from './admin/release';
import { Auditor } from './audit/auditor';
import type { DetectorChain } from '../filters';
import { WeightAverage } from '../train/average';
import { Health } from './health';
import { StepGuard } from '../train/guard';
import { describeTrainingLoss } from './loss-metric';

/** Everything a sidecar is made of, built by createSidecar before the Sidecar exists. */
export interface SidecarParts {
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

/** Build every part of a sidecar in one go (see the header); createSidecar wraps them in a Sidecar. */
export async function assembleSidecar(config: Config, logger: Logger): Promise<SidecarParts> {
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
  return {
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
  };
}

export function modelIdentity(config: Config, learner: TfjsLearner): ModelIdentity {
  return { task: config.model.kind, inputDim: learner.featurizer.dim, numClasses: learner.numClasses };
}
