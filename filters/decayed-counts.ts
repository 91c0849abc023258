/**
 * Exponentially decayed counts over one time scale of event time, kept with forward decay (Cormode, Shkapenyuk,
 * Srivastava & Xu 2009, "Forward decay: a practical time decay model for streaming systems"): a record at time t
 * adds e^{(t − base)/τ} instead of decaying every count at every step, so an update touches only its own cells;
 * the count as of now is the stored value × e^{−(now − base)/τ}. Once the weights reach e^RESCALE the arrays are
 * folded back to a new base (`rescale`). Snapshots of a scale, taken every `lag` of event time into two slots,
 * give its counts as of at least one lag ago (`laggedSnapshot`): a baseline that does not yet contain the burst
 * being judged. Used by the rare-feature screen (rare-feature.ts), one scale per (feature, label) array.
 */

/** One time scale's decayed counts, forward-decayed from `base`. */
export interface Scale {
  readonly tau: number;
  base: number;
  /** Σ e^{(t_i − base)/τ} over records; per (feature, label) cell below. */
  total: number;
  cells: Float32Array;
}

/** A long scale's accepted counts as of `at` (already decayed to `at`). */
export interface Snapshot {
  at: number;
  total: number;
  cells: Float32Array;
}

/** e-folds before the forward-decay weights are rescaled (e^20 ≈ 5·10^8: far inside float32 range). */
const RESCALE = 20;

/** The snapshot of a pair taken at least `lag` ago (undefined before there is one). */
export function laggedSnapshot(snaps: readonly Snapshot[], lag: number, t: number): Snapshot | undefined {
  const [a, b] = snaps;
  const newest = a.at >= b.at ? a : b;
  const older = newest === a ? b : a;
  if (t - newest.at >= lag) return newest;
  if (t - older.at >= lag) return older;
  return undefined;
}

/** Every `lag` of event time, copy the scale's counts (decayed to now) into the pair's older slot. */
export function takeSnapshot(snaps: readonly Snapshot[], sc: Scale, lag: number, t: number): void {
  const [a, b] = snaps;
  const newest = a.at >= b.at ? a : b;
  if (Number.isFinite(newest.at) && t - newest.at < lag) return;
  const slot = newest === a ? b : a;
  const f = Math.exp(-(t - sc.base) / sc.tau);
  for (let c = 0; c < sc.cells.length; c++) slot.cells[c] = sc.cells[c] * f;
  slot.total = sc.total * f;
  slot.at = t;
}

/** Forward decay: once the weights reach e^RESCALE, fold them into the counts and move the base to now. */
export function rescale(sc: Scale, t: number): void {
  if (sc.base === 0 && sc.total === 0) sc.base = t;
  if ((t - sc.base) / sc.tau < RESCALE) return;
  const f = Math.exp(-(t - sc.base) / sc.tau);
  for (let c = 0; c < sc.cells.length; c++) sc.cells[c] *= f;
  sc.total *= f;
  sc.base = t;
}
