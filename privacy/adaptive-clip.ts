/**
 * Adaptive clipping: Andrew, Thakkar, McMahan, Ramaswamy 2021, "Differentially Private Learning with
 * Adaptive Clipping" (NeurIPS 2021, arXiv:1905.03871).
 *
 * The clip norm C tracks the γ-quantile of the per-unit gradient norms with a geometric update
 *     C ← C · exp(−η_C · (b̄ − γ)),
 * where b̄ is the fraction of units whose norm was ≤ C (unclipped). If more than γ were unclipped, C is too
 * large and shrinks; otherwise it grows. (Paper, Sec. 2.1 and Alg. 1.)
 *
 * b̄ is itself a statistic of the private batch, so it is released with its own Gaussian noise:
 *     b̄ = ( Σ_u (b_u − ½) + N(0, σ_b²) ) / (q·N) + ½
 * Centring b_u ∈ {0, 1} at ½ gives the sum sensitivity ½ under add/remove of one unit (the paper's trick), so
 * this query has noise multiplier 2σ_b. The norm query and the gradient query read the same batch, so they
 * are accounted together as ONE Gaussian mechanism on the concatenated vector: dividing each part by its own
 * noise std gives unit noise and sensitivity² (C/(σ_Δ·C))² + (½/σ_b)², so the combined multiplier σ solves
 *     σ⁻² = σ_Δ⁻² + (2σ_b)⁻²   ⇔   σ_Δ = (σ⁻² − (2σ_b)⁻²)^(−1/2)          (paper, Thm. 1 / Sec. 3)
 * So: the ACCOUNTANT is charged σ, and the gradient must be noised with the larger σ_Δ. This needs 2σ_b > σ;
 * the paper's default σ_b = (q·N)/20 keeps σ_Δ within a few percent of σ for usual batch sizes.
 */
import { TayguardError } from '../core/errors';
import type { GaussianSource } from './noise';

export interface AdaptiveClipOptions {
  /** Starting clip norm C₀ (> 0); the paper uses a small value such as 0.1 and lets it grow. */
  readonly initialClipNorm: number;
  /** γ ∈ (0, 1): the quantile of unit norms to track (paper: 0.5 works broadly). */
  readonly targetQuantile: number;
  /** η_C > 0: geometric learning rate (paper: 0.2). */
  readonly learningRate: number;
  /** σ_b: std of the noise added to the count of unclipped units. */
  readonly countNoiseStd: number;
  /** σ: the noise multiplier the accountant is charged for the whole step (gradient + count). */
  readonly noiseMultiplier: number;
  /** q·N, the divisor of the count, as for the gradient. */
  readonly expectedBatchSize: number;
  readonly noise: GaussianSource;
  /** Optional bounds that stop C drifting to 0 or ∞ on degenerate batches. Defaults: 1e-6, 1e6. */
  readonly minClipNorm?: number;
  readonly maxClipNorm?: number;
}

export interface ClipUpdate {
  /** C before the update (the one the norms were clipped with). */
  readonly previous: number;
  /** C after the update (use it for the next step). */
  readonly clipNorm: number;
  /** The privatised fraction b̄ of unclipped units (can leave [0, 1] because of the noise). */
  readonly noisyUnclippedFraction: number;
}

export interface AdaptiveClipState {
  readonly version: 1;
  readonly clipNorm: number;
}

const invalid = (m: string): TayguardError => new TayguardError('ARGUMENT_INVALID', m);

function positive(name: string, v: number): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw invalid(`${name} must be a finite number > 0, got ${String(v)}`);
}

/**
 * σ_Δ, the gradient noise multiplier that makes (gradient, count) together a Gaussian mechanism with noise
 * multiplier σ, given count noise σ_b (Andrew et al. 2021). Throws when σ_b is too small (2σ_b ≤ σ).
 */
export function adjustedNoiseMultiplier(noiseMultiplier: number, countNoiseStd: number): number {
  positive('noiseMultiplier', noiseMultiplier);
  positive('countNoiseStd', countNoiseStd);
  const rest = noiseMultiplier ** -2 - (2 * countNoiseStd) ** -2;
  if (!(rest > 0)) {
    throw invalid(
      `countNoiseStd ${countNoiseStd} is too small for noise multiplier ${noiseMultiplier}: need 2σ_b > σ ` +
        `(the paper uses σ_b = expected batch / 20)`,
    );
  }
  return rest ** -0.5;
}

export class AdaptiveClipper {
  readonly targetQuantile: number;
  readonly learningRate: number;
  readonly countNoiseStd: number;
  readonly noiseMultiplier: number;
  /** σ_Δ: pass THIS as privateGradients' noiseMultiplier; charge `noiseMultiplier` to the accountant. */
  readonly gradientNoiseMultiplier: number;
  readonly expectedBatchSize: number;
  private readonly noise: GaussianSource;
  private readonly minClip: number;
  private readonly maxClip: number;
  private c: number;

  constructor(opts: AdaptiveClipOptions) {
    positive('initialClipNorm', opts.initialClipNorm);
    positive('learningRate', opts.learningRate);
    positive('expectedBatchSize', opts.expectedBatchSize);
    if (!(opts.targetQuantile > 0 && opts.targetQuantile < 1)) throw invalid(`targetQuantile must be in (0, 1), got ${String(opts.targetQuantile)}`);
    this.targetQuantile = opts.targetQuantile;
    this.learningRate = opts.learningRate;
    this.countNoiseStd = opts.countNoiseStd;
    this.noiseMultiplier = opts.noiseMultiplier;
    this.gradientNoiseMultiplier = adjustedNoiseMultiplier(opts.noiseMultiplier, opts.countNoiseStd);
    this.expectedBatchSize = opts.expectedBatchSize;
    this.noise = opts.noise;
    this.minClip = opts.minClipNorm ?? 1e-6;
    this.maxClip = opts.maxClipNorm ?? 1e6;
    positive('minClipNorm', this.minClip);
    if (!(this.maxClip >= this.minClip)) throw invalid('maxClipNorm must be ≥ minClipNorm');
    this.c = Math.min(this.maxClip, Math.max(this.minClip, opts.initialClipNorm));
  }

  /** The clip norm for the next step. */
  get clipNorm(): number {
    return this.c;
  }

  /**
   * Update C from the pre-clip norms of the step just taken with clip norm `clipNorm` (the `norms` that
   * privateGradients returns). Only the noisy count leaves this function.
   */
  update(norms: ArrayLike<number>): ClipUpdate {
    const previous = this.c;
    let centred = 0;
    for (let i = 0; i < norms.length; i++) centred += (norms[i] <= previous ? 1 : 0) - 0.5;
    const noisy = centred + this.noise.sample(1, this.countNoiseStd)[0];
    const fraction = noisy / this.expectedBatchSize + 0.5;
    const next = previous * Math.exp(-this.learningRate * (fraction - this.targetQuantile));
    this.c = Math.min(this.maxClip, Math.max(this.minClip, next));
    return { previous, clipNorm: this.c, noisyUnclippedFraction: fraction };
  }

  toJSON(): AdaptiveClipState {
    return { version: 1, clipNorm: this.c };
  }

  /** Restore the current C into a clipper built with the same options. */
  restore(state: unknown): void {
    const s = state as Partial<AdaptiveClipState> | null;
    if (s?.version !== 1 || typeof s.clipNorm !== 'number' || !(s.clipNorm > 0) || !Number.isFinite(s.clipNorm)) {
      throw new TayguardError('CHECKPOINT_CORRUPT', 'adaptive clipping state is not valid; restore an older checkpoint');
    }
    this.c = s.clipNorm;
  }
}
