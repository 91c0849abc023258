/**
 * Offline Likelihood Ratio Attack (LiRA; Carlini et al. 2022, "Membership Inference Attacks From First
 * Principles", §IV-C "offline" variant).
 *
 *   1. Train reference models on data that does NOT contain the target examples ("OUT" models).
 *   2. For each target example, its score in model f is the logit-scaled confidence of the true label,
 *      φ = log(p_y / (1 − p_y)), computed as log p_y − log Σ_{j≠y} p_j for numerical stability; the logit
 *      scaling makes the score distribution across models approximately Gaussian.
 *   3. Fit N(μ_out, σ²_out) to the OUT scores: μ per example; σ² per example, or one pooled ("global")
 *      variance — the paper recommends the global variance when there are few reference models (< ~64).
 *   4. Target model's φ → one-sided test: score = −log P[Z ≥ φ], Z ~ N(μ_out, σ²_out). Members are confident
 *      beyond what OUT models reach, so higher score = more likely a member.
 */
import { TayguardError } from '../../core/errors';
import { logErfc } from '../accountants/special';
import { trueAndOther, type Probabilities } from './loss-attack';

/** Smallest probability used in logs (float32's smallest normal). */
const TINY = 1.1754943508222875e-38;
/** Variance floor, so that identical reference scores do not divide by zero. */
const MIN_VARIANCE = 1e-8;

/** φ = log(p_y/(1 − p_y)) per example. */
export function logitConfidence(probs: Probabilities, labels: ArrayLike<number>): Float64Array {
  if (labels.length !== probs.n) {
    throw new TayguardError('ARGUMENT_INVALID', `got ${probs.n} probability rows but ${labels.length} labels; pass one label per example`);
  }
  const out = new Float64Array(probs.n);
  for (let i = 0; i < probs.n; i++) {
    const y = labels[i];
    if (!Number.isInteger(y) || y < 0 || y >= probs.classes) {
      throw new TayguardError('ARGUMENT_INVALID', `label ${i} is ${y}; labels must be class indices in [0, ${probs.classes})`);
    }
    const { pTrue, pOther } = trueAndOther(probs, i, y);
    out[i] = Math.log(Math.max(pTrue, TINY)) - Math.log(Math.max(pOther, TINY));
  }
  return out;
}

export interface OutDistribution {
  readonly mean: Float64Array;
  /** Per example (equal entries when `global`). */
  readonly std: Float64Array;
  readonly global: boolean;
  readonly referenceModels: number;
}

/**
 * Fit the OUT Gaussians. `referenceScores[k][i]` = φ of example i under reference model k (none of which
 * trained on example i). Per-example variance needs ≥ 2 reference models; the global variance pools the
 * within-example deviations of all examples (and with one model falls back to the variance across examples).
 */
export function fitOutDistribution(
  referenceScores: readonly ArrayLike<number>[],
  opts: { globalVariance?: boolean } = {},
): OutDistribution {
  const K = referenceScores.length;
  if (K === 0) throw new TayguardError('ARGUMENT_INVALID', 'offline LiRA needs at least one reference model');
  const n = referenceScores[0].length;
  for (const s of referenceScores) {
    if (s.length !== n) {
      throw new TayguardError('ARGUMENT_INVALID', 'every reference model must score the same examples (equal lengths)');
    }
  }
  const global = opts.globalVariance ?? K < 64;
  if (!global && K < 2) {
    throw new TayguardError('ARGUMENT_INVALID', 'per-example variance needs ≥ 2 reference models; use globalVariance: true');
  }
  const mean = new Float64Array(n);
  const std = new Float64Array(n);
  let pooledSq = 0;
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let k = 0; k < K; k++) s += referenceScores[k][i];
    mean[i] = s / K;
    let ss = 0;
    for (let k = 0; k < K; k++) ss += (referenceScores[k][i] - mean[i]) ** 2;
    pooledSq += ss;
    if (!global) std[i] = Math.sqrt(Math.max(MIN_VARIANCE, ss / (K - 1)));
  }
  if (global) {
    let variance: number;
    if (K >= 2) {
      variance = pooledSq / (n * (K - 1));
    } else {
      let m = 0;
      for (let i = 0; i < n; i++) m += mean[i];
      m /= n;
      let ss = 0;
      for (let i = 0; i < n; i++) ss += (mean[i] - m) ** 2;
      variance = n > 1 ? ss / (n - 1) : 0;
    }
    std.fill(Math.sqrt(Math.max(MIN_VARIANCE, variance)));
  }
  return { mean, std, global, referenceModels: K };
}

/** −log P[Z ≥ φ] for Z ~ N(μ, σ²): log 2 − log erfc((φ − μ)/(σ√2)); finite far into both tails. */
export function oneSidedScore(phi: number, mu: number, sigma: number): number {
  return Math.LN2 - logErfc((phi - mu) / (sigma * Math.SQRT2));
}

/** Offline LiRA scores of the target model's φ values against the fitted OUT distribution. */
export function liraOfflineScores(targetPhi: ArrayLike<number>, out: OutDistribution): Float64Array {
  if (targetPhi.length !== out.mean.length) {
    throw new TayguardError('ARGUMENT_INVALID', `got ${targetPhi.length} target scores for ${out.mean.length} fitted examples`);
  }
  const scores = new Float64Array(targetPhi.length);
  for (let i = 0; i < targetPhi.length; i++) scores[i] = oneSidedScore(targetPhi[i], out.mean[i], out.std[i]);
  return scores;
}
