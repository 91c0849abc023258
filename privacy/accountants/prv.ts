/**
 * PRV accountant: numerical composition of privacy loss random variables.
 *
 * Gopi, Lee, Wutschitz 2021, "Numerical Composition of Differential Privacy" (arXiv:2106.02848); the same
 * algorithm as Microsoft's prv_accountant and Opacus 1.5.4's PRVAccountant:
 *  1. pick a truncation interval [-L, L] from an RDP tail bound (Remark 5.6) and a mesh from the error
 *     budget (Thm. 5.5 / Sec. 5.3);
 *  2. discretise each distinct step's PRV on that grid, shifting it so its mean is exact (Sec. 5);
 *  3. compose by multiplying Fourier transforms (self-composition = power, groups = product);
 *  4. read delta(eps) = E[(1 - e^(eps - Y))_+] off the composed PMF and invert it for eps.
 *
 * Error budget. Thm. 5.5 gives, for discretisation budget e_d and delta budget d_e,
 *   eps_Y(delta + d_e) - e_d <= eps_true(delta) <= eps_Y(delta - d_e) + e_d.
 * Opacus spends the caller's whole epsError as e_d and reports the upper end, which can sit slightly more
 * than epsError above the true value (10.0077 vs 9.9973 for q = 1, sigma = 5, 100 steps). Here e_d is half of
 * epsError, so the reported upper bound is both guaranteed (never below the truth) and within epsError of
 * it; the price is a grid twice as fine.
 */
import { TayguardError } from '../../core/errors';
import { nextPowerOfTwo, realFft, realIfft } from './fft';
import { SubsampledGaussianPrv } from './prv-variable';
import { rdpEpsilon } from './rdp';
import {
  Accountant,
  AccountantState,
  EpsilonResult,
  Segment,
  SegmentHistory,
  checkDelta,
  checkEpsError,
  checkSegment,
  groupSegments,
  parseState,
} from './types';

export const DEFAULT_EPS_ERROR = 0.01;
/** Largest grid (points) the accountant builds: 4M points is ~200 MB of working arrays and ~2 s. */
export const MAX_GRID_SIZE = 2 ** 22;

export interface PrvBounds {
  /** Lower bound on the true epsilon. */
  readonly lower: number;
  /** Point estimate eps_Y(delta). */
  readonly estimate: number;
  /** Guaranteed upper bound, at most about epsError above the truth; this is what getEpsilon reports. */
  readonly upper: number;
}

interface Grid {
  /** Number of points, a power of two. */
  readonly size: number;
  /** Mesh width. */
  readonly dt: number;
  /** Index of the grid point at 0; point i sits at (i - zero) * dt. */
  readonly zero: number;
}

/**
 * Half-width L of the truncation interval, Gopi et al. 2021 Remark 5.6 (as Opacus's compute_safe_domain_size):
 * the composed loss exceeds the RDP epsilon at delta_error/4 with probability below delta_error/4, and a
 * single step exceeds its epsilon at delta_error/(8 T) likewise; 3 is added as slack.
 */
function truncationHalfWidth(groups: readonly Segment[], discError: number, deltaError: number): number {
  const totalSteps = groups.reduce((n, g) => n + g.steps, 0);
  let l = rdpEpsilon(groups, deltaError / 4).epsilon;
  for (const g of groups) {
    l = Math.max(l, rdpEpsilon([{ ...g, steps: 1 }], deltaError / (8 * totalSteps)).epsilon);
  }
  return Math.max(l, discError) + 3;
}

function buildGrid(groups: readonly Segment[], discError: number, deltaError: number): Grid {
  const totalSteps = groups.reduce((n, g) => n + g.steps, 0);
  const halfWidth = truncationHalfWidth(groups, discError, deltaError);
  // Mesh from Gopi et al. 2021 Sec. 5.3 (Opacus _get_domain): the discretisation error of a sum of T
  // mean-corrected variables behaves like a sum of T bounded zero-mean errors, so Hoeffding gives this width.
  const dt = discError / Math.sqrt((totalSteps * Math.log(12 / deltaError)) / 2);
  const k = Math.ceil(halfWidth / dt);
  // Radix-2 FFT: round the point count up to a power of two by widening the interval (a wider interval only
  // truncates less), keeping 0 at index size/2 so [-k dt, k dt] is always covered.
  const size = nextPowerOfTwo(2 * k + 2);
  if (!Number.isFinite(size) || size > MAX_GRID_SIZE) {
    throw new TayguardError(
      'ARGUMENT_INVALID',
      `PRV accounting for this history needs a ${size}-point grid (limit ${MAX_GRID_SIZE}); ` +
        `raise epsError (now ${discError * 2}) or use the RDP accountant`,
    );
  }
  return { size, dt, zero: size / 2 };
}

/**
 * PMF of one step's PRV on the grid, truncated to the grid's span and renormalised, and the shift that
 * makes the discrete mean equal the continuous truncated mean (Gopi et al. 2021, Sec. 5).
 */
function discretise(prv: SubsampledGaussianPrv, grid: Grid): { pmf: Float64Array; shift: number } {
  const { size, dt, zero } = grid;
  const tMin = -zero * dt;
  const tMax = (size - 1 - zero) * dt;
  const pmf = new Float64Array(size);
  const sMin = prv.survival(tMin);
  const sMax = prv.survival(tMax);
  const remaining = sMin - sMax;
  let left = sMin;
  for (let i = 0; i < size; i++) {
    const right = i === size - 1 ? sMax : prv.survival((i + 0.5 - zero) * dt);
    pmf[i] = (left - right) / remaining;
    left = right;
  }
  let discreteMean = 0;
  for (let i = 0; i < size; i++) discreteMean += (i - zero) * dt * pmf[i];
  const shift = prv.truncatedMean(tMin, tMax) - discreteMean;
  if (!(Math.abs(shift) < dt / 2)) {
    throw new TayguardError('INTERNAL', `PRV discretisation is off by ${shift} (mesh ${dt}); the grid is too coarse`);
  }
  return { pmf, shift };
}

/**
 * Compose all groups: PMF of the sum of steps_g independent copies of each group's PRV.
 * The transform of a sum is the product of transforms, so each group's spectrum is raised to its step count
 * (in polar form, as log-magnitude and phase, so 10^5 steps neither overflow nor lose the phase) and the
 * groups are multiplied. The circular convolution wraps mass that leaves [-L, L]; L was chosen so that mass
 * is below delta_error.
 */
function compose(groups: readonly Segment[], grid: Grid): { pmf: Float64Array; offset: number } {
  const { size, zero } = grid;
  const half = size / 2;
  // the PMFs are real, so X[size - k] = conj(X[k]) and only k <= size/2 is kept
  const logMag = new Float64Array(half + 1);
  const phase = new Float64Array(half + 1);
  let offset = 0;
  let totalSteps = 0;
  for (const g of groups) {
    const { pmf, shift } = discretise(new SubsampledGaussianPrv(g.sampleRate, g.noiseMultiplier), grid);
    offset += g.steps * shift;
    totalSteps += g.steps;
    const { re, im } = realFft(pmf);
    for (let k = 0; k <= half; k++) {
      // once a frequency's magnitude is below e^-800 its power is 0 in double precision; skip the work
      if (logMag[k] < -800) continue;
      logMag[k] += 0.5 * g.steps * Math.log(re[k] * re[k] + im[k] * im[k]);
      phase[k] += g.steps * Math.atan2(im[k], re[k]);
    }
  }
  const re = new Float64Array(half + 1);
  const im = new Float64Array(half + 1);
  for (let k = 0; k <= half; k++) {
    if (logMag[k] < -800) continue; // exp underflows to 0 anyway
    const m = Math.exp(logMag[k]);
    re[k] = m * Math.cos(phase[k]);
    im[k] = m * Math.sin(phase[k]);
  }
  const circular = realIfft(re, im, size);
  // Index k of the circular sum holds sum_j i_j; a sum of T points at (i_j - zero) dt lands at
  // (k - T zero) dt, which is grid index k - (T - 1) zero (mod size): a rotation by `roll`.
  const roll = (((totalSteps - 1) % size) * zero) % size;
  const out = new Float64Array(size);
  out.set(circular.subarray(roll), 0);
  out.set(circular.subarray(0, roll), size - roll);
  return { pmf: out, offset };
}

/**
 * eps such that delta(eps) = sum_{t_j >= eps} p_j (1 - e^(eps - t_j)) equals each target, from suffix sums
 * (Gopi et al. 2021, Sec. 4; Opacus DiscretePRV.compute_epsilon): at the first grid point with
 * delta(t_i) <= target the equation is linear in e^eps.
 */
function invertDelta(pmf: Float64Array, grid: Grid, offset: number, targets: readonly number[]): number[] {
  const { size, dt, zero } = grid;
  const d1 = new Float64Array(size + 1);
  const d2 = new Float64Array(size + 1);
  const t = (i: number): number => (i - zero) * dt + offset;
  for (let i = size - 1; i >= 0; i--) {
    d1[i] = d1[i + 1] + pmf[i];
    d2[i] = d2[i + 1] + pmf[i] * Math.exp(-t(i));
  }
  const negDelta = (i: number): number => Math.exp(t(i)) * d2[i] - d1[i];
  return targets.map((target) => {
    // first i with -delta(t_i) >= -target (binary search, as numpy.searchsorted side='left')
    let lo = 0;
    let hi = size;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (negDelta(mid) < -target) lo = mid + 1;
      else hi = mid;
    }
    if (lo <= 0 || lo >= size) {
      throw new TayguardError('INTERNAL', `PRV cannot resolve delta=${target} on this grid`);
    }
    return Math.log((d1[lo] - target) / d2[lo]);
  });
}

/** Epsilon bounds of a history at delta via PRV composition (pure). */
export function prvEpsilonBounds(history: readonly Segment[], delta: number, epsError = DEFAULT_EPS_ERROR): PrvBounds {
  checkDelta(delta);
  checkEpsError(epsError);
  history.forEach(checkSegment);
  // q = 0 steps touch no record: their PRV is identically 0 and composing them changes nothing
  const groups = groupSegments(history.filter((s) => s.sampleRate > 0));
  if (groups.length === 0) return { lower: 0, estimate: 0, upper: 0 };

  const discError = epsError / 2;
  const deltaError = delta / 1000; // Opacus default
  const grid = buildGrid(groups, discError, deltaError);
  // float64 suffix sums carry ~size ulps of absolute error; delta must stand well clear of that
  if (Number.EPSILON * grid.size > delta - deltaError) {
    throw new TayguardError('ARGUMENT_INVALID', `delta=${delta} is too small for a ${grid.size}-point PRV grid; raise delta or epsError, or use RDP`);
  }
  const { pmf, offset } = compose(groups, grid);
  const [atLow, estimate, atHigh] = invertDelta(pmf, grid, offset, [delta - deltaError, delta, delta + deltaError]);
  return {
    lower: Math.max(0, atHigh - discError),
    estimate: Math.max(0, estimate),
    upper: Math.max(0, atLow + discError),
  };
}

/** Upper bound on epsilon of a history at delta via PRV (pure). */
export function prvEpsilon(history: readonly Segment[], delta: number, epsError = DEFAULT_EPS_ERROR): EpsilonResult {
  return { epsilon: prvEpsilonBounds(history, delta, epsError).upper, order: null };
}

export class PrvAccountant extends SegmentHistory implements Accountant {
  readonly kind = 'prv' as const;
  // getEpsilon costs up to a second; remember the last answer for an unchanged history
  private memo: { key: string; bounds: PrvBounds } | null = null;

  getEpsilonBounds(delta: number, epsError = DEFAULT_EPS_ERROR): PrvBounds {
    const key = JSON.stringify([this.segments, delta, epsError]);
    if (this.memo?.key !== key) this.memo = { key, bounds: prvEpsilonBounds(this.segments, delta, epsError) };
    return this.memo.bounds;
  }

  getEpsilon(delta: number, epsError = DEFAULT_EPS_ERROR): EpsilonResult {
    return { epsilon: this.getEpsilonBounds(delta, epsError).upper, order: null };
  }

  epsilonAfter(sampleRate: number, noiseMultiplier: number, delta: number, steps = 1, epsError = DEFAULT_EPS_ERROR): EpsilonResult {
    return prvEpsilon(this.withStep(sampleRate, noiseMultiplier, steps), delta, epsError);
  }

  toJSON(): AccountantState {
    return this.state('prv');
  }

  static fromJSON(state: unknown): PrvAccountant {
    const acc = new PrvAccountant();
    acc.segments.push(...parseState(state, 'prv'));
    return acc;
  }
}
