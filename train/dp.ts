/**
 * DP-SGD in the stream (Abadi et al. 2016), with the streaming window of privacy/sampler.ts.
 *
 * The schedule is a function of public information only (docs/privacy.md, "the schedule"): every consumed
 * message — trained, malformed, quarantined, duplicate or refused — takes one SLOT in the pool, and a step runs
 * after every STEP_EVERY_RECORDS slots (and on quiet-stream ticks, which look only at the clock and at whether
 * any slot is still inside its window). A slot holds the record when it was admitted and nothing otherwise, so
 * emptying one message's content (zero-out adjacency, Kairouz et al. 2021) changes nothing but that slot: every
 * step runs at the same point, every coin falls on the same slot, the ledger is the same. Each slot stays for
 * exactly W steps and joins each step with probability q. Each step:
 *   budget check (would ε pass the limit? then stop) → Poisson batch of slots → per-example (or per-source)
 *   clipping of the records in it, with the empty slots as zero-gradient padding rows (so the step's cost does
 *   not reveal how many held records) + Gaussian noise from node:crypto → divide by the fixed expected batch
 *   q·W·S → apply → charge the step.
 * The pool, the coin and noise state (seeded mode only) and the ledger go into the checkpoint, so a crash can
 * repeat accounting but never forget it; predictions are served from checkpointed weights only
 * (src/sidecar.ts), so steps lost in a crash were never observable.
 */
import type { Learner } from '../middleware/learner';
import type { TrainMetrics } from './types';
import type { TrainingRecord } from '../core/record';
import { TayguardError } from '../core/errors';
import {
  AdaptiveClipper,
  PrivacyBudget,
  StreamingPoissonSampler,
  type AdaptiveClipState,
  createGaussianSource,
  createUniformSource,
  type BudgetStatus,
  type GaussianSource,
  type PrivacyUnit,
} from '../privacy';
import { createStepRunner, type StepStage } from './step';
import { privatizeStage } from './privatize';
import type { InfluenceOptions } from './influence';
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
  /**
   * PRIVACY_UNIT=record: nested clipping by source (SOURCE_CLIP, default on) — each record clipped to C, then each
   * source's sum in the step clipped to C, so a flooding source moves a step by no more than one record can.
   * Same accountant charge (train/privatize.ts). Ignored in source mode. Undefined = on.
   */
  readonly sourceClip?: boolean;
  readonly maxRecordsPerSource: number;
  /**
   * Influence by account age (INFLUENCE_MATURE_DAYS, INFLUENCE_MIN_WEIGHT; train/influence.ts): each record's
   * clipped gradient times wᵢ = max(w_min, min(1, age/A)) from its own `sourceMeta` and `ts`. Same charge
   * (train/privatize.ts). Undefined or null: off (every weight 1).
   */
  readonly influence?: InfluenceOptions | null;
  /** Decision accountant; undefined = PRV for a new ledger, the checkpoint's for a restored one. */
  readonly accountant?: 'rdp' | 'prv';
  /** Reproducible mode (tests, replays). Not secure; the budget status says "seeded". */
  readonly seed?: string;
}

interface DpState {
  /** 2: the pool holds one slot per consumed message (null when not trained). 1 counted admitted records only. */
  readonly version: 1 | 2;
  readonly sampler: unknown;
  readonly budget: unknown;
  /** Slots since the last step (version 1: admitted records since the last step). */
  readonly slotsSinceStep?: number;
  readonly admittedSinceStep?: number;
  readonly exhausted: boolean;
  readonly clip?: AdaptiveClipState;
  /** Seeded mode: where the noise stream is, so a restart continues it. */
  readonly noise?: unknown;
}

/** A pool slot: the admitted record, or null for a consumed message that is not trained. */
type Slot = TrainingRecord | null;

export class DpTrainer implements Trainer {
  readonly mode = 'dp' as const;
  readonly randomness: 'crypto' | 'seeded';
  readonly ledger: PrivacyBudget;
  private readonly sampler: StreamingPoissonSampler<Slot>;
  private readonly noise: GaussianSource;
  private readonly step: ReturnType<typeof createStepRunner>;
  /** q·W·S: the expected batch in steady state. Fixed, so the divisor does not depend on the data. */
  readonly expectedBatchSize: number;
  private slotsSinceStep = 0;
  private steppedSinceTick = false;
  private exhausted = false;
  stepsSinceCheckpoint = 0;
  private cachedStatus?: { steps: number; status: BudgetStatus };
  private affordable?: { steps: number; ok: boolean };
  /** Adaptive clipping (Andrew et al. 2021), when configured. */
  readonly clipper?: AdaptiveClipper;

  constructor(
    learner: Learner,
    private readonly metrics: TrainMetrics,
    readonly o: DpOptions,
    restored?: unknown,
    stages: readonly StepStage[] = [],
  ) {
    this.randomness = o.seed === undefined ? 'crypto' : 'seeded';
    this.expectedBatchSize = o.sampleRate * o.window * o.stepEveryRecords;
    const state = restored as DpState | null | undefined;
    this.noise = createGaussianSource(o.seed === undefined ? {} : { seed: `${o.seed}/noise`, ...(state?.noise !== undefined ? { state: state.noise } : {}) });
    if (state) {
      if (state.version !== 1 && state.version !== 2) throw new TayguardError('CHECKPOINT_CORRUPT', `unknown DP state version ${String(state.version)}; restore a checkpoint written by this version of tayguard`);
      const saved = (state.sampler as { rngState?: unknown }).rngState;
      const rng = o.seed === undefined ? createUniformSource() : createUniformSource({ seed: `${o.seed}/coins`, state: saved });
      // The pool samples at the configured q — the rate the ledger charges from now on — whatever the
      // checkpoint's rate was (a restart with a new SAMPLE_RATE must not keep sampling at the old one).
      this.sampler = StreamingPoissonSampler.fromJSON<Slot>(state.sampler, rng, { sampleRate: o.sampleRate });
      checkLedgerCompatible(state.budget, o);
      this.ledger = PrivacyBudget.fromJSON(state.budget, { epsilonLimit: o.epsilonLimit, plan: { sampleRate: o.sampleRate, noiseMultiplier: o.noiseMultiplier } });
      const repaired = this.ledger.repairPlan;
      if (repaired && (o.sampleRate > repaired.sampleRate || o.noiseMultiplier < repaired.noiseMultiplier)) {
        throw new TayguardError(
          'CONFIG_INVALID',
          `this ledger was repaired (tayguard checkpoint repair) assuming the replayed records meet at most SAMPLE_RATE=${repaired.sampleRate} with NOISE_MULTIPLIER=${repaired.noiseMultiplier}; a costlier plan (${o.sampleRate}, ${o.noiseMultiplier}) would give them more than was charged: keep SAMPLE_RATE ≤ ${repaired.sampleRate} and NOISE_MULTIPLIER ≥ ${repaired.noiseMultiplier}, or start a new model with a new CHECKPOINT_DIR`,
        );
      }
      this.slotsSinceStep = Math.min(state.slotsSinceStep ?? state.admittedSinceStep ?? 0, o.stepEveryRecords - 1);
      // Recomputed, never read back: whether a record arrived when the budget ran out is content, and a flag set
      // by it would freeze training after the next restart in D but not in D′. The ledger decides, and it is
      // schedule-only.
      this.exhausted = o.unit === 'record' && !this.ledger.canStep(o.sampleRate, o.noiseMultiplier);
    } else {
      const rng = o.seed === undefined ? createUniformSource() : createUniformSource({ seed: `${o.seed}/coins` });
      this.sampler = new StreamingPoissonSampler<Slot>({ sampleRate: o.sampleRate, window: o.window, rng });
      this.ledger = new PrivacyBudget({
        epsilonLimit: o.epsilonLimit,
        delta: o.delta,
        unit: o.unit,
        // Source mode filters each source on its own accumulated loss (Feldman & Zrnic 2021), which is proven for
        // RDP: it decides with RDP unless told otherwise (config refuses PRV there).
        accountant: o.accountant ?? (o.unit === 'source' ? 'rdp' : 'prv'),
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
    const privatize = privatizeStage(learner, {
      unit: o.unit,
      sourceClip: o.sourceClip ?? true,
      clipNorm: o.clipNorm,
      noiseMultiplier: o.noiseMultiplier,
      expectedBatchSize: this.expectedBatchSize,
      noise: this.noise,
      clipper: this.clipper,
      ...(o.influence ? { influence: checkInfluence(o.influence) } : {}),
    });
    this.step = createStepRunner(learner, metrics, stages, privatize);
  }

  /**
   * The slot of a consumed message whose record the record chain admitted. The budget and the source caps may
   * still refuse it (the slot then stays empty); either way the slot counts toward the schedule.
   */
  async admit(record: TrainingRecord): Promise<AdmitResult> {
    const result = this.decide(record);
    // Once the schedule found the budget spent (record mode), no step runs again in this process: slots would
    // only pile up in the pool and the checkpoint. `exhausted` depends on the schedule alone, so skipping the
    // slot is the same in D and D′.
    if (this.exhausted) return result;
    this.sampler.admit(result.kind === 'trained' ? record : null);
    await this.advance();
    return result;
  }

  /** The slot of a consumed message that is not trained (malformed, quarantined, duplicate): empty, but counted. */
  async pass(): Promise<void> {
    if (this.exhausted) return;
    this.sampler.admit(null);
    await this.advance();
  }

  /**
   * An audit canary (src/audit/auditor.ts): pooled like a record under its own reserved source, but it takes no slot of
   * the schedule — when canaries are due depends only on message counts and steps, so it is the same in D and D′.
   */
  admitCanary(record: TrainingRecord): AdmitResult {
    const result = this.decide(record);
    if (result.kind === 'trained') this.sampler.admit(record);
    return result;
  }

  private decide(record: TrainingRecord): AdmitResult {
    // Refuse without recording anything: `exhausted` is set only by the schedule (takeStep), never by a record.
    if (this.exhausted || (this.o.unit === 'record' && !this.nextStepAffordable())) {
      return { kind: 'skipped', reason: 'budget_exhausted' };
    }
    if (this.o.unit === 'source') {
      // A source is judged on its own history only (Feldman & Zrnic 2021): it stops, the others train on.
      const decision = this.ledger.checkSource(record.source);
      if (!decision.ok) return { kind: 'skipped', reason: decision.reason ?? 'source_budget_exhausted' };
      this.ledger.admitSource(record.source);
    }
    return { kind: 'trained' };
  }

  private async advance(): Promise<void> {
    this.slotsSinceStep += 1;
    if (this.slotsSinceStep >= this.o.stepEveryRecords) await this.takeStep();
  }

  /** Whether one more step fits the budget; only changes when a step is recorded, so cached per step. */
  private nextStepAffordable(): boolean {
    const steps = this.ledger.steps;
    if (this.affordable?.steps !== steps) this.affordable = { steps, ok: this.ledger.canStep(this.o.sampleRate, this.o.noiseMultiplier) };
    return this.affordable.ok;
  }

  private async takeStep(): Promise<void> {
    this.slotsSinceStep = 0;
    const { sampleRate: q, noiseMultiplier: sigma } = this.o;
    if (this.o.unit === 'source') this.dropUnaffordableSources();
    // Checked BEFORE the step: a step that would overshoot is not taken (docs/architecture.md invariant 2).
    if (!this.nextStepAffordable()) {
      this.exhausted = this.o.unit === 'record';
      return;
    }
    const { records: slots } = this.sampler.nextBatch();
    const records = slots.filter((r): r is TrainingRecord => r !== null);
    // An empty Poisson batch is still a step: it releases pure noise and is charged like any other.
    try {
      await this.step(records, slots.length - records.length);
    } finally {
      // Charged even when a stage after the update throws (the update gate's judgement): the noisy update may
      // already be in the weights. Charging a step that never ran is only conservative.
      this.ledger.recordStep(q, sigma);
    }
    this.stepsSinceCheckpoint += 1;
    this.steppedSinceTick = true;
  }

  /**
   * Source mode: a source whose pooled records cannot afford the next step (only possible after a restart with
   * a higher q, a lower σ or a lower limit — admission looks ahead a full window) leaves the pool; every other
   * source trains on. Deciding this from that source's own history is what source-level DP allows.
   */
  private dropUnaffordableSources(): void {
    const refused = this.ledger.unaffordableSources(this.o.sampleRate, this.o.noiseMultiplier);
    if (refused.size === 0) return;
    for (const source of refused) this.ledger.dropSource(source);
    const dropped = this.sampler.empty((r) => r !== null && refused.has(r.source));
    this.metrics.sourceRecordsDropped.inc(dropped);
    this.affordable = undefined;
  }

  /** Nothing to do: the pool itself is checkpointed, so admitted records are durable without a step. */
  flush(): Promise<void> {
    return Promise.resolve();
  }

  /**
   * On a quiet stream, keep stepping so that pooled records still get their window. Public information only:
   * the clock (this is called on a timer), whether a step ran since the last tick (message counts) and whether
   * any slot — empty or not — is still inside its window.
   */
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
    const noise = this.noise.state?.();
    return {
      version: 2,
      sampler: this.sampler.toJSON(),
      budget: this.ledger.toJSON(),
      slotsSinceStep: this.slotsSinceStep,
      exhausted: this.exhausted,
      ...(this.clipper ? { clip: this.clipper.toJSON() } : {}),
      ...(noise !== undefined ? { noise } : {}),
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
    ...(o.accountant !== undefined ? { ACCOUNTANT: [opts.accountant, o.accountant] } : {}),
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

/** A weight above 1 or a non-positive horizon would break the sensitivity bound or divide by zero. */
function checkInfluence(o: InfluenceOptions): InfluenceOptions {
  if (!(o.matureMs > 0 && Number.isFinite(o.matureMs)) || !(o.minWeight >= 0 && o.minWeight <= 1)) {
    throw new TayguardError(
      'CONFIG_INVALID',
      `influence needs matureMs > 0 and minWeight in [0, 1], got ${o.matureMs} and ${o.minWeight}; set INFLUENCE_MATURE_DAYS > 0 and INFLUENCE_MIN_WEIGHT between 0 and 1`,
    );
  }
  return o;
}
