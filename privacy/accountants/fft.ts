/**
 * Radix-2 FFTs for the PRV accountant: an in-place complex transform (iterative Cooley–Tukey, decimation in
 * time, split real/imaginary arrays) and real-input/real-output wrappers that run it at half length.
 *
 * Small on purpose: the accountant needs one forward transform of a real PMF per distinct mechanism and one
 * inverse back to a real PMF, on power-of-two grids of up to a few million points. Twiddles come from
 * Math.cos/Math.sin per index rather than a rotation recurrence, whose rounding error would grow with the
 * grid size and leak into the tails of the composed distribution, where delta lives.
 */
import { TayguardError } from '../../core/errors';

interface Table {
  readonly n: number;
  /** cos and sin of -2 pi k / n for k < n/2. */
  readonly cos: Float64Array;
  readonly sin: Float64Array;
}

let cachedTable: Table | null = null;

/** Twiddle table for length n; only the latest is kept since grids change between calls. */
function twiddles(n: number): Table {
  if (cachedTable?.n !== n) {
    const half = n >>> 1;
    const cos = new Float64Array(half);
    const sin = new Float64Array(half);
    for (let k = 0; k < half; k++) {
      const angle = (-2 * Math.PI * k) / n;
      cos[k] = Math.cos(angle);
      sin[k] = Math.sin(angle);
    }
    cachedTable = { n, cos, sin };
  }
  return cachedTable;
}

export const isPowerOfTwo = (n: number): boolean => Number.isInteger(n) && n >= 1 && (n & (n - 1)) === 0;

export function nextPowerOfTwo(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

/**
 * Unnormalised DFT in place, X[k] = sum_j x[j] exp(-+ 2 pi i jk / n) (minus for forward). `table` may belong
 * to a multiple of n; `step` is then that multiple, so the real wrappers share one table.
 */
function transform(re: Float64Array, im: Float64Array, inverse: boolean, table: Table, step: number): void {
  const n = re.length;
  for (let i = 1, j = 0; i < n; i++) {
    let bit = n >>> 1;
    for (; j & bit; bit >>>= 1) j ^= bit;
    j ^= bit;
    if (i < j) {
      let t = re[i];
      re[i] = re[j];
      re[j] = t;
      t = im[i];
      im[i] = im[j];
      im[j] = t;
    }
  }
  const { cos, sin } = table;
  const sign = inverse ? -1 : 1;
  for (let size = 2; size <= n; size <<= 1) {
    const half = size >>> 1;
    const stride = (n / size) * step;
    for (let start = 0; start < n; start += size) {
      for (let k = 0, w = 0; k < half; k++, w += stride) {
        const wr = cos[w];
        const wi = sign * sin[w];
        const a = start + k;
        const b = a + half;
        const xr = re[b] * wr - im[b] * wi;
        const xi = re[b] * wi + im[b] * wr;
        re[b] = re[a] - xr;
        im[b] = im[a] - xi;
        re[a] += xr;
        im[a] += xi;
      }
    }
  }
}

/** Complex FFT in place; with `inverse`, the inverse transform including the 1/n factor. */
export function fft(re: Float64Array, im: Float64Array, inverse = false): void {
  const n = re.length;
  if (im.length !== n || !isPowerOfTwo(n)) {
    throw new TayguardError('INTERNAL', `fft needs equal power-of-two lengths, got ${re.length} and ${im.length}`);
  }
  transform(re, im, inverse, twiddles(n), 1);
  if (inverse) {
    for (let i = 0; i < n; i++) {
      re[i] /= n;
      im[i] /= n;
    }
  }
}

/**
 * Spectrum X[0..n/2] of a real sequence of power-of-two length n >= 4 (the rest is conj-symmetric).
 * Packs even/odd samples as one complex sequence of length n/2, transforms it, and splits it with
 * X[k] = E[k] + W^k O[k], W = exp(-2 pi i / n).
 */
export function realFft(x: Float64Array): { re: Float64Array; im: Float64Array } {
  const n = x.length;
  if (!isPowerOfTwo(n) || n < 4) throw new TayguardError('INTERNAL', `realFft needs a power-of-two length >= 4, got ${n}`);
  const m = n / 2;
  const zr = new Float64Array(m);
  const zi = new Float64Array(m);
  for (let j = 0; j < m; j++) {
    zr[j] = x[2 * j];
    zi[j] = x[2 * j + 1];
  }
  const table = twiddles(n);
  transform(zr, zi, false, table, 2);
  const re = new Float64Array(m + 1);
  const im = new Float64Array(m + 1);
  for (let k = 0; k <= m; k++) {
    const a = k % m;
    const b = (m - k) % m;
    // E = (Z[k] + conj Z[m-k]) / 2, O = (Z[k] - conj Z[m-k]) / (2i)
    const er = 0.5 * (zr[a] + zr[b]);
    const ei = 0.5 * (zi[a] - zi[b]);
    const or = 0.5 * (zi[a] + zi[b]);
    const oi = -0.5 * (zr[a] - zr[b]);
    const wr = k < m ? table.cos[k] : -1;
    const wi = k < m ? table.sin[k] : 0;
    re[k] = er + wr * or - wi * oi;
    im[k] = ei + wr * oi + wi * or;
  }
  return { re, im };
}

/** Inverse of realFft: the real sequence of length n whose spectrum has first half (re, im)[0..n/2]. */
export function realIfft(re: Float64Array, im: Float64Array, n: number): Float64Array {
  const m = n / 2;
  if (!isPowerOfTwo(n) || n < 4 || re.length !== m + 1 || im.length !== m + 1) {
    throw new TayguardError('INTERNAL', `realIfft needs n/2 + 1 spectrum values for a power-of-two n >= 4`);
  }
  const table = twiddles(n);
  const zr = new Float64Array(m);
  const zi = new Float64Array(m);
  for (let k = 0; k < m; k++) {
    // E = (X[k] + conj X[m-k]) / 2, O = (X[k] - conj X[m-k]) / (2 W^k), Z = E + i O
    const er = 0.5 * (re[k] + re[m - k]);
    const ei = 0.5 * (im[k] - im[m - k]);
    const dr = 0.5 * (re[k] - re[m - k]);
    const di = 0.5 * (im[k] + im[m - k]);
    const wr = table.cos[k];
    const wi = -table.sin[k]; // 1 / W^k = conj W^k
    const or = dr * wr - di * wi;
    const oi = dr * wi + di * wr;
    zr[k] = er - oi;
    zi[k] = ei + or;
  }
  transform(zr, zi, true, table, 2);
  const x = new Float64Array(n);
  for (let j = 0; j < m; j++) {
    x[2 * j] = zr[j] / m;
    x[2 * j + 1] = zi[j] / m;
  }
  return x;
}
