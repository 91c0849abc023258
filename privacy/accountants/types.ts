/**
 * Shared types and argument checks for the privacy accountants.
 *
 * Both accountants track the same thing: a history of segments, each a run of `steps` applications of the
 * Poisson-subsampled Gaussian mechanism with sampling rate q and noise multiplier sigma (noise std divided by
 * the L2 clipping norm). They differ only in how they turn that history into an (epsilon, delta) guarantee.
 */
import { TayguardError } from '../../core/errors';

export type AccountantKind = 'rdp' | 'prv';

/** One homogeneous run of the mechanism. */
export interface Segment {
  /** Poisson sampling rate q in [0, 1] (expected batch size / dataset size). */
  readonly sampleRate: number;
  /** Noise multiplier sigma > 0. */
  readonly noiseMultiplier: number;
  /** Number of steps, a positive integer. */
  readonly steps: number;
}

export interface EpsilonResult {
  /** Epsilon spent at the requested delta (an upper bound for both accountants). */
  readonly epsilon: number;
  /** RDP order that achieved the bound; null for PRV, and for RDP when nothing was spent. */
  readonly order: number | null;
}

/** JSON-safe state written into durable checkpoints; `version` lets a future format migrate old files. */
export interface AccountantState {
  readonly kind: AccountantKind;
  readonly version: 1;
  readonly history: Segment[];
}

export interface Accountant {
  readonly kind: AccountantKind;
  /** Record `steps` further steps with sampling rate q and noise multiplier sigma. */
  step(sampleRate: number, noiseMultiplier: number, steps?: number): void;
  /** Epsilon spent so far at `delta`. `epsError` is the PRV accuracy knob; RDP ignores it. */
  getEpsilon(delta: number, epsError?: number): EpsilonResult;
  /**
   * Epsilon the accountant *would* report after `steps` more steps with (q, sigma); does not mutate.
   * Used to stop training before a step overshoots the budget.
   */
  epsilonAfter(sampleRate: number, noiseMultiplier: number, delta: number, steps?: number, epsError?: number): EpsilonResult;
  /** The recorded segments (adjacent equal segments merged), oldest first. */
  readonly history: readonly Segment[];
  toJSON(): AccountantState;
}

const invalid = (message: string): TayguardError => new TayguardError('ARGUMENT_INVALID', message);

export function checkSampleRate(q: number): void {
  if (typeof q !== 'number' || !Number.isFinite(q) || q < 0 || q > 1) {
    throw invalid(`sample rate must be a number in [0, 1] (batch size / dataset size), got ${String(q)}`);
  }
}

export function checkNoiseMultiplier(sigma: number): void {
  if (typeof sigma !== 'number' || !Number.isFinite(sigma) || sigma <= 0) {
    throw invalid(`noise multiplier must be a finite number > 0, got ${String(sigma)}`);
  }
}

export function checkSteps(steps: number): void {
  if (typeof steps !== 'number' || !Number.isSafeInteger(steps) || steps < 1) {
    throw invalid(`steps must be a positive integer, got ${String(steps)}`);
  }
}

export function checkDelta(delta: number): void {
  if (typeof delta !== 'number' || !Number.isFinite(delta) || delta <= 0 || delta >= 1) {
    throw invalid(`delta must be in the open interval (0, 1), typically below 1/dataset size; got ${String(delta)}`);
  }
}

export function checkEpsError(epsError: number): void {
  if (typeof epsError !== 'number' || !Number.isFinite(epsError) || epsError <= 0 || epsError >= 1) {
    throw invalid(`epsError must be in (0, 1), e.g. 0.01; got ${String(epsError)}`);
  }
}

export function checkSegment(segment: Segment): void {
  checkSampleRate(segment.sampleRate);
  checkNoiseMultiplier(segment.noiseMultiplier);
  checkSteps(segment.steps);
}

/** Append to a history, merging into the last segment when (q, sigma) are unchanged (as Opacus does). */
export function appendSegment(history: Segment[], segment: Segment): void {
  const last = history[history.length - 1];
  if (last && last.sampleRate === segment.sampleRate && last.noiseMultiplier === segment.noiseMultiplier) {
    history[history.length - 1] = { ...last, steps: last.steps + segment.steps };
  } else {
    history.push({ sampleRate: segment.sampleRate, noiseMultiplier: segment.noiseMultiplier, steps: segment.steps });
  }
}

/**
 * Sum the steps of all segments with equal (q, sigma), wherever they sit in the history. Composition is
 * commutative, so this loses nothing and lets each distinct mechanism be self-composed once.
 */
export function groupSegments(history: readonly Segment[]): Segment[] {
  const groups = new Map<string, Segment>();
  for (const s of history) {
    const key = `${s.sampleRate}|${s.noiseMultiplier}`;
    const g = groups.get(key);
    groups.set(key, g ? { ...g, steps: g.steps + s.steps } : { ...s });
  }
  return [...groups.values()];
}

/** Validate the state read back from a checkpoint; throws CHECKPOINT_CORRUPT with what was wrong. */
export function parseState(value: unknown, kind: AccountantKind): Segment[] {
  const corrupt = (why: string): TayguardError =>
    new TayguardError('CHECKPOINT_CORRUPT', `${kind} accountant state is not valid (${why}); restore an older checkpoint`);
  if (typeof value !== 'object' || value === null) throw corrupt('not an object');
  const v = value as Partial<AccountantState>;
  if (v.kind !== kind) throw corrupt(`kind is ${String(v.kind)}, expected ${kind}`);
  if (v.version !== 1) throw corrupt(`unsupported version ${String(v.version)}`);
  if (!Array.isArray(v.history)) throw corrupt('history is not an array');
  const history: Segment[] = [];
  for (const raw of v.history as unknown[]) {
    const s = raw as Partial<Segment> | null;
    const segment = { sampleRate: s?.sampleRate as number, noiseMultiplier: s?.noiseMultiplier as number, steps: s?.steps as number };
    try {
      checkSegment(segment);
    } catch (err) {
      throw corrupt((err as Error).message);
    }
    appendSegment(history, segment);
  }
  return history;
}

/**
 * The history both accountants keep: (q, σ, steps) segments, merged when equal, validated on the way in.
 * Accountants differ only in how they turn a history into ε.
 */
export abstract class SegmentHistory {
  protected readonly segments: Segment[] = [];

  get history(): readonly Segment[] {
    return this.segments.map((s) => ({ ...s }));
  }

  step(sampleRate: number, noiseMultiplier: number, steps = 1): void {
    const segment = { sampleRate, noiseMultiplier, steps };
    checkSegment(segment);
    appendSegment(this.segments, segment);
  }

  /** The history with `steps` more steps of (q, σ), without changing this one (look-ahead before a step). */
  protected withStep(sampleRate: number, noiseMultiplier: number, steps: number): Segment[] {
    const next = [...this.segments];
    const segment = { sampleRate, noiseMultiplier, steps };
    checkSegment(segment);
    appendSegment(next, segment);
    return next;
  }

  protected state(kind: AccountantKind): AccountantState {
    return { kind, version: 1, history: this.segments.map((s) => ({ ...s })) };
  }
}
