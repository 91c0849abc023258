/**
 * The update gate: Reject On Negative Impact (Nelson et al. 2008, "Exploiting machine learning to subvert your
 * spam filter", Sec. 5.1), applied to every candidate update of the live learner.
 *
 * Per step: score the model on a trusted canary set, let the update run, score again; an update that worsens
 * canary loss or accuracy beyond the tolerances is undone and the sources of the records in it are penalised in
 * proportion to their share of it (evidence, not guilt by association: one record in a batch of 64 earns 1/64 of
 * a penalty, and penalties decay — filters/source-registry.ts). Every `judgeEverySteps` steps the served model is
 * judged: when its canary accuracy — overall or for any one class — stays below the best model's by more than the
 * rollback margin for `rollbackAfter` judgements in a row (the signature of slow poisoning that passes step by
 * step, or of targeted damage to one class that the overall figure hides), the model rolls back to that best one
 * and an alert is raised (metric, log line, status field). Tay's remedy, without a human.
 *
 * The rollback margin is z × the canaries' noise (train/gate-noise.ts), measured from a source the stream cannot
 * move: with DP, the analytic DP noise scale applied to the best model; without, a warm-up frozen after 8
 * judgements. Per class, with each class's own noise (fewer canaries, more noise).
 *
 * Privacy: the gate reads only the (already privatised) update and a trusted, public canary set, so its accept/undo
 * decision is post-processing. The trust penalty uses which sources were in the batch, a cross-record effect on
 * later admission: the stage declares itself cross-record and is listed in the budget status.
 */
import type { Learner, WeightsSnapshot } from '../middleware/learner';
import type { StepStage } from './step';
import type { TrainingRecord } from '../core/record';
import type { tf } from '../core/tf';
import type { SourceRegistry } from '../filters/trust';
import { FREEZE_AFTER, servedSteps, simulatedNoise, warmupNoise, type CanaryNoise } from './gate-noise';

export { judgementNoise } from './gate-noise';

export interface UpdateGateSettings {
  /** Largest allowed rise of mean canary loss in one step. */
  readonly lossTolerance: number;
  /** Largest allowed fall of canary accuracy in one step. */
  readonly accuracyTolerance: number;
  /** Rollback when the served model's canary accuracy is this far below the best judged … */
  readonly rollbackDrop: number;
  /** … at this many consecutive judgements. */
  readonly rollbackAfter: number;
  /**
   * Noise-aware tolerance: once `NOISE_WARMUP` steps are seen, a step is undone only when its canary change is
   * also worse than this quantile of the last 64 steps' changes. DP noise moves the canaries every step, with
   * heavy tails (a noisy step is often followed by a recovering one), so a Gaussian z-score under-estimates it;
   * an empirical quantile bounds the share of clean steps undone at 1 − quantile by construction.
   */
  readonly noiseQuantile?: number;
  /**
   * Noise-aware rollback: the drop that counts is at least this many standard deviations of the canaries' noise
   * (train/gate-noise.ts), overall and per class. 0 turns it off and uses `rollbackDrop` alone.
   */
  readonly rollbackNoiseZ?: number;
  /**
   * DP-SGD's per-step noise on each weight, η·σ·C/(q·W·S) (`dpWeightNoise`), known from the configuration: the
   * rollback noise is measured with it on the best model. Undefined (plain SGD): a warm-up estimate, frozen.
   */
  readonly dpWeightNoise?: number;
  /**
   * Judge the served model for rollback every this many steps (from the step stage). Undefined: only when
   * `judge()` is called. Checkpoint boundaries were too coarse: the attack bench checkpoints every 2,000 records,
   * three times a run, and the noise estimate needs five judgements before it may act.
   */
  readonly judgeEverySteps?: number;
}

/**
 * With DP on, every step also carries Gaussian noise whose effect on the canaries alone can move accuracy by
 * several points (measured on the demo: σ=1, lr 5, 200 canaries); tighter tolerances then undo mostly noise.
 */
export const DEFAULT_UPDATE_GATE: UpdateGateSettings = { lossTolerance: 0.1, accuracyTolerance: 0.05, rollbackDrop: 0.05, rollbackAfter: 2, noiseQuantile: 0.95, rollbackNoiseZ: 5, judgeEverySteps: 8 };

const NOISE_WARMUP = 20;
const NOISE_WINDOW = 64;
/** Judged scores kept for the rollback's noise estimate, and how many differences it needs first. */
const JUDGED_WINDOW = 32;
const JUDGED_WARMUP = 4;

function quantile(values: readonly number[], q: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

export interface UpdateGateState {
  readonly lossChanges: readonly number[];
  readonly accuracyChanges: readonly number[];
  readonly judgedScores: readonly number[];
  readonly rejected: number;
  readonly accepted: number;
  /** Judgements in a row below the best so far. */
  readonly degraded?: number;
  /** The best served model's score; its weights travel next to the checkpoint's (`bestSnapshot`). */
  readonly best?: CanaryScore | null;
  /** The canaries' noise the margins are made of (measured, or frozen after the warm-up), when known. */
  readonly noise?: CanaryNoise | null;
  /** Judgements so far (the warm-up and the freeze count them), and the warm-up's per-class scores. */
  readonly judgements?: number;
  readonly judgedPerClass?: readonly (readonly number[])[];
}

export interface GateAlert {
  readonly kind: 'rollback';
  readonly at: string;
  readonly message: string;
  readonly canaryAccuracy: number;
  readonly restoredAccuracy: number;
}

export interface Canaries {
  readonly x: tf.Tensor2D;
  readonly y: tf.Tensor2D;
  readonly size: number;
}

export interface GateEvents {
  onReject?(records: readonly TrainingRecord[], before: CanaryScore, after: CanaryScore): void;
  onRollback?(alert: GateAlert): void;
}

export interface CanaryScore {
  readonly loss: number;
  readonly accuracy: number;
  /** Accuracy on each class's canaries (NaN for a class without any). */
  readonly perClass?: readonly number[];
}

/**
 * The model that is served, when it is not the trained iterate (AVERAGE_DECAY: the moving average). Rollback
 * judges what users get, and restores it: after a rollback training resumes from the best served weights.
 */
export interface ServedModel {
  score(x: tf.Tensor2D, y: tf.Tensor2D): CanaryScore;
  snapshot(): WeightsSnapshot;
  /** Called after a rollback restored the learner: start again at its weights. */
  startWarm(): void;
  /** The moving average's decay at its next update (train/average.ts): how much it smooths the DP noise. */
  nextDecay?(): number;
}

export class UpdateGate {
  readonly name = 'update-gate';
  readonly scope = 'cross-record' as const;
  private current?: CanaryScore;
  private best?: { score: CanaryScore; snapshot: WeightsSnapshot };
  private degraded = 0;
  /** Recent steps' canary changes (all steps, accepted or not), for the noise-aware tolerance. */
  private readonly lossChanges: number[] = [];
  private readonly accuracyChanges: number[] = [];
  rejected = 0;
  accepted = 0;
  /** The served model's canary score at the last judgement (after any rollback). */
  servedScore?: CanaryScore;
  /** Recent judgements' served canary accuracies, for the rollback's noise estimate. */
  private readonly judgedScores: number[] = [];
  /** Per-class scores of the first FREEZE_AFTER judgements (plain SGD's warm-up). */
  private readonly judgedPerClass: number[][] = [];
  private judgements = 0;
  /** The canaries' noise the rollback margins are made of; undefined until measured. */
  private noise?: CanaryNoise;
  private judgedAtStep = 0;
  private lastInterval = 1;
  readonly alerts: GateAlert[] = [];
  /** Rollbacks in this process (monotone, unlike `alerts`, which keeps the last 50): the publisher's verdict. */
  rollbackCount = 0;
  private steps = 0;

  constructor(
    private readonly learner: Learner,
    readonly canaries: Canaries,
    private readonly registry: SourceRegistry | undefined,
    readonly settings: UpdateGateSettings = DEFAULT_UPDATE_GATE,
    private readonly events: GateEvents = {},
    /** What is served when it is not the trained iterate (the moving average); judged and restored for rollback. */
    private readonly served?: ServedModel,
  ) {}

  score(): CanaryScore {
    return this.learner.evaluate(this.canaries.x, this.canaries.y);
  }

  /** The step stage: wraps the rest of the step chain (privatize → update) and undoes a harmful update. */
  stage(): StepStage {
    return {
      name: this.name,
      handle: async (ctx, next) => {
        const before = (this.current ??= this.score());
        const snapshot = this.learner.snapshot();
        await next();
        const after = this.score();
        if (this.harmful(after.loss - before.loss, after.accuracy - before.accuracy)) {
          this.learner.restore(snapshot);
          ctx.applied = false;
          this.rejected += 1;
          this.penaliseByEvidence(ctx.records);
          this.events.onReject?.(ctx.records, before, after);
        } else {
          this.current = after;
          this.accepted += 1;
        }
        this.steps += 1;
        const every = this.settings.judgeEverySteps;
        if (every && this.steps % every === 0) this.judge();
      },
    };
  }

  /**
   * Each source of an undone update loses trust in proportion to its share of the records in it: the update is
   * evidence against its records jointly, and a source with one record among 64 contributed 1/64 of it. Only the
   * records actually sampled into the step count (with DP, the Poisson batch, not every record pooled).
   */
  private penaliseByEvidence(records: readonly TrainingRecord[]): void {
    if (!this.registry || records.length === 0) return;
    const counts = new Map<string, number>();
    for (const r of records) counts.set(r.source, (counts.get(r.source) ?? 0) + 1);
    for (const [source, n] of counts) this.registry.penalise(source, n / records.length);
  }

  /**
   * Worse than the fixed tolerance and, once the noise level is known, an outlier beyond it. With the noise-aware
   * tolerance on, the first NOISE_WARMUP steps are only measured, never undone: judged by the fixed tolerances
   * alone, a plain SGD step at the text model's learning rate 5 routinely moves 200 canaries by 10 points, and the
   * gate then undid every step from the same weights — 17 in a row on the SpamAssassin training split (plain SGD,
   * batch 64, 200 held-out canaries; a trace of this gate, session of 2026-11-22), freezing the model. The warm-up's measurements are kept in the checkpoint, so a restart does not open it again.
   */
  private harmful(dLoss: number, dAccuracy: number): boolean {
    const q = this.settings.noiseQuantile;
    let lossLimit = this.settings.lossTolerance;
    let accuracyLimit = this.settings.accuracyTolerance;
    if (q !== undefined && this.lossChanges.length < NOISE_WARMUP) {
      lossLimit = Infinity;
      accuracyLimit = Infinity;
    } else if (q !== undefined) {
      lossLimit = Math.max(lossLimit, quantile(this.lossChanges, q));
      accuracyLimit = Math.max(accuracyLimit, -quantile(this.accuracyChanges, 1 - q));
    }
    this.lossChanges.push(dLoss);
    this.accuracyChanges.push(dAccuracy);
    if (this.lossChanges.length > NOISE_WINDOW) {
      this.lossChanges.shift();
      this.accuracyChanges.shift();
    }
    return dLoss > lossLimit || dAccuracy < -accuracyLimit;
  }

  /**
   * Every `judgeEverySteps` steps (or when called): remember the best served model seen; after sustained
   * degradation restore it into the learner, restart the served average there, and return the alert. The next
   * checkpoint makes the restored weights durable and published.
   */
  judge(now = new Date()): GateAlert | undefined {
    const served = this.served;
    this.current = this.score();
    const score = served ? served.score(this.canaries.x, this.canaries.y) : this.current;
    this.servedScore = score;
    this.judgements += 1;
    this.lastInterval = this.steps - this.judgedAtStep;
    this.judgedAtStep = this.steps;
    this.judgedScores.push(score.accuracy);
    if (this.judgedScores.length > JUDGED_WINDOW) this.judgedScores.shift();
    this.warmUp(score);
    // The margins are needed (and, with DP, measured) only when the score is below the best somewhere.
    const below = this.best !== undefined && isBelow(score, this.best.score);
    const margins = below ? this.rollbackMargins() : undefined;
    const worse = this.best && margins ? degradation(score, this.best.score, margins) : undefined;
    if (!this.best || (!worse && score.accuracy >= this.best.score.accuracy)) {
      this.best = { score, snapshot: served ? served.snapshot() : this.learner.snapshot() };
      this.degraded = 0;
      if (this.settings.dpWeightNoise !== undefined) this.noise = undefined; // measured again on the new best when needed
      return undefined;
    }
    if (worse) this.degraded += 1;
    else this.degraded = 0;
    if (!worse || this.degraded < this.settings.rollbackAfter) return undefined;
    this.learner.restore(this.best.snapshot);
    served?.startWarm();
    this.current = this.score();
    this.servedScore = this.best.score;
    // The degraded run is not noise: replace it in the window by the score now served again.
    this.judgedScores.splice(-this.degraded, this.degraded, this.best.score.accuracy);
    this.degraded = 0;
    const alert: GateAlert = {
      kind: 'rollback',
      at: now.toISOString(),
      canaryAccuracy: score.accuracy,
      restoredAccuracy: this.best.score.accuracy,
      message: `the served model's ${worse} for ${this.settings.rollbackAfter} judgements in a row: rolled back to that model. Check the quarantine and the sources trained since.`,
    };
    this.alerts.push(alert);
    if (this.alerts.length > 50) this.alerts.shift();
    this.rollbackCount += 1;
    this.events.onRollback?.(alert);
    return alert;
  }

  /** Plain SGD: keep the first FREEZE_AFTER judgements' scores, then freeze the noise they show (gate-noise.ts). */
  private warmUp(score: CanaryScore): void {
    if (this.settings.dpWeightNoise !== undefined || this.noise) return;
    this.judgedPerClass.push([...(score.perClass ?? [])]);
    if (this.judgements < FREEZE_AFTER) return;
    const classes = Math.max(0, ...this.judgedPerClass.map((r) => r.length));
    this.noise = warmupNoise(this.judgedScores.slice(-this.judgements), this.judgedPerClass, classes, this.settings.rollbackDrop);
    this.judgedPerClass.length = 0;
  }

  /**
   * DP: the canaries' noise on the best model under the analytic per-step noise over one judgement interval (k steps:
   * deviation √k × the per-step one). Measured when first needed after a new best — a judgement below it — and kept
   * until the next best: a learning model sets a new best at almost every judgement, and 32 evaluations each would
   * be wasted on judgements that cannot roll back.
   */
  private measureNoise(): CanaryNoise | undefined {
    const std = this.settings.dpWeightNoise;
    if (std === undefined || !this.best) return this.noise;
    // Steps between judgements: the setting, or (judged from outside) the last interval seen; smoothed by the served
    // average when there is one (its current decay: less smoothing while it ramps up, so a wider margin).
    const k = Math.max(1, this.settings.judgeEverySteps ?? this.lastInterval);
    const steps = servedSteps(k, this.served?.nextDecay?.() ?? 0);
    this.noise ??= simulatedNoise(this.learner, this.canaries, this.best.snapshot, std * Math.sqrt(steps));
    return this.noise;
  }

  /**
   * How far below the best model counts as degraded, overall and per class: `rollbackDrop`, or z × the canaries'
   * noise when that is larger. Undefined while the noise is unknown: the first 5 judgements (a fresh model jumps the
   * most, and rolling back to one of its first states would gain little), and without DP until the warm-up froze.
   */
  rollbackMargins(): { overall: number; perClass: readonly number[] } | undefined {
    const z = this.settings.rollbackNoiseZ ?? 0;
    const drop = this.settings.rollbackDrop;
    if (z === 0) return { overall: drop, perClass: (this.best?.score.perClass ?? []).map(() => drop) };
    const noise = this.judgements < JUDGED_WARMUP + 1 ? undefined : this.measureNoise();
    if (!noise) return undefined;
    return {
      overall: Math.max(drop, z * noise.overall),
      perClass: noise.perClass.map((s) => (Number.isFinite(s) ? Math.max(drop, z * s) : Infinity)),
    };
  }

  /** The overall rollback margin (Infinity while unknown). */
  rollbackMargin(): number {
    return this.rollbackMargins()?.overall ?? Infinity;
  }

  /** The canaries' noise behind the margins (undefined until measured). */
  canaryNoise(): CanaryNoise | undefined {
    return this.noise;
  }

  /**
   * What a restart needs to go on judging as if it had not happened: the step and judgement noise, the current
   * degraded run, and the best model's score (its weights: `bestSnapshot`, stored in the checkpoint's weight bytes).
   */
  toJSON(): UpdateGateState {
    return {
      lossChanges: [...this.lossChanges],
      accuracyChanges: [...this.accuracyChanges],
      judgedScores: [...this.judgedScores],
      rejected: this.rejected,
      accepted: this.accepted,
      degraded: this.degraded,
      best: this.best ? { ...this.best.score } : null,
      noise: this.noise ?? null,
      judgements: this.judgements,
      judgedPerClass: this.judgedPerClass.map((r) => [...r]),
    };
  }

  /** The weights a rollback would restore, if any has been judged best. */
  bestSnapshot(): WeightsSnapshot | undefined {
    return this.best?.snapshot;
  }

  /**
   * Back from a checkpoint. Tolerant of older or damaged state (it only tunes judgement): paired step changes are
   * kept as pairs, counts must be whole and ≥ 0, and the best model comes back only with both its score and weights.
   */
  restore(state: UpdateGateState, bestWeights?: WeightsSnapshot): void {
    const finite = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);
    const count = (x: unknown) => (Number.isInteger(x) && (x as number) >= 0 ? (x as number) : 0);
    const losses = Array.isArray(state.lossChanges) ? state.lossChanges : [];
    const accuracies = Array.isArray(state.accuracyChanges) ? state.accuracyChanges : [];
    const pairs = losses.map((l, i) => [l, accuracies[i]] as const).filter(([l, a]) => finite(l) && finite(a)).slice(-NOISE_WINDOW);
    this.lossChanges.splice(0, Infinity, ...pairs.map(([l]) => l));
    this.accuracyChanges.splice(0, Infinity, ...pairs.map(([, a]) => a));
    this.judgedScores.splice(0, Infinity, ...(Array.isArray(state.judgedScores) ? state.judgedScores.filter(finite).slice(-JUDGED_WINDOW) : []));
    this.rejected = count(state.rejected);
    this.accepted = count(state.accepted);
    this.degraded = Math.min(count(state.degraded), this.judgedScores.length);
    // JSON turns NaN (a class without canaries) into null.
    const perClass = (x: unknown) => (Array.isArray(x) ? x.map((v) => (finite(v) ? v : NaN)) : undefined);
    const best = state.best;
    const bestPerClass = perClass(best?.perClass);
    this.best =
      best && finite(best.accuracy) && finite(best.loss) && bestWeights
        ? { score: { loss: best.loss, accuracy: best.accuracy, ...(bestPerClass ? { perClass: bestPerClass } : {}) }, snapshot: bestWeights }
        : undefined;
    if (!this.best) this.degraded = 0;
    // Older checkpoints have no judgement count: their window of scores is at least that many.
    this.judgements = Math.max(count(state.judgements), this.judgedScores.length);
    const noise = state.noise;
    this.noise = noise && finite(noise.overall) && Array.isArray(noise.perClass) ? { overall: noise.overall, perClass: perClass(noise.perClass) ?? [] } : undefined;
    this.judgedPerClass.splice(0, Infinity, ...(Array.isArray(state.judgedPerClass) ? state.judgedPerClass.filter(Array.isArray).map((r) => perClass(r) ?? []) : []));
  }

  dispose(): void {
    this.canaries.x.dispose();
    this.canaries.y.dispose();
  }
}

function isBelow(score: CanaryScore, best: CanaryScore): boolean {
  if (score.accuracy < best.accuracy) return true;
  const now = score.perClass ?? [];
  const then = best.perClass ?? [];
  return now.some((a, c) => a < then[c]);
}

/** What dropped beyond its margin, as a phrase for the alert; undefined when nothing did. */
function degradation(score: CanaryScore, best: CanaryScore, m: { overall: number; perClass: readonly number[] }): string | undefined {
  const pts = (x: number) => (100 * x).toFixed(1);
  if (score.accuracy < best.accuracy - m.overall) {
    return `canary accuracy ${pts(score.accuracy)}% stayed more than ${pts(m.overall)} points below the best seen, ${pts(best.accuracy)}%,`;
  }
  const now = score.perClass ?? [];
  const then = best.perClass ?? [];
  for (let c = 0; c < Math.min(now.length, then.length); c++) {
    const margin = m.perClass[c] ?? Infinity;
    if (Number.isFinite(now[c]) && Number.isFinite(then[c]) && now[c] < then[c] - margin) {
      return `canary accuracy on class ${c} ${pts(now[c])}% stayed more than ${pts(margin)} points below the best model's ${pts(then[c])}% (overall ${pts(score.accuracy)}% vs ${pts(best.accuracy)}%)`;
    }
  }
  return undefined;
}
