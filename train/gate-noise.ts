/**
 * How much the update gate's canary scores move by noise alone — the yardstick of its rollback margin — from
 * sources the stream cannot move (issue 10, item 6: "the gate's noise calibration is the attacker's to set").
 *
 * Before, the margin was estimated from the judged scores themselves; alternating bursts of poison made the
 * scores jump, the estimate read the jumps as noise, and the margin widened from 5 to 16 points — after which
 * canary accuracy sat 13–15 points below its best with no rollback. Two sources replace it:
 *
 * - **With DP (the default): the noise scale is known analytically.** DP-SGD adds N(0, σ²C²) to the sum of clipped
 *   gradients and divides by the fixed expected batch q·W·S (Abadi et al. 2016), so each step moves every weight
 *   by Gaussian noise of deviation η·σ·C/(q·W·S) (η the learning rate), whatever the records are. Between two
 *   judgements k = `judgeEverySteps` steps add k independent draws; the served model is a moving average of the
 *   iterates (decay d), which smooths them: `servedSteps(k, d)` is the variance of the served weights' change in
 *   units of one step's, with the noise taken as a random walk (no restoring pull of the loss: an upper bound). The
 *   gate draws such perturbations of the best model's weights (the rollback reference) and measures how far canary
 *   accuracy — overall and per class — moves: `simulatedNoise`. Everything in it is configuration, the trusted canaries, and
 *   the best model, which the stream can only change by making it better on the canaries.
 * - **Without DP: a frozen warm-up.** Plain SGD's minibatch noise has no closed form, so the judgement-to-judgement
 *   estimate below is taken over the first `FREEZE_AFTER` judgements and then frozen: a stream can move it only by
 *   being poisoned from the very first record, when there is no good model to protect yet.
 */
import seedrandom from 'seedrandom';
import type { Learner, WeightsSnapshot } from '../middleware/learner';
import type { tf } from '../core/tf';

/** Perturbations drawn per estimate: RMS of 32 draws is within ~±25% of the true deviation (χ² with 32 d.o.f., 95%). */
export const NOISE_DRAWS = 32;
/** Judgements after which the plain-SGD noise estimate is frozen. */
export const FREEZE_AFTER = 8;

/** Deviation of canary accuracy under noise: overall, and per true class (NaN where the class has no canaries). */
export interface CanaryNoise {
  readonly overall: number;
  readonly perClass: readonly number[];
}

/**
 * The standard deviation of one judgement's canary accuracy around the model's level, from consecutive
 * differences Δ: noise makes successive scores jump, while slow poisoning moves them a little at a time in one
 * direction, so differences see the first and hardly the second. For normal noise of deviation s, Δ is N(0, 2s²)
 * and E|Δ| = 2s/√π, so s = (√π/2)·mean|Δ|. Only the falls count (Δ < 0, and half of the Δ = 0): noise is
 * symmetric, so they measure it just as well, while the rises of a model still learning would read as noise.
 * A mean, not a median: canary accuracy is discrete and often saturated, so a median difference is often 0.
 */
export function judgementNoise(scores: readonly number[]): number {
  if (scores.length < 2) return 0;
  let sum = 0;
  let count = 0;
  for (let i = 1; i < scores.length; i++) {
    const d = scores[i] - scores[i - 1];
    if (!Number.isFinite(d)) continue;
    if (d < 0) {
      sum -= d;
      count += 1;
    } else if (d === 0) count += 0.5;
  }
  return count === 0 ? 0 : ((Math.sqrt(Math.PI) / 2) * sum) / count;
}

/** `judgementNoise` of the overall series and of each class's series (the plain-SGD warm-up estimate). */
export function warmupNoise(overall: readonly number[], perClass: readonly (readonly number[])[], numClasses: number, degradation = Infinity): CanaryNoise {
  return {
    overall: judgementNoise(nearBest(overall, degradation)),
    perClass: Array.from({ length: numClasses }, (_, c) => judgementNoise(nearBest(perClass.map((row) => row[c] ?? NaN), degradation))),
  };
}

/**
 * The series with every score more than `degradation` below the best so far blanked (NaN: judgementNoise skips the
 * differences it is part of). Such a fall is what the gate exists to judge, not noise to calibrate on: a flood that
 * begins inside the warm-up otherwise sets the margin with its own falls and is never rolled back (bench:attacks
 * scenario A with the gate alone: the flood began at the 7th of 8 warm-up judgements and set a 36-point margin).
 */
export function nearBest(series: readonly number[], degradation: number): number[] {
  let best = -Infinity;
  return series.map((x) => {
    if (!Number.isFinite(x)) return NaN;
    best = Math.max(best, x);
    return x < best - degradation ? NaN : x;
  });
}

/**
 * The per-step weight noise of DP-SGD: η·σ·C/(q·W·S). The configured clip norm, not an adaptive one: adaptive
 * clipping follows the records' gradient norms, which the stream sets.
 */
export function dpWeightNoise(o: { learningRate: number; noiseMultiplier: number; clipNorm: number; expectedBatchSize: number }): number {
  return (o.learningRate * o.noiseMultiplier * o.clipNorm) / o.expectedBatchSize;
}

/**
 * Variance of the served weights' change over k steps, in units of one step's noise variance, when each step adds
 * independent noise ξ to the iterate (a random walk e_t = Σ ξ) and the served model is its moving average
 * m_t = d·m_{t−1} + (1 − d)·e_t. Writing m_{t+k} − m_t in the ξ's: each ξ before the interval has weight
 * d^i(1 − d^k) (i ≥ 1), each inside it 1 − d^r (r = 1 … k), so the variance is
 *   (1 − d^k)²·d²/(1 − d²) + Σ_{r=1..k} (1 − d^r)².
 * d = 0 (no average) gives k; AVERAGE_DECAY 0.95 with 8 steps gives 1.44: averaging removes most of the noise a
 * judgement sees.
 */
export function servedSteps(k: number, decay: number): number {
  const d = Math.min(Math.max(decay, 0), 0.999999);
  const dk = Math.pow(d, k);
  let inside = 0;
  for (let r = 1; r <= k; r++) inside += (1 - Math.pow(d, r)) ** 2;
  return ((1 - dk) ** 2 * d * d) / (1 - d * d) + inside;
}

/**
 * RMS change of canary accuracy (overall and per class) when `reference`'s weights get independent Gaussian noise of
 * deviation `weightStd` each, over NOISE_DRAWS seeded draws (reproducible; the draws touch no record). The learner
 * is used to evaluate and left with the weights it had.
 */
export function simulatedNoise(learner: Learner, canaries: { x: tf.Tensor2D; y: tf.Tensor2D }, reference: WeightsSnapshot, weightStd: number, seed = 'tayguard-gate-noise'): CanaryNoise {
  const saved = learner.snapshot();
  try {
    learner.restore(reference);
    const base = learner.evaluate(canaries.x, canaries.y);
    const classes = base.perClass.length;
    const values = new Float32Array(reference.data.buffer.slice(reference.data.byteOffset, reference.data.byteOffset + reference.data.byteLength));
    const perturbed = new Float32Array(values.length);
    const rng = seedrandom(seed);
    let sq = 0;
    const sqByClass = new Array<number>(classes).fill(0);
    for (let k = 0; k < NOISE_DRAWS; k++) {
      for (let i = 0; i < values.length; i += 2) {
        // Box–Muller: two independent standard normals per pair of uniforms.
        const r = Math.sqrt(-2 * Math.log(1 - rng())) * weightStd;
        const a = 2 * Math.PI * rng();
        perturbed[i] = values[i] + r * Math.cos(a);
        if (i + 1 < values.length) perturbed[i + 1] = values[i + 1] + r * Math.sin(a);
      }
      learner.restore({ specs: reference.specs, data: Buffer.from(perturbed.buffer, perturbed.byteOffset, perturbed.byteLength) });
      const e = learner.evaluate(canaries.x, canaries.y);
      sq += (e.accuracy - base.accuracy) ** 2;
      for (let c = 0; c < classes; c++) sqByClass[c] += (e.perClass[c] - base.perClass[c]) ** 2;
    }
    return { overall: Math.sqrt(sq / NOISE_DRAWS), perClass: sqByClass.map((s) => Math.sqrt(s / NOISE_DRAWS)) };
  } finally {
    learner.restore(saved);
  }
}
