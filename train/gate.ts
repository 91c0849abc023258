/**
 * The update gate: Reject On Negative Impact (Nelson et al. 2008, "Exploiting machine learning to subvert your
 * spam filter", Sec. 5.1), applied to every candidate update of the live learner.
 *
 * Per step: score the model on a trusted canary set, let the update run, score again; an update that worsens
 * canary loss or accuracy beyond the tolerances is undone and the sources in its batch lose trust. Every
 * `judgeEverySteps` steps the served model is judged: when its canary accuracy stays below the best seen by more
 * than the rollback margin for `rollbackAfter` judgements in a row — the signature of slow poisoning that passes
 * step by step — the model rolls back to that best one and an alert is raised (metric, log line, status field).
 * Tay's remedy, without a human.
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
   * Noise-aware rollback: the drop that counts is at least this many standard deviations of the served model's
   * judgement-to-judgement noise (estimated below). 0 turns it off and uses `rollbackDrop` alone.
   */
  readonly rollbackNoiseZ?: number;
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

/**
 * The standard deviation of one judgement's canary accuracy around the model's level, from consecutive
 * differences Δ: noise makes successive scores jump, while slow poisoning moves them a little at a time in one
 * direction, so differences see the first and hardly the second (a level-based estimate such as a median of recent
 * scores absorbs the poisoning instead). For normal noise of deviation s, Δ is N(0, 2s²) and E|Δ| = 2s/√π, so
 * s = (√π/2)·mean|Δ|. Only the falls count (Δ < 0, and half of the Δ = 0): noise is symmetric, so they measure it
 * just as well, while the rises of a model still learning — the big early jumps — would read as noise and set the
 * bar far above any attack (scores 50, 80, 90, 92, 93% would give a 48-point margin at z = 5). A mean, not
 * a median: canary accuracy is discrete and often saturated, so a median difference is often exactly 0.
 */
export function judgementNoise(scores: readonly number[]): number {
  if (scores.length < JUDGED_WARMUP + 1) return 0;
  let sum = 0;
  let count = 0;
  for (let i = 1; i < scores.length; i++) {
    const d = scores[i] - scores[i - 1];
    if (d < 0) {
      sum -= d;
      count += 1;
    } else if (d === 0) count += 0.5;
  }
  return count === 0 ? 0 : ((Math.sqrt(Math.PI) / 2) * sum) / count;
}

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
          for (const source of new Set(ctx.records.map((r) => r.source))) this.registry?.penalise(source);
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
    // The noise is judged on the judgements before the current run of degraded ones: a sudden drop must not raise
    // its own bar.
    const margin = this.rollbackMargin();
    this.judgedScores.push(score.accuracy);
    if (this.judgedScores.length > JUDGED_WINDOW) this.judgedScores.shift();
    if (!this.best || score.accuracy >= this.best.score.accuracy) {
      this.best = { score, snapshot: served ? served.snapshot() : this.learner.snapshot() };
      this.degraded = 0;
      return undefined;
    }
    if (score.accuracy < this.best.score.accuracy - margin) this.degraded += 1;
    else this.degraded = 0;
    if (this.degraded < this.settings.rollbackAfter) return undefined;
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
      message: `the served model's canary accuracy ${(100 * score.accuracy).toFixed(1)}% stayed more than ${(100 * margin).toFixed(1)} points below the best seen, ${(100 * this.best.score.accuracy).toFixed(1)}%, for ${this.settings.rollbackAfter} judgements in a row: rolled back to that model. Check the quarantine and the sources trained since.`,
    };
    this.alerts.push(alert);
    if (this.alerts.length > 50) this.alerts.shift();
    this.rollbackCount += 1;
    this.events.onRollback?.(alert);
    return alert;
  }

  /**
   * How far below the best judged counts as degraded: `rollbackDrop`, or more when the scores are noisy.
   * Until the noise is known (5 judgements) nothing counts: the first judgements of a fresh model jump the most,
   * and rolling back to one of them would gain little.
   */
  rollbackMargin(): number {
    const z = this.settings.rollbackNoiseZ ?? 0;
    if (z === 0) return this.settings.rollbackDrop;
    const before = this.judgedScores.slice(0, this.judgedScores.length - this.degraded);
    if (before.length < JUDGED_WARMUP + 1) return Infinity;
    // No fall yet among them (a model that has only improved): no noise seen, the fixed drop alone.
    return Math.max(this.settings.rollbackDrop, z * judgementNoise(before));
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
    const best = state.best;
    this.best = best && finite(best.accuracy) && finite(best.loss) && bestWeights ? { score: { loss: best.loss, accuracy: best.accuracy }, snapshot: bestWeights } : undefined;
    if (!this.best) this.degraded = 0;
  }

  dispose(): void {
    this.canaries.x.dispose();
    this.canaries.y.dispose();
  }
}
