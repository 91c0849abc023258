/**
 * An exponential moving average of the learner's weights: the model tayguard serves and publishes when
 * AVERAGE_DECAY > 0, while training continues on the raw iterate.
 *
 * Why: an online learner's last SGD iterate carries the noise of its last few batches (and with DP, of the Gaussian
 * noise added to them); at the learning rates that make online learning fast, one batch can swing a linear spam
 * filter's bias by points of accuracy. Averaging iterates (Polyak & Juditsky 1992; the exponential form as in
 * TensorFlow's ExponentialMovingAverage) removes most of that variance, and it bounds how far any single batch —
 * a poisoned one that slipped past the screens included — can move the served model in one step: by (1 − decay)
 * of the step. With DP, averaging the privatised iterates is post-processing, so the guarantee is unchanged
 * (De et al. 2022 use it for the same reason).
 *
 * From freshly initialised weights the decay ramps up as TensorFlow's does with `num_updates`:
 * decay_t = min(decay, (1 + t) / (10 + t)), so the random initial weights do not dominate; it reaches 0.95 after
 * 170 steps (0.9 after 80), and until then the average spans roughly the last tenth of the steps. An average started
 * at trained weights — a checkpoint from before AVERAGE_DECAY, a MODEL_PATH model, the weights a rollback restored —
 * skips the ramp (`startWarm`): those weights are worth keeping, and right after a rollback is exactly when one
 * batch must not move the served model by 90% of its step.
 */
import { tf } from '../core/tf';
import { TayguardError } from '../core/errors';
import { snapshotValues, weightsToSnapshot, type Evaluation, type Learner, type WeightsSnapshot } from '../middleware/learner';
import type { StepStage } from './step';

export interface WeightAverageState {
  readonly updates: number;
}

export class WeightAverage {
  private readonly averages: tf.Variable[];
  updates = 0;

  constructor(
    private readonly learner: Learner,
    readonly decay: number,
  ) {
    if (!(decay > 0 && decay < 1)) throw new RangeError(`decay must be in (0, 1), got ${decay}`);
    this.averages = learner.model.weights.map((w) => tf.variable(w.read(), false));
  }

  /** The decay applied at the next update (ramped during the first steps). */
  nextDecay(): number {
    return Math.min(this.decay, (1 + this.updates) / (10 + this.updates));
  }

  /** Start (again) at the learner's current weights with the full decay, no ramp: they are trained weights. */
  startWarm(): void {
    this.reset();
    this.updates = Math.max(0, Math.ceil((10 * this.decay - 1) / (1 - this.decay)));
  }

  /** Fold the learner's current weights into the average (after an applied step). */
  update(): void {
    const d = this.nextDecay();
    const weights = this.learner.model.weights;
    tf.tidy(() => {
      this.averages.forEach((a, i) => a.assign(tf.add(tf.mul(a, d), tf.mul(weights[i].read(), 1 - d))));
    });
    this.updates += 1;
  }

  /** The step stage: runs the rest of the step chain, then folds the weights in if the step was applied. */
  stage(): StepStage {
    return {
      name: 'average',
      handle: async (ctx, next) => {
        await next();
        if (ctx.applied) this.update();
      },
    };
  }

  /**
   * Canary loss and accuracy of the averaged weights, computed with the learner's own model: the average is swapped
   * in and the trained weights back (no second copy of the model in memory). The update gate calls it inside a step,
   * after the update is applied and before the step is folded in (so it scores the average as of the last step).
   */
  score(x: tf.Tensor2D, y: tf.Tensor2D): Evaluation {
    const trained = this.learner.snapshot();
    try {
      this.learner.restore(this.snapshot());
      return this.learner.evaluate(x, y);
    } finally {
      this.learner.restore(trained);
    }
  }

  /** Start the average again at the learner's current weights (after a rollback: the old average holds the harm). */
  reset(): void {
    const weights = this.learner.model.weights;
    this.averages.forEach((a, i) => a.assign(weights[i].read()));
    this.updates = 0;
  }

  snapshot(): WeightsSnapshot {
    const names = this.learner.model.weights.map((w) => w.name);
    return weightsToSnapshot(this.averages.map((a, i) => ({ name: names[i], read: () => a })));
  }

  /** Restore from a checkpoint's bytes (same layout as the learner's snapshot); checked before anything changes. */
  restore(data: Buffer, state: WeightAverageState): void {
    const expected = this.averages.reduce((n, a) => n + a.size * 4, 0);
    if (data.length !== expected || !Number.isInteger(state?.updates) || state.updates < 0) {
      throw new TayguardError(
        'CHECKPOINT_CORRUPT',
        `the checkpoint's averaged weights (${data.length} bytes, updates ${String(state?.updates)}) do not fit this model (${expected} bytes): was the model configuration changed? Point CHECKPOINT_DIR elsewhere to start fresh.`,
      );
    }
    snapshotValues(data, this.averages.map((a) => a.shape)).forEach((values, i) => {
      const a = this.averages[i];
      tf.tidy(() => a.assign(tf.tensor(values, a.shape, 'float32')));
    });
    this.updates = state.updates;
  }

  toJSON(): WeightAverageState {
    return { updates: this.updates };
  }

  dispose(): void {
    this.averages.forEach((a) => a.dispose());
  }
}
