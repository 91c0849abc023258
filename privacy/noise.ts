/**
 * Gaussian noise for DP-SGD (Abadi et al. 2016, Alg. 1 line 7: g̃ = (Σ clip(gᵢ) + N(0, σ²C²I)) / L).
 *
 * Why not tf.randomNormal / Math.random: both are seeded from Math.random (xorshift128+ in V8), whose state
 * can be recovered from a few outputs, so an observer of released noisy gradients could predict and subtract
 * the noise. The default source draws from node:crypto (the OS CSPRNG). A seeded source (seedrandom ARC4) is
 * available ONLY when a seed is passed explicitly, for reproducible tests and experiments; it reports
 * kind 'seeded' so callers can refuse it in production.
 *
 * Sampling: Marsaglia's polar method (Marsaglia & Bray 1964; Box–Muller without sin/cos, ~1.5× faster here)
 * on uniforms with 53-bit resolution, each built from two uint32 words: u = (hi·2²⁶ + lo)/2⁵³·2 − 1 with
 * hi = 27 and lo = 26 random bits. 53 bits (not 32) keep the tail of |z| un-truncated far beyond the
 * ≈ 6.7σ a 32-bit uniform would allow; pairs with s = u² + v² ∉ (0, 1) are rejected.
 * Known limitation: like every float sampler this is not hardened against Mironov's (2012) floating-point
 * least-significant-bit attack; the result is rounded to float32 when added to a gradient.
 */
import { randomFillSync } from 'node:crypto';
import seedrandom from 'seedrandom';
import { TayguardError } from '../src/errors';
import { tf } from '../src/tf';

export type NoiseKind = 'crypto' | 'seeded';

export interface GaussianSource {
  readonly kind: NoiseKind;
  /** Fill `out` with independent N(0, std²) samples; returns `out`. */
  fill(out: Float32Array, std: number): Float32Array;
  /** n fresh N(0, std²) samples. */
  sample(n: number, std: number): Float32Array;
}

/** Words per refill: 64 KiB of randomness, amortises the syscall / OpenSSL call. */
const CHUNK_WORDS = 16384;
const TWO_26 = 67108864;
const TWO_53 = 9007199254740992;

type WordFiller = (buf: Uint32Array) => void;

class PolarSource implements GaussianSource {
  private readonly words = new Uint32Array(CHUNK_WORDS);
  /** Next unused word; leftover words carry over to the next call (each word is used once). */
  private pos = CHUNK_WORDS;

  constructor(
    readonly kind: NoiseKind,
    private readonly fillWords: WordFiller,
  ) {}

  fill(out: Float32Array, std: number): Float32Array {
    checkStd(std);
    const words = this.words;
    let pos = this.pos;
    let i = 0;
    while (i < out.length) {
      if (pos + 4 > CHUNK_WORDS) {
        this.fillWords(words);
        pos = 0;
      }
      // Two uniforms on [−1, 1) with 53-bit resolution, from 4 words.
      const u = (((words[pos] >>> 5) * TWO_26 + (words[pos + 1] >>> 6)) / TWO_53) * 2 - 1;
      const v = (((words[pos + 2] >>> 5) * TWO_26 + (words[pos + 3] >>> 6)) / TWO_53) * 2 - 1;
      pos += 4;
      const s = u * u + v * v;
      if (s >= 1 || s === 0) continue; // rejected with probability 1 − π/4
      const f = std * Math.sqrt((-2 * Math.log(s)) / s);
      out[i++] = u * f;
      if (i < out.length) out[i++] = v * f;
    }
    this.pos = pos;
    return out;
  }

  sample(n: number, std: number): Float32Array {
    if (!Number.isInteger(n) || n < 0) {
      throw new TayguardError('ARGUMENT_INVALID', `sample count must be a non-negative integer, got ${n}`);
    }
    return this.fill(new Float32Array(n), std);
  }
}

function checkStd(std: number): void {
  if (!Number.isFinite(std) || std < 0) {
    throw new TayguardError('ARGUMENT_INVALID', `noise std must be a finite number ≥ 0, got ${std}; use σ·C`);
  }
}

export interface NoiseOptions {
  /** Explicit seed → reproducible 'seeded' source (tests/experiments only). Omit for the crypto source. */
  seed?: string | number;
}

/** The default (crypto) source, or a seeded one when `opts.seed` is given. */
export function createGaussianSource(opts: NoiseOptions = {}): GaussianSource {
  if (opts.seed === undefined) {
    return new PolarSource('crypto', (buf) => {
      randomFillSync(buf);
    });
  }
  if (typeof opts.seed !== 'string' && !Number.isFinite(opts.seed)) {
    throw new TayguardError('ARGUMENT_INVALID', `seed must be a string or a finite number, got ${String(opts.seed)}`);
  }
  const rng = seedrandom(String(opts.seed));
  return new PolarSource('seeded', (buf) => {
    for (let k = 0; k < buf.length; k++) buf[k] = rng.int32() >>> 0;
  });
}

/**
 * New tensors g + N(0, std²) for every entry of `grads` (inputs are left untouched; the caller owns and
 * disposes both maps). With std = σC this is the Gaussian mechanism of DP-SGD before dividing by the batch size.
 */
export function addNoise(grads: tf.NamedTensorMap, std: number, source: GaussianSource): tf.NamedTensorMap {
  checkStd(std);
  const out: tf.NamedTensorMap = {};
  try {
    for (const [name, g] of Object.entries(grads)) {
      const noise = source.sample(g.size, std);
      out[name] = tf.tidy(() => tf.add(g, tf.tensor(noise, g.shape, 'float32')));
    }
  } catch (err) {
    for (const t of Object.values(out)) t.dispose();
    throw err;
  }
  return out;
}
