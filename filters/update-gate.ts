/**
 * The update gate: Reject On Negative Impact (Nelson et al. 2008, "Exploiting machine learning to subvert your
 * spam filter", Sec. 5.1), applied to every candidate update of the live learner.
 *
 * Per step: score the model on a trusted canary set, let the update run, score again; an update that worsens
 * canary loss or accuracy beyond the tolerances is undone and the sources in its batch lose trust. Per checkpoint:
 * when canary accuracy stays below the best checkpoint's by more than `rollbackDrop` for `rollbackAfter`
 * checkpoints in a row — the signature of slow poisoning that passes step by step — the model rolls back to that
 * checkpoint's weights and an alert is raised (metric, log line, status field). Tay's remedy, without a human.
 *
 * Privacy: the gate reads only the (already privatised) update and a trusted, public canary set, so its accept/undo
 * decision is post-processing. The trust penalty uses which sources were in the batch, a cross-record effect on
 * later admission: the stage declares itself cross-record and is listed in the budget status.
 */
import type { Learner, WeightsSnapshot } from '../middleware/learner';
import type { StepStage } from '../src/trainer/step';
import type { TrainingRecord } from '../src/record';
import type { tf } from '../src/tf';
import type { SourceRegistry } from './trust';

export interface UpdateGateSettings {
  /** Largest allowed rise of mean canary loss in one step. */
  readonly lossTolerance: number;
  /** Largest allowed fall of canary accuracy in one step. */
  readonly accuracyTolerance: number;
  /** Rollback when canary accuracy is this far below the best checkpoint's … */
  readonly rollbackDrop: number;
  /** … at this many consecutive checkpoints. */
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
   * checkpoint-to-checkpoint noise (estimated below). 0 turns it off and uses `rollbackDrop` alone.
   */
  readonly rollbackNoiseZ?: number;
}

/**
 * With DP on, every step also carries Gaussian noise whose effect on the canaries alone can move accuracy by
 * several points (measured on the demo: σ=1, lr 5, 200 canaries); tighter tolerances then undo mostly noise.
 */
export const DEFAULT_UPDATE_GATE: UpdateGateSettings = { lossTolerance: 0.1, accuracyTolerance: 0.05, rollbackDrop: 0.05, rollbackAfter: 2, noiseQuantile: 0.95, rollbackNoiseZ: 5 };

const NOISE_WARMUP = 20;
const NOISE_WINDOW = 64;
/** Checkpoint scores kept for the rollback's noise estimate, and how many differences it needs first. */
const CHECKPOINT_WINDOW = 32;
const CHECKPOINT_WARMUP = 4;

/**
 * The standard deviation of one checkpoint's canary accuracy around the model's level, from consecutive
 * differences: noise makes successive scores jump, while slow poisoning moves them a little at a time in one
 * direction, so differences see the first and hardly the second (a level-based estimate such as a median of recent
 * scores absorbs the poisoning instead). For normal noise of deviation s a difference is N(0, 2s²) and its mean
 * absolute value is 2s/√π, so s = (√π/2)·mean|Δ|. The mean, not a median or quantile: canary accuracy is discrete
 * and often saturated, so most differences can be exactly 0 and any quantile below the top then reads 0 noise. An
 * attack's few large jumps inflate it only by their share of the window.
 */
export function checkpointNoise(scores: readonly number[]): number {
  if (scores.length < CHECKPOINT_WARMUP + 1) return 0;
  let sum = 0;
  for (let i = 1; i < scores.length; i++) sum += Math.abs(scores[i] - scores[i - 1]);
  return ((Math.sqrt(Math.PI) / 2) * sum) / (scores.length - 1);
}

function quantile(values: readonly number[], q: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
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
 * The model a checkpoint serves, when it is not the trained iterate (AVERAGE_DECAY: the moving average). Rollback
 * judges what users get, and restores it: after a rollback training resumes from the best served weights.
 */
export interface ServedModel {
  score(x: tf.Tensor2D, y: tf.Tensor2D): CanaryScore;
  snapshot(): WeightsSnapshot;
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
  /** The served model's canary score as of the last checkpoint (after any rollback). */
  servedScore?: CanaryScore;
  /** Recent checkpoints' served canary accuracies, for the rollback's noise estimate. */
  private readonly checkpointScores: number[] = [];
  readonly alerts: GateAlert[] = [];

  constructor(
    private readonly learner: Learner,
    readonly canaries: Canaries,
    private readonly registry: SourceRegistry | undefined,
    readonly settings: UpdateGateSettings = DEFAULT_UPDATE_GATE,
    private readonly events: GateEvents = {},
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
      },
    };
  }

  /** Worse than the fixed tolerance and, once the noise level is known, an outlier beyond it. */
  private harmful(dLoss: number, dAccuracy: number): boolean {
    const q = this.settings.noiseQuantile;
    let lossLimit = this.settings.lossTolerance;
    let accuracyLimit = this.settings.accuracyTolerance;
    if (q !== undefined && this.lossChanges.length >= NOISE_WARMUP) {
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
   * At each checkpoint: remember the best served model seen; after sustained degradation restore it into the
   * learner. Returns the alert when a rollback happened (the caller checkpoints the restored weights, and restarts
   * a moving average at them).
   */
  atCheckpoint(now = new Date(), served?: ServedModel): GateAlert | undefined {
    this.current = this.score();
    const score = served ? served.score(this.canaries.x, this.canaries.y) : this.current;
    this.servedScore = score;
    // The noise is judged on the checkpoints before the current run of degraded ones: a sudden drop must not raise
    // its own bar.
    const margin = this.rollbackMargin();
    this.checkpointScores.push(score.accuracy);
    if (this.checkpointScores.length > CHECKPOINT_WINDOW) this.checkpointScores.shift();
    if (!this.best || score.accuracy >= this.best.score.accuracy) {
      this.best = { score, snapshot: served ? served.snapshot() : this.learner.snapshot() };
      this.degraded = 0;
      return undefined;
    }
    if (score.accuracy < this.best.score.accuracy - margin) this.degraded += 1;
    else this.degraded = 0;
    if (this.degraded < this.settings.rollbackAfter) return undefined;
    this.learner.restore(this.best.snapshot);
    this.current = this.score();
    this.servedScore = this.best.score;
    // The degraded run is not noise: replace it in the window by the score now served again.
    this.checkpointScores.splice(-this.degraded, this.degraded, this.best.score.accuracy);
    this.degraded = 0;
    const alert: GateAlert = {
      kind: 'rollback',
      at: now.toISOString(),
      canaryAccuracy: score.accuracy,
      restoredAccuracy: this.best.score.accuracy,
      message: `canary accuracy ${(100 * score.accuracy).toFixed(1)}% stayed more than ${(100 * margin).toFixed(1)} points below the best checkpoint's ${(100 * this.best.score.accuracy).toFixed(1)}% for ${this.settings.rollbackAfter} checkpoints: rolled back to it. Check the quarantine and the sources trained since.`,
    };
    this.alerts.push(alert);
    if (this.alerts.length > 50) this.alerts.shift();
    this.events.onRollback?.(alert);
    return alert;
  }

  /**
   * How far below the best checkpoint counts as degraded: `rollbackDrop`, or more when the scores are noisy.
   * Until the noise is known (5 checkpoints) nothing counts: the first checkpoints of a fresh model jump the most,
   * and rolling back to one of them would gain little.
   */
  rollbackMargin(): number {
    const z = this.settings.rollbackNoiseZ ?? 0;
    if (z === 0) return this.settings.rollbackDrop;
    const before = this.checkpointScores.slice(0, this.checkpointScores.length - this.degraded);
    if (before.length < CHECKPOINT_WARMUP + 1) return Infinity;
    return Math.max(this.settings.rollbackDrop, z * checkpointNoise(before));
  }

  dispose(): void {
    this.canaries.x.dispose();
    this.canaries.y.dispose();
  }
}
