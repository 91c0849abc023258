/**
 * DP-SGD in the stream (Abadi et al. 2016), with the streaming window of privacy/sampler.ts:
 * every admitted record stays in the pool for exactly W steps and joins each step with probability q; a step
 * runs after every STEP_EVERY_RECORDS admissions (and on quiet-stream ticks). Each step:
 *   budget check (would ε pass the limit? then stop) → Poisson batch → per-example (or per-source) clipping
 *   + Gaussian noise from node:crypto → divide by the fixed expected batch q·W·S → apply → charge the step.
 * The pool, the coin state (seeded mode only) and the ledger go into the checkpoint, so a crash can repeat
 * accounting but never forget it; predictions are served from checkpointed weights only (src/sidecar.ts),
 * so steps lost in a crash were never observable.
 */
import type { Learner } from '../../middleware/learner';
import type { Metrics } from '../metrics';
import type { TrainingRecord } from '../record';
import { TayguardError } from '../errors';
import {
  AdaptiveClipper,
  PrivacyBudget,
  StreamingPoissonSampler,
  type AdaptiveClipState,
  createGaussianSource,
  createUniformSource,
  privateGradients,
  type BudgetStatus,
  type GaussianSource,
  type PrivacyUnit,
} from '../../privacy';
import { createStepRunner, type StepStage } from './step';
import type { AdmitResult, Trainer } from './types';

export interface DpOptions {
  readonly sampleRate: number;
  readonly noiseMultiplier: number;
  readonly clipNorm: number;
  readonly adaptiveClip?: { readonly targetQuantile: number; readonly learningRate: number; readonly countNoiseStd: number } | null;
  readonly window: number;
  readonly stepEveryRecords: number;
  readonly epsilonLimit: number;
  readonly delta: number;
  readonly unit: PrivacyUnit;
  readonly maxRecordsPerSource: number;
  readonly accountant: 'rdp' | 'prv';
  /** Reproducible mode (tests, replays). Not secure; the budget status says "seeded". */
  readonly seed?: string;
}

interface DpState {
  readonly version: 1;
  readonly sampler: unknown;
  readonly budget: unknown;
  readonly admittedSinceStep: number;
  readonly exhausted: boolean;
  readonly clip?: AdaptiveClipState;
}

export class DpTrainer implements Trainer {
  readonly mode = 'dp' as const;
  readonly randomness: 'crypto' | 'seeded';
  readonly ledger: PrivacyBudget;
  private readonly sampler: StreamingPoissonSampler<TrainingRecord>;
  private readonly noise: GaussianSource;
  private readonly step: ReturnType<typeof createStepRunner>;
  /** q·W·S: the expected batch in steady state. Fixed, so the divisor does not depend on the data. */
  readonly expectedBatchSize: number;
  private admittedSinceStep = 0;
  private steppedSinceTick = false;
  private exhausted = false;
  stepsSinceCheckpoint = 0;
  private cachedStatus?: { steps: number; status: BudgetStatus };
  private affordable?: { steps: number; ok: boolean };
  /** Adaptive clipping (Andrew et al. 2021), when configured. */
  readonly clipper?: AdaptiveClipper;

  constructor(
    learner: Learner,
    private readonly metrics: Metrics,
    readonly o: DpOptions,
    restored?: unknown,
    stages: readonly StepStage[] = [],
  ) {
    this.randomness = o.seed === undefined ? 'crypto' : 'seeded';
    this.noise = createGaussianSource(o.seed === undefined ? {} : { seed: `${o.seed}/noise` });
    this.expectedBatchSize = o.sampleRate * o.window * o.stepEveryRecords;
    const state = restored as DpState | null | undefined;
    if (state) {
      if (state.version !== 1) throw new TayguardError('CHECKPOINT_CORRUPT', `unknown DP state version ${String(state.version)}`);
      const saved = (state.sampler as { rngState?: unknown }).rngState;
      const rng = o.seed === undefined ? createUniformSource() : createUniformSource({ seed: `${o.seed}/coins`, state: saved });
      this.sampler = StreamingPoissonSampler.fromJSON<TrainingRecord>(state.sampler, rng);
      checkLedgerCompatible(state.budget, o);
      this.ledger = PrivacyBudget.fromJSON(state.budget, { epsilonLimit: o.epsilonLimit, plan: { sampleRate: o.sampleRate, noiseMultiplier: o.noiseMultiplier } });
      this.admittedSinceStep = state.admittedSinceStep;
      this.exhausted = state.exhausted;
    } else {
      const rng = o.seed === undefined ? createUniformSource() : createUniformSource({ seed: `${o.seed}/coins` });
      this.sampler = new StreamingPoissonSampler<TrainingRecord>({ sampleRate: o.sampleRate, window: o.window, rng });
      this.ledger = new PrivacyBudget({
        epsilonLimit: o.epsilonLimit,
        delta: o.delta,
        unit: o.unit,
        accountant: o.accountant,
        window: o.window,
        ...(o.unit === 'source' ? { maxRecordsPerSource: o.maxRecordsPerSource } : {}),
        plan: { sampleRate: o.sampleRate, noiseMultiplier: o.noiseMultiplier },
      });
    }
    if (o.adaptiveClip) {
      this.clipper = new AdaptiveClipper({
        initialClipNorm: o.clipNorm,
        ...o.adaptiveClip,
        noiseMultiplier: o.noiseMultiplier,
        expectedBatchSize: this.expectedBatchSize,
        noise: this.noise,
      });
      if (state?.clip) this.clipper.restore(state.clip);
    }
    const privatize: StepStage = {
      name: 'privatize',
      handle: (ctx, next) => {
        const groups = o.unit === 'source' ? sourceGroups(ctx.records) : undefined;
        // With adaptive clipping the accountant is still charged σ for the whole step; the gradient gets the
        // slightly larger σ_Δ because the noisy count of unclipped examples shares the step (Andrew et al. 2021).
        const { grads, norms } = privateGradients(learner.model, ctx.x, ctx.y, {
          clipNorm: this.clipper?.clipNorm ?? o.clipNorm,
          noiseMultiplier: this.clipper?.gradientNoiseMultiplier ?? o.noiseMultiplier,
          expectedBatchSize: this.expectedBatchSize,
          noise: this.noise,
          ...(groups ? { groups } : {}),
        });
        this.clipper?.update(norms);
        ctx.gradients = grads;
        return next();
      },
    };
    this.step = createStepRunner(learner, metrics, [...stages, privatize]);
  }

  async admit(record: TrainingRecord): Promise<AdmitResult> {
    if (this.exhausted || !this.nextStepAffordable()) {
      this.exhausted = true;
      return { kind: 'skipped', reason: 'budget_exhausted' };
    }
    if (this.o.unit === 'source') {
      const decision = this.ledger.checkSource(record.source);
      if (!decision.ok) return { kind: 'skipped', reason: decision.reason ?? 'source_budget_exhausted' };
      this.ledger.admitSource(record.source);
    }
    this.sampler.admit(record);
    this.admittedSinceStep += 1;
    if (this.admittedSinceStep >= this.o.stepEveryRecords) await this.takeStep();
    return { kind: 'trained' };
  }

  /** Whether one more step fits the budget; only changes when a step is recorded, so cached per step. */
  private nextStepAffordable(): boolean {
    const steps = this.ledger.steps;
    if (this.affordable?.steps !== steps) this.affordable = { steps, ok: this.ledger.canStep(this.o.sampleRate, this.o.noiseMultiplier) };
    return this.affordable.ok;
  }

  private async takeStep(): Promise<void> {
    this.admittedSinceStep = 0;
    const { sampleRate: q, noiseMultiplier: sigma } = this.o;
    // Checked BEFORE the step: a step that would overshoot is not taken (ARCHITECTURE.md invariant 2).
    if (!this.nextStepAffordable()) {
      this.exhausted = true;
      return;
    }
    const { records } = this.sampler.nextBatch();
    // An empty Poisson batch is still a step: it releases pure noise and is charged like any other.
    try {
      await this.step(records);
    } finally {
      // Charged even when a stage after the update throws (the update gate's judgement): the noisy update may
      // already be in the weights. Charging a step that never ran is only conservative.
      this.ledger.recordStep(q, sigma);
    }
    this.stepsSinceCheckpoint += 1;
    this.steppedSinceTick = true;
  }

  /** Nothing to do: the pool itself is checkpointed, so admitted records are durable without a step. */
  flush(): Promise<void> {
    return Promise.resolve();
  }

  /** On a quiet stream, keep stepping so that pooled records still get their window. */
  async tick(): Promise<void> {
    if (!this.steppedSinceTick && this.sampler.poolSize > 0 && !this.exhausted) await this.takeStep();
    this.steppedSinceTick = false;
  }

  markCheckpointed(): void {
    this.stepsSinceCheckpoint = 0;
  }

  get progress(): number {
    return this.ledger.steps;
  }

  /** A record admitted now leaves the pool after W more steps. */
  get exposure(): number {
    return this.o.window;
  }

  get poolSize(): number {
    return this.sampler.poolSize;
  }

  toJSON(): DpState {
    return {
      version: 1,
      sampler: this.sampler.toJSON(),
      budget: this.ledger.toJSON(),
      admittedSinceStep: this.admittedSinceStep,
      exhausted: this.exhausted,
      ...(this.clipper ? { clip: this.clipper.toJSON() } : {}),
    };
  }

  /** The clip norm in use (it moves with adaptive clipping). */
  get clipNorm(): number {
    return this.clipper?.clipNorm ?? this.o.clipNorm;
  }

  /** Ledger status, recomputed at most once per step (the PRV figure costs a convolution). */
  budget(): BudgetStatus & { exhaustedAndStopped: boolean } {
    const steps = this.ledger.steps;
    if (this.cachedStatus?.steps !== steps) this.cachedStatus = { steps, status: this.ledger.status() };
    return { ...this.cachedStatus.status, exhaustedAndStopped: this.exhausted };
  }
}

/**
 * The ledger's histories were computed under δ, unit, window and k; they cannot be re-based on other values.
 * The limit and (q, σ) may change between restarts (the history is kept, so ε never goes down).
 */
function checkLedgerCompatible(saved: unknown, o: DpOptions): void {
  const opts = (saved as { options?: Record<string, unknown> } | null)?.options ?? {};
  const want: Record<string, unknown> = {
    DELTA: [opts.delta, o.delta],
    PRIVACY_UNIT: [opts.unit, o.unit],
    WINDOW_STEPS: [opts.window, o.window],
    ACCOUNTANT: [opts.accountant, o.accountant],
    ...(o.unit === 'source' ? { SOURCE_MAX_RECORDS: [opts.maxRecordsPerSource, o.maxRecordsPerSource] } : {}),
  };
  const changed = Object.entries(want)
    .filter(([, v]) => (v as unknown[])[0] !== (v as unknown[])[1])
    .map(([name, v]) => `${name} (checkpoint: ${String((v as unknown[])[0])}, now: ${String((v as unknown[])[1])})`);
  if (changed.length > 0) {
    throw new TayguardError(
      'CONFIG_INVALID',
      `the privacy ledger in the checkpoint was kept under other settings: ${changed.join(', ')}. Restore them, or start a new model with a new CHECKPOINT_DIR.`,
    );
  }
}

/** Group ids for source-level clipping: the records of one source in a step are summed, then clipped together. */
function sourceGroups(records: readonly TrainingRecord[]): Int32Array {
  const ids = new Map<string, number>();
  return Int32Array.from(records, (r) => {
    let id = ids.get(r.source);
    if (id === undefined) {
      id = ids.size;
      ids.set(r.source, id);
    }
    return id;
  });
}
