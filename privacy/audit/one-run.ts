/**
 * Privacy auditing with one training run (Steinke, Nasr & Jagielski, NeurIPS 2023).
 *
 * Protocol
 *   1. m canaries; each is included in the training data independently with probability ½ by a secret coin
 *      flip S_i (`drawCanaryMembership`: node:crypto by default, a seeded generator only on request).
 *   2. Train once. Score every canary from the trained model alone ("higher = more likely included", e.g.
 *      −loss); the scores must not depend on S except through the model.
 *   3. Guess "in" for the k₊ highest scores, "out" for the k₋ lowest, abstain on the rest: r = k₊ + k₋
 *      guesses, v of them correct. Ties in score are broken by a fresh random permutation, never by canary
 *      index (a caller that lists included canaries first would otherwise leak S into the guesses).
 *   4. Turn v into a lower bound on ε at confidence 1 − β (`epsilonLowerBound`).
 *
 * The bound (their main theorem for pure ε-DP and its (ε, δ) extension, computed as in their Appendix D): if the
 * training algorithm is (ε, δ)-DP with respect to adding/removing one canary, then
 *   P[W ≥ v] ≤ P[Binomial(r, p) ≥ v] + 2mδ · max_{i=1..v} P[v − i ≤ Binomial(r, p) < v] / i,  p = e^ε/(1 + e^ε)
 * (the second term vanishes for δ = 0). The audit reports the largest ε (found by bisection) whose p-value
 * is below β: with probability ≥ 1 − β over the coin flips and training, a correctly implemented
 * (ε_true, δ)-DP algorithm yields a bound ≤ ε_true. A bound above the claimed ε is therefore statistical
 * evidence (at level β) that the claim is false — an implementation or accounting bug.
 *
 * Choosing k. The theorem is for guesses fixed before looking at S. Picking the k that gives the best bound
 * *after* seeing the result would inflate the confidence, so `oneRunAudit` either uses one k given in advance
 * (selection 'fixed', test at level β) or takes the best of a grid of K candidates fixed in advance with a
 * Bonferroni correction (selection 'bonferroni', each candidate tested at level β/K; the maximum is then valid
 * at level β by the union bound). The paper's own experiments report the best k without such a correction;
 * our numbers are slightly more conservative than theirs for the same data.
 *
 * Caveats: the bound is a lower bound — far below the accountant's ε is the expected outcome for a correct
 * DP-SGD audited through the final model only (the paper's black-box setting); it can only catch violations
 * large enough to show through the chosen canaries and score. The ε is w.r.t. add/remove of one canary, which
 * is the neighbouring relation of DP-SGD with Poisson sampling.
 */
import { randomBytes } from 'node:crypto';
import seedrandom from 'seedrandom';
import { TayguardError } from '../../core/errors';
import { logAdd, logBinomialInt } from '../accountants/special';

const invalid = (message: string): TayguardError => new TayguardError('ARGUMENT_INVALID', message);

export type CoinKind = 'crypto' | 'seeded';

export interface CanaryMembership {
  /** included[i] = 1 when canary i goes into the training data. */
  readonly included: Uint8Array;
  readonly kind: CoinKind;
}

/** Uniform random bits / permutations from node:crypto, or from seedrandom when a seed is given. */
interface Rng {
  readonly kind: CoinKind;
  /** Uniform in [0, 1). */
  next(): number;
}

function makeRng(seed: string | number | undefined): Rng {
  if (seed === undefined) {
    const buf = new Uint32Array(1024);
    let pos = buf.length;
    return {
      kind: 'crypto',
      next() {
        if (pos >= buf.length - 1) {
          const bytes = randomBytes(buf.byteLength);
          buf.set(new Uint32Array(bytes.buffer, bytes.byteOffset, buf.length));
          pos = 0;
        }
        // 53-bit uniform from two words.
        const hi = buf[pos++] >>> 5;
        const lo = buf[pos++] >>> 6;
        return (hi * 67108864 + lo) / 9007199254740992;
      },
    };
  }
  if (typeof seed !== 'string' && !Number.isFinite(seed)) {
    throw invalid(`seed must be a string or a finite number, got ${String(seed)}`);
  }
  const r = seedrandom(String(seed));
  return { kind: 'seeded', next: () => r.double() };
}

/**
 * The secret coin flips: each of m canaries included with probability ½. Crypto-random by default; pass
 * `seed` only for reproducible tests and experiments (the result says kind 'seeded').
 */
export function drawCanaryMembership(m: number, opts: { seed?: string | number } = {}): CanaryMembership {
  checkCount('m (number of canaries)', m, 1);
  const rng = makeRng(opts.seed);
  const included = new Uint8Array(m);
  if (rng.kind === 'crypto') {
    const bytes = randomBytes(Math.ceil(m / 8));
    for (let i = 0; i < m; i++) included[i] = (bytes[i >> 3] >> (i & 7)) & 1;
  } else {
    for (let i = 0; i < m; i++) included[i] = rng.next() < 0.5 ? 1 : 0;
  }
  return { included, kind: rng.kind };
}

function checkCount(name: string, n: number, min: number): void {
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < min) {
    throw invalid(`${name} must be an integer ≥ ${min}, got ${String(n)}`);
  }
}

function checkBeta(beta: number): void {
  if (typeof beta !== 'number' || !(beta > 0 && beta < 1)) {
    throw invalid(`beta (1 − confidence) must be in (0, 1), e.g. 0.05 for 95%; got ${String(beta)}`);
  }
}

function checkAuditDelta(delta: number): void {
  if (typeof delta !== 'number' || !(delta >= 0 && delta < 1)) {
    throw invalid(`delta must be in [0, 1), got ${String(delta)}`);
  }
}

export interface OneRunCounts {
  /** Canaries randomised (included with probability ½ each). */
  readonly m: number;
  /** Guesses made (k₊ + k₋ ≤ m). */
  readonly r: number;
  /** Correct guesses among them. */
  readonly correct: number;
}

function checkCounts({ m, r, correct }: OneRunCounts): void {
  checkCount('m', m, 1);
  checkCount('r (guesses)', r, 0);
  checkCount('correct', correct, 0);
  if (r > m) throw invalid(`cannot make r = ${r} guesses about m = ${m} canaries`);
  if (correct > r) throw invalid(`correct = ${correct} exceeds the number of guesses r = ${r}`);
}

/**
 * p-value of observing ≥ `correct` correct guesses out of r if the algorithm were (ε, δ)-DP (module comment).
 * Computed in log space, exact up to floating-point rounding for any r.
 */
export function oneRunPValue(counts: OneRunCounts, epsilon: number, delta: number): number {
  checkCounts(counts);
  checkAuditDelta(delta);
  if (!(epsilon >= 0)) throw invalid(`epsilon must be ≥ 0, got ${String(epsilon)}`);
  const { m, r, correct: v } = counts;
  if (v === 0) return 1;
  if (epsilon === Infinity) return v <= r ? 1 : 0;
  // p = e^ε/(1+e^ε): log p = −log1p(e^−ε), log(1−p) = −ε − log1p(e^−ε).
  const l1 = Math.log1p(Math.exp(-epsilon));
  const logP = -l1;
  const logQ = -epsilon - l1;
  const logPmf = (j: number): number => logBinomialInt(r, j) + j * logP + (r - j) * logQ;
  // Upper tail P[B ≥ v], summed upwards with the pmf recurrence.
  let lp = logPmf(v);
  let logTail = lp;
  for (let j = v; j < r; j++) {
    lp += Math.log((r - j) / (j + 1)) + epsilon; // log(p/(1−p)) = ε
    logTail = logAdd(logTail, lp);
  }
  let p = Math.exp(logTail);
  if (delta > 0) {
    // α = max_i P[v − i ≤ B < v] / i, summing the pmf downwards from v − 1.
    let alpha = 0;
    let logSum = -Infinity;
    let lq = logPmf(v - 1);
    for (let i = 1; i <= v; i++) {
      const j = v - i;
      if (i > 1) lq -= Math.log((r - j) / (j + 1)) + epsilon; // pmf(j) from pmf(j + 1)
      logSum = logAdd(logSum, lq);
      alpha = Math.max(alpha, Math.exp(logSum) / i);
    }
    p += alpha * delta * 2 * m;
  }
  return Math.min(1, p);
}

/**
 * The largest ε that `correct` out of r guesses rejects at level β: the one-run audit's ε lower bound.
 * 0 when nothing is rejected (e.g. correct ≈ r/2). Bisection keeps p(ε_low) < β, so the value returned is
 * always an ε the data reject (and with it every smaller ε).
 */
export function epsilonLowerBound(counts: OneRunCounts, opts: { delta?: number; beta?: number; tolerance?: number } = {}): number {
  const delta = opts.delta ?? 0;
  const beta = opts.beta ?? 0.05;
  const tolerance = opts.tolerance ?? 1e-6;
  checkCounts(counts);
  checkBeta(beta);
  checkAuditDelta(delta);
  const reject = (eps: number): boolean => oneRunPValue(counts, eps, delta) < beta;
  if (!reject(0)) return 0;
  let lo = 0;
  let hi = 1;
  while (reject(hi)) {
    lo = hi;
    hi *= 2;
    if (hi > 1e4) return lo; // cannot happen for r ≥ 1 (p-value → 1 as ε → ∞); guards a float corner
  }
  while (hi - lo > tolerance) {
    const mid = (lo + hi) / 2;
    if (reject(mid)) lo = mid;
    else hi = mid;
  }
  return lo;
}

export interface GuessCandidate {
  /** Guess "in" for this many highest scores. */
  readonly kPositive: number;
  /** Guess "out" for this many lowest scores. */
  readonly kNegative: number;
}

export interface CandidateResult extends GuessCandidate {
  readonly guesses: number;
  readonly correct: number;
  /** Bound of this candidate alone, at the per-candidate level (β, or β/K under Bonferroni). */
  readonly epsilonLowerBound: number;
}

export interface OneRunAuditOptions {
  /** δ of the (ε, δ) claim being tested; default 0 (pure ε). Use the training δ for DP-SGD. */
  delta?: number;
  /** 1 − confidence; default 0.05. */
  beta?: number;
  /** One k₊ = k₋ fixed in advance (selection 'fixed'). */
  k?: number;
  /** A grid fixed in advance (selection 'bonferroni' when it has more than one entry). */
  candidates?: readonly GuessCandidate[];
  /** Seed for the tie-breaking permutation (tests only); crypto by default. */
  seed?: string | number;
}

export interface OneRunAuditResult {
  /** Best bound over the candidates, valid at confidence 1 − β including the choice of k. */
  readonly epsilonLowerBound: number;
  readonly best: CandidateResult;
  readonly perCandidate: readonly CandidateResult[];
  readonly selection: 'fixed' | 'bonferroni';
  readonly beta: number;
  /** Level each candidate was tested at: β / number of candidates. */
  readonly betaPerCandidate: number;
  readonly delta: number;
  readonly m: number;
  readonly included: number;
}

/** Default grid: k₊ = k₋ = k for k ≈ m·{1, 2, 5, 10, 20, 30, 50}% (deduplicated, 1 ≤ k ≤ m/2). */
export function defaultCandidates(m: number): GuessCandidate[] {
  checkCount('m', m, 1);
  const ks = new Set<number>();
  for (const f of [0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5]) {
    const k = Math.min(Math.floor(m / 2), Math.max(1, Math.round(m * f)));
    if (k >= 1) ks.add(k);
  }
  return [...ks].sort((a, b) => a - b).map((k) => ({ kPositive: k, kNegative: k }));
}

/**
 * Rank canaries by score (ties broken by a random permutation) and count correct guesses for each candidate.
 * `order[0]` is the highest score.
 */
function rankCanaries(scores: ArrayLike<number>, rng: Rng): Int32Array {
  const m = scores.length;
  const tie = new Float64Array(m);
  for (let i = 0; i < m; i++) tie[i] = rng.next();
  const idx = Array.from({ length: m }, (_, i) => i);
  idx.sort((a, b) => scores[b] - scores[a] || tie[a] - tie[b]);
  return Int32Array.from(idx);
}

export function oneRunAudit(
  scores: ArrayLike<number>,
  membership: CanaryMembership | Uint8Array | readonly boolean[],
  opts: OneRunAuditOptions = {},
): OneRunAuditResult {
  const included = 'included' in membership ? membership.included : membership;
  const m = scores.length;
  if (m === 0) throw invalid('no canary scores; the audit needs m ≥ 1 canaries');
  if (included.length !== m) {
    throw invalid(`got ${m} scores but ${included.length} membership bits; pass one of each per canary, in the same order`);
  }
  for (let i = 0; i < m; i++) {
    if (Number.isNaN(scores[i])) throw invalid(`canary score ${i} is NaN; check the scoring (losses/probabilities)`);
  }
  const beta = opts.beta ?? 0.05;
  const delta = opts.delta ?? 0;
  checkBeta(beta);
  checkAuditDelta(delta);
  if (opts.k !== undefined && opts.candidates !== undefined) {
    throw invalid('pass either k or candidates, not both');
  }
  let candidates: readonly GuessCandidate[];
  if (opts.k !== undefined) {
    checkCount('k', opts.k, 1);
    candidates = [{ kPositive: opts.k, kNegative: opts.k }];
  } else {
    candidates = opts.candidates ?? defaultCandidates(m);
  }
  if (candidates.length === 0) throw invalid('candidates is empty; pass at least one {kPositive, kNegative}');
  for (const c of candidates) {
    checkCount('kPositive', c.kPositive, 0);
    checkCount('kNegative', c.kNegative, 0);
    if (c.kPositive + c.kNegative > m) {
      throw invalid(`kPositive + kNegative = ${c.kPositive + c.kNegative} exceeds the ${m} canaries`);
    }
  }
  const order = rankCanaries(scores, makeRng(opts.seed));
  const isIn = (i: number): boolean => {
    const b = included[i] as number | boolean;
    return b === true || b === 1;
  };
  // Prefix counts of included canaries along the ranking: top-k correct = inAbove[k], bottom-k correct = k − (inTotal − inAbove[m − k]).
  const inAbove = new Int32Array(m + 1);
  for (let j = 0; j < m; j++) inAbove[j + 1] = inAbove[j] + (isIn(order[j]) ? 1 : 0);
  const inTotal = inAbove[m];
  const betaPerCandidate = beta / candidates.length;
  const perCandidate = candidates.map((c): CandidateResult => {
    const correct = inAbove[c.kPositive] + (c.kNegative - (inTotal - inAbove[m - c.kNegative]));
    const guesses = c.kPositive + c.kNegative;
    return {
      kPositive: c.kPositive,
      kNegative: c.kNegative,
      guesses,
      correct,
      epsilonLowerBound: epsilonLowerBound({ m, r: guesses, correct }, { delta, beta: betaPerCandidate }),
    };
  });
  let best = perCandidate[0];
  for (const c of perCandidate) if (c.epsilonLowerBound > best.epsilonLowerBound) best = c;
  return {
    epsilonLowerBound: best.epsilonLowerBound,
    best,
    perCandidate,
    selection: candidates.length === 1 ? 'fixed' : 'bonferroni',
    beta,
    betaPerCandidate,
    delta,
    m,
    included: inTotal,
  };
}
