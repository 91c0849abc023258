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
  /** Opaque state of a seeded source (for checkpoints, so a restart does not repeat noise); crypto has none. */
  state?(): unknown;
}

/** Words per refill: 64 KiB of randomness, amortises the syscall / OpenSSL call. */
const CHUNK_WORDS = 16384;
const TWO_26 = 67108864;
const TWO_53 = 9007199254740992;

type WordFiller = (buf: Uint32Array) => void;

class PolarSource implements GaussianSource {
  private readonly words = new Uint32Array(CHUNK_WORDS);
  /** Next unused word; leftover words carry over to the next call (each word is used once). */
  protected pos = CHUNK_WORDS;

  constructor(
    readonly kind: NoiseKind,
    private readonly fillWords: WordFiller,
  ) {}

  /** Refill the word buffer now (a restored seeded source regenerates the buffer it had). */
  protected refill(): void {
    this.fillWords(this.words);
    this.pos = 0;
  }

  fill(out: Float32Array, std: number): Float32Array {
    checkStd(std);
    const words = this.words;
    let pos = this.pos;
    let i = 0;
    while (i < out.length) {
      if (pos + 4 > CHUNK_WORDS) {
        this.refill();
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

/**
 * Seeded source whose position in its stream can be saved: the ARC4 state as it was before the last buffer
 * refill, plus the position in that buffer. Restoring regenerates the same buffer, so a restarted seeded run
 * continues the noise stream instead of repeating it from the seed (repeated noise vectors would cancel in
 * differences of released models).
 */
class SeededPolarSource extends PolarSource {
  private readonly mark: { beforeRefill: seedrandom.State.Arc4 | null };

  constructor(seed: string, saved?: { rng: seedrandom.State.Arc4 | null; pos: number }) {
    const rng = saved?.rng ? seedrandom('', { state: saved.rng }) : seedrandom(seed, { state: true });
    const mark = { beforeRefill: null as seedrandom.State.Arc4 | null };
    super('seeded', (buf) => {
      mark.beforeRefill = rng.state();
      for (let k = 0; k < buf.length; k++) buf[k] = rng.int32() >>> 0;
    });
    this.mark = mark;
    if (saved?.rng) {
      this.refill();
      this.pos = saved.pos;
    }
  }

  state(): unknown {
    return { rng: this.mark.beforeRefill, pos: this.pos };
  }
}

export interface NoiseOptions {
  /** Explicit seed → reproducible 'seeded' source (tests/experiments only). Omit for the crypto source. */
  seed?: string | number;
  /** Saved `state()` of a seeded source with the same seed: continue its stream. */
  state?: unknown;
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
  const saved = opts.state as { rng?: unknown; pos?: unknown } | undefined;
  if (saved !== undefined && (typeof saved !== 'object' || saved === null || !Number.isSafeInteger(saved.pos) || (saved.pos as number) < 0 || (saved.pos as number) > CHUNK_WORDS)) {
    throw new TayguardError('CHECKPOINT_CORRUPT', 'the saved noise state is not valid; restore an older checkpoint');
  }
  return new SeededPolarSource(String(opts.seed), saved as { rng: seedrandom.State.Arc4 | null; pos: number } | undefined);
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
