/**
 * Fixed, data-independent image features for the DP MNIST benchmark (Tramèr & Boneh 2021, "Differentially
 * Private Learning Needs Better Features": hand-crafted features in front of a DP-trained model).
 *
 * Every function here is a FIXED map of ONE 28×28 image (pixels in [0, 1]) to a vector: no parameter is
 * fitted to, or computed from, any dataset, so applying it costs no privacy — the DP-trained model is an
 * "MLP over fixed features". The only constants are design choices (cell size, number of orientation bins,
 * the output scale), chosen like any other hyper-parameter in --validate mode.
 *
 *   hog(img)   — histogram of oriented gradients (Dalal & Triggs 2005, simplified): central-difference
 *                gradients, signed orientation in `bins` bins (linear interpolation between the two nearest
 *                bins), magnitude-weighted, summed over non-overlapping cell×cell pixel cells; then the
 *                square root of each entry (Hellinger / "power" normalisation) and L2 normalisation of the
 *                whole vector per image, times `scale`.
 *   pooled(img) — p×p average pooling of the pixels, standardised with the published MNIST mean/std.
 *
 * shift(img, dx, dy) — translate by whole pixels with zero fill (used for augmentation multiplicity).
 */

export interface FeatureSpec {
  /** HOG cell size in pixels (28 must be divisible by it). */
  readonly cell: number;
  /** Number of signed orientation bins over [0, 2π). */
  readonly bins: number;
  /** Multiplier after per-image L2 normalisation of the HOG block. */
  readonly scale: number;
  /** Average-pool factor for the appended raw-pixel block (0 = no pixel block). */
  readonly pool: number;
  /** Multiplier of the pixel block (after (x − mean)/std). */
  readonly pixelScale: number;
}

const SIDE = 28;
const PIXEL_MEAN = 0.1307;
const PIXEL_STD = 0.3081;

export function featureDim(spec: FeatureSpec): number {
  const cells = SIDE / spec.cell;
  const pix = spec.pool > 0 ? (SIDE / spec.pool) ** 2 : 0;
  return cells * cells * spec.bins + pix;
}

/** Write the features of one image (784 floats at img[off..]) into out[outOff..]. */
export function imageFeatures(img: ArrayLike<number>, off: number, spec: FeatureSpec, out: Float32Array, outOff: number): void {
  const { cell, bins } = spec;
  const cells = SIDE / cell;
  const hogLen = cells * cells * bins;
  for (let k = 0; k < hogLen; k++) out[outOff + k] = 0;
  const px = (r: number, c: number): number => (r < 0 || r >= SIDE || c < 0 || c >= SIDE ? 0 : img[off + r * SIDE + c]);
  const binWidth = (2 * Math.PI) / bins;
  for (let r = 0; r < SIDE; r++) {
    for (let c = 0; c < SIDE; c++) {
      const gx = px(r, c + 1) - px(r, c - 1);
      const gy = px(r + 1, c) - px(r - 1, c);
      const mag = Math.sqrt(gx * gx + gy * gy);
      if (mag === 0) continue;
      let theta = Math.atan2(gy, gx);
      if (theta < 0) theta += 2 * Math.PI;
      const pos = theta / binWidth - 0.5; // bin centres at (b + 0.5)·width
      const lo = Math.floor(pos);
      const frac = pos - lo;
      const b0 = ((lo % bins) + bins) % bins;
      const b1 = (b0 + 1) % bins;
      const base = outOff + (Math.floor(r / cell) * cells + Math.floor(c / cell)) * bins;
      out[base + b0] += mag * (1 - frac);
      out[base + b1] += mag * frac;
    }
  }
  let ss = 0;
  for (let k = 0; k < hogLen; k++) {
    const v = Math.sqrt(out[outOff + k]);
    out[outOff + k] = v;
    ss += v * v;
  }
  const norm = ss > 0 ? spec.scale / Math.sqrt(ss) : 0;
  for (let k = 0; k < hogLen; k++) out[outOff + k] *= norm;
  if (spec.pool > 0) {
    const p = spec.pool;
    const side = SIDE / p;
    let o = outOff + hogLen;
    for (let r = 0; r < side; r++) {
      for (let c = 0; c < side; c++) {
        let sum = 0;
        for (let i = 0; i < p; i++) for (let j = 0; j < p; j++) sum += img[off + (r * p + i) * SIDE + c * p + j];
        out[o++] = (spec.pixelScale * (sum / (p * p) - PIXEL_MEAN)) / PIXEL_STD;
      }
    }
  }
}

/** Features of n images stored row-major (n × 784) → n × featureDim(spec). */
export function batchFeatures(xs: Float32Array, n: number, spec: FeatureSpec): Float32Array {
  const dim = featureDim(spec);
  const out = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) imageFeatures(xs, i * 784, spec, out, i * dim);
  return out;
}

/** Translate one 28×28 image by (dx, dy) whole pixels, zero fill. */
export function shiftImage(img: ArrayLike<number>, off: number, dx: number, dy: number, out: Float32Array, outOff: number): void {
  for (let r = 0; r < SIDE; r++) {
    const sr = r - dy;
    for (let c = 0; c < SIDE; c++) {
      const sc = c - dx;
      out[outOff + r * SIDE + c] = sr < 0 || sr >= SIDE || sc < 0 || sc >= SIDE ? 0 : img[off + sr * SIDE + sc];
    }
  }
}
