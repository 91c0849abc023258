/**
 * Poisson sampling for DP-SGD: every candidate record joins a step's batch independently with probability q.
 * This (and not shuffling into fixed-size batches) is the sampling the accountants analyse — the
 * Poisson-subsampled Gaussian mechanism (Mironov et al. 2019; Gopi et al. 2021) — so the batch size is random.
 *
 * Two modes:
 *  - Fixed dataset (`fixedDatasetBatches`): n records, T steps, each record flips a q-coin at every step.
 *    Each record is exposed to all T steps: charge T steps of (q, σ).
 *  - Streaming (`StreamingPoissonSampler`): records arrive from Kafka and are admitted into a pool where each
 *    stays for EXACTLY W steps (its window), flipping an independent q-coin at each of them, then leaves.
 *
 * Accounting in streaming mode. Under add/remove-one-record adjacency, a record can influence only the W
 * steps during which it sits in the pool: before admission it does not exist for the mechanism, after
 * eviction no step reads it (later steps depend on it only through the already-released model, which is
 * adaptive composition's post-processing). Within its window, each step is one q-subsampled Gaussian
 * mechanism applied to a pool that contains it. So each record's privacy loss is the composition of the W
 * (q_t, σ_t) steps of ITS window, and a bound that holds for every record is the worst composition over all
 * windows of W consecutive steps — which is what PrivacyBudget charges when given `window: W`
 * (privacy/budget.ts). With constant (q, σ) that is exactly "W steps of the q-subsampled Gaussian", however
 * long the stream runs. Two conditions make this valid and are the caller's job: (1) a redelivered Kafka
 * record must be recognised (dedup) or it is a second record, i.e. exposure 2W for that content; (2) the
 * admission decision must not depend on other records' contents in a way that is not itself private
 * (see docs/privacy.md).
 *
 * Randomness. The coins decide who is in the batch; if an observer could predict them, the "amplification by
 * sampling" the accountant credits would be void. They therefore come from node:crypto by default; a seeded
 * (seedrandom ARC4) source exists for reproducible tests and benchmarks only and reports kind 'seeded'.
 */
import { randomFillSync } from 'node:crypto';
import seedrandom from 'seedrandom';
import { TayguardError } from '../src/errors';

export type UniformKind = 'crypto' | 'seeded';

export interface UniformSource {
  readonly kind: UniformKind;
  /** A uniform double in [0, 1) with 53 bits of resolution. */
  next(): number;
  /** Opaque state of a seeded source (for checkpoints); undefined for crypto (it has no reproducible state). */
  state?(): unknown;
}

const WORDS = 4096;
const TWO_26 = 67108864;
const TWO_53 = 9007199254740992;

class CryptoUniform implements UniformSource {
  readonly kind = 'crypto' as const;
  private readonly words = new Uint32Array(WORDS);
  private pos = WORDS;

  next(): number {
    if (this.pos + 2 > WORDS) {
      randomFillSync(this.words);
      this.pos = 0;
    }
    const hi = this.words[this.pos++] >>> 5; // 27 bits
    const lo = this.words[this.pos++] >>> 6; // 26 bits
    return (hi * TWO_26 + lo) / TWO_53;
  }
}

class SeededUniform implements UniformSource {
  readonly kind = 'seeded' as const;
  private readonly rng: seedrandom.StatefulPRNG<seedrandom.State.Arc4>;

  constructor(seed: string, saved?: unknown) {
    this.rng = saved === undefined
      ? seedrandom(seed, { state: true })
      : seedrandom('', { state: saved as seedrandom.State.Arc4 });
  }

  next(): number {
    return this.rng.double();
  }

  state(): unknown {
    return this.rng.state();
  }
}

export interface UniformOptions {
  /** Explicit seed → reproducible, NOT secure. Omit for node:crypto. */
  seed?: string | number;
  /** Saved state of a seeded source (from `state()`), to resume the same stream after a restart. */
  state?: unknown;
}

export function createUniformSource(opts: UniformOptions = {}): UniformSource {
  if (opts.seed === undefined && opts.state === undefined) return new CryptoUniform();
  if (opts.seed !== undefined && typeof opts.seed !== 'string' && !Number.isFinite(opts.seed)) {
    throw new TayguardError('ARGUMENT_INVALID', `seed must be a string or a finite number, got ${String(opts.seed)}`);
  }
  return new SeededUniform(String(opts.seed ?? ''), opts.state);
}

function checkRate(q: number): void {
  if (typeof q !== 'number' || !Number.isFinite(q) || q <= 0 || q > 1) {
    throw new TayguardError('ARGUMENT_INVALID', `sampleRate must be in (0, 1] (expected batch / pool size), got ${String(q)}`);
  }
}

function checkPositiveInt(name: string, v: number): void {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) {
    throw new TayguardError('ARGUMENT_INVALID', `${name} must be a positive integer, got ${String(v)}`);
  }
}

/**
 * Fixed-dataset Poisson sampling: T batches of indices into [0, n), each index included independently with
 * probability q at every step. Batches can be empty; take (and account) the step anyway.
 */
export function* fixedDatasetBatches(n: number, q: number, steps: number, rng: UniformSource = createUniformSource()): Generator<Int32Array> {
  checkPositiveInt('n', n);
  checkRate(q);
  checkPositiveInt('steps', steps);
  const buf = new Int32Array(n);
  for (let t = 0; t < steps; t++) {
    let k = 0;
    for (let i = 0; i < n; i++) if (rng.next() < q) buf[k++] = i;
    yield buf.slice(0, k);
  }
}

export interface StreamingSamplerOptions {
  /** Inclusion probability q of each pooled record at each step. */
  readonly sampleRate: number;
  /** W: number of steps each admitted record stays in the pool. */
  readonly window: number;
  /** Coin source; node:crypto when omitted. */
  readonly rng?: UniformSource;
}

export interface StreamingBatch<T> {
  /** The records that joined this step (each with probability q). */
  readonly records: T[];
  /** 0-based index of this step. */
  readonly step: number;
  /** Pool size at the time of sampling (the expected batch is q × this). */
  readonly poolSize: number;
}

interface PoolEntry<T> {
  record: T;
  /** Steps this record will still take part in (W at admission, leaves at 0). */
  remaining: number;
}

export interface StreamingSamplerState<T> {
  readonly version: 1;
  readonly sampleRate: number;
  readonly window: number;
  readonly step: number;
  readonly pool: { record: T; remaining: number }[];
  /** Only for a seeded coin source; a crypto source has no state to save. */
  readonly rngState?: unknown;
}

/** Streaming Poisson sampler with a bounded exposure window — see the file comment for the accounting. */
export class StreamingPoissonSampler<T> {
  readonly sampleRate: number;
  readonly window: number;
  private readonly rng: UniformSource;
  private pool: PoolEntry<T>[] = [];
  private stepIndex = 0;

  constructor(opts: StreamingSamplerOptions) {
    checkRate(opts.sampleRate);
    checkPositiveInt('window', opts.window);
    this.sampleRate = opts.sampleRate;
    this.window = opts.window;
    this.rng = opts.rng ?? createUniformSource();
  }

  /** Steps taken so far. */
  get steps(): number {
    return this.stepIndex;
  }

  get poolSize(): number {
    return this.pool.length;
  }

  /**
   * q × current pool size. Informational: the pool size moves by one when a record is added or removed, so a
   * strict add/remove analysis wants a data-independent divisor for privateGradients — configure a constant
   * q × (nominal pool size) and pass that instead (the divisor only rescales the learning rate).
   */
  get expectedBatchSize(): number {
    return this.sampleRate * this.pool.length;
  }

  /** Add a record; it is a candidate for the next W steps. */
  admit(record: T): void {
    this.pool.push({ record, remaining: this.window });
  }

  /** Sample one step's batch, then age the pool: records that have had their W steps leave it. */
  nextBatch(): StreamingBatch<T> {
    const records: T[] = [];
    const poolSize = this.pool.length;
    const kept: PoolEntry<T>[] = [];
    for (const entry of this.pool) {
      if (this.rng.next() < this.sampleRate) records.push(entry.record);
      entry.remaining -= 1;
      if (entry.remaining > 0) kept.push(entry);
    }
    this.pool = kept;
    return { records, step: this.stepIndex++, poolSize };
  }

  /**
   * Replace every pooled record matching `drop` by `empty` (its place, and so every other record's coins,
   * stays). Returns how many were replaced.
   */
  empty(drop: (record: T) => boolean, empty: T = null as T): number {
    let n = 0;
    for (const entry of this.pool) {
      if (drop(entry.record)) {
        entry.record = empty;
        n += 1;
      }
    }
    return n;
  }

  /** Pooled records (oldest first) with the number of steps each has left. */
  entries(): readonly { record: T; remaining: number }[] {
    return this.pool.map((e) => ({ ...e }));
  }

  toJSON(): StreamingSamplerState<T> {
    const state: StreamingSamplerState<T> = {
      version: 1,
      sampleRate: this.sampleRate,
      window: this.window,
      step: this.stepIndex,
      pool: this.pool.map((e) => ({ record: e.record, remaining: e.remaining })),
    };
    return this.rng.state ? { ...state, rngState: this.rng.state() } : state;
  }

  /**
   * Restore from toJSON(). The coin source is the crypto one unless `rng` is given; a seeded sampler resumes
   * its stream when restored with `createUniformSource({ state: saved.rngState })`. `sampleRate` replaces the
   * saved rate: the pool must sample at exactly the rate the ledger charges from now on, so a caller whose
   * configured q changed passes it here (the ledger records each step's own q, so a window that straddles the
   * change is charged for what each of its steps really did).
   */
  static fromJSON<T>(value: unknown, rng?: UniformSource, opts: { sampleRate?: number } = {}): StreamingPoissonSampler<T> {
    const corrupt = (why: string): TayguardError =>
      new TayguardError('CHECKPOINT_CORRUPT', `sampler state is not valid (${why}); restore an older checkpoint`);
    if (typeof value !== 'object' || value === null) throw corrupt('not an object');
    const s = value as Partial<StreamingSamplerState<T>>;
    if (s.version !== 1) throw corrupt(`unsupported version ${String(s.version)}`);
    let sampler: StreamingPoissonSampler<T>;
    try {
      sampler = new StreamingPoissonSampler<T>({ sampleRate: opts.sampleRate ?? (s.sampleRate as number), window: s.window as number, rng });
    } catch (err) {
      throw corrupt((err as Error).message);
    }
    if (!Number.isSafeInteger(s.step) || (s.step as number) < 0) throw corrupt(`step is ${String(s.step)}`);
    if (!Array.isArray(s.pool)) throw corrupt('pool is not an array');
    for (const e of s.pool) {
      // remaining > W would let a record outlive its window and break the exposure bound
      if (!Number.isSafeInteger(e?.remaining) || e.remaining < 1 || e.remaining > sampler.window) {
        throw corrupt(`pool entry has remaining=${String(e?.remaining)}, expected 1..${sampler.window}`);
      }
    }
    sampler.pool = s.pool.map((e) => ({ record: e.record, remaining: e.remaining }));
    sampler.stepIndex = s.step as number;
    return sampler;
  }
}
