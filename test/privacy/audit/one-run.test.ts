import seedrandom from 'seedrandom';
import { hasCode } from '../../../core/errors';
import { defaultCandidates, drawCanaryMembership, epsilonLowerBound, oneRunAudit, oneRunPValue } from '../../../privacy/audit';

describe('one-run p-value (Steinke et al. 2023, Appendix D)', () => {
  it('is the binomial upper tail for δ = 0', () => {
    // ε = 0: p = ½; all 10 correct → 2^-10; ≥ 9 of 10 → 11 / 1024.
    expect(oneRunPValue({ m: 10, r: 10, correct: 10 }, 0, 0)).toBeCloseTo(1 / 1024, 15);
    expect(oneRunPValue({ m: 10, r: 10, correct: 9 }, 0, 0)).toBeCloseTo(11 / 1024, 15);
    // ε = ln 3: p = ¾; all 4 correct → (3/4)^4.
    expect(oneRunPValue({ m: 4, r: 4, correct: 4 }, Math.log(3), 0)).toBeCloseTo(81 / 256, 14);
    // P[Binomial(100, ½) ≥ 60] (scipy.stats.binom.sf(59, 100, 0.5)).
    expect(oneRunPValue({ m: 100, r: 100, correct: 60 }, 0, 0)).toBeCloseTo(0.028443966820490392, 12);
    expect(oneRunPValue({ m: 10, r: 10, correct: 0 }, 0, 0)).toBe(1);
  });

  it('adds the 2mδ·α term for δ > 0', () => {
    const pure = oneRunPValue({ m: 1000, r: 100, correct: 70 }, 0.5, 0);
    const approx = oneRunPValue({ m: 1000, r: 100, correct: 70 }, 0.5, 1e-3);
    expect(approx).toBeGreaterThan(pure);
    // α ≤ 1, so the term is at most 2mδ.
    expect(approx - pure).toBeLessThanOrEqual(2 * 1000 * 1e-3 + 1e-12);
  });
});

describe('one-run ε lower bound', () => {
  it('grows with r when every guess is correct (≈3.49 at r = 100, the paper\'s figure)', () => {
    let last = 0;
    for (const r of [5, 10, 20, 50, 100, 200, 500, 1000]) {
      const eps = epsilonLowerBound({ m: 1000, r, correct: r }, { beta: 0.05 });
      expect(eps).toBeGreaterThan(last);
      last = eps;
    }
    expect(epsilonLowerBound({ m: 1000, r: 100, correct: 100 })).toBeCloseTo(3.493, 2);
    // r = 4 all correct: (½)^4 = 0.0625 > 0.05 → nothing is rejected.
    expect(epsilonLowerBound({ m: 1000, r: 4, correct: 4 })).toBe(0);
  });

  it('is 0 when about half the guesses are correct', () => {
    for (const r of [10, 100, 1000]) {
      expect(epsilonLowerBound({ m: 1000, r, correct: Math.round(r / 2) })).toBe(0);
      expect(epsilonLowerBound({ m: 1000, r, correct: Math.round(r / 2) + 1 }, { delta: 1e-5 })).toBe(0);
    }
  });

  it('is monotone in the number of correct guesses', () => {
    let last = -1;
    for (let v = 0; v <= 200; v++) {
      const eps = epsilonLowerBound({ m: 500, r: 200, correct: v }, { delta: 1e-5 });
      expect(eps).toBeGreaterThanOrEqual(last);
      last = eps;
    }
    expect(last).toBeGreaterThan(4);
  });

  it('δ > 0 and a stricter β only lower it; each returned ε is rejected', () => {
    const c = { m: 1000, r: 300, correct: 240 };
    const pure = epsilonLowerBound(c);
    expect(epsilonLowerBound(c, { delta: 1e-5 })).toBeLessThanOrEqual(pure);
    expect(epsilonLowerBound(c, { beta: 0.01 })).toBeLessThan(pure);
    expect(oneRunPValue(c, pure, 0)).toBeLessThan(0.05);
    expect(oneRunPValue(c, pure + 1e-4, 0)).toBeGreaterThanOrEqual(0.05);
  });

  it('rejects impossible counts with ARGUMENT_INVALID', () => {
    for (const bad of [
      { m: 10, r: 11, correct: 1 },
      { m: 10, r: 5, correct: 6 },
      { m: 10, r: 5.5, correct: 1 },
    ]) {
      let err: unknown;
      try {
        epsilonLowerBound(bad);
      } catch (e) {
        err = e;
      }
      expect(hasCode(err, 'ARGUMENT_INVALID')).toBe(true);
    }
    expect(() => epsilonLowerBound({ m: 10, r: 5, correct: 5 }, { beta: 0 })).toThrow();
  });
});

describe('canary coin flips', () => {
  it('crypto by default, about half included; seeded only on request and reproducible', () => {
    const a = drawCanaryMembership(10_000);
    expect(a.kind).toBe('crypto');
    const ones = a.included.reduce((s, b) => s + b, 0);
    expect(Math.abs(ones - 5000)).toBeLessThan(300); // > 6 standard deviations
    const s1 = drawCanaryMembership(100, { seed: 'x' });
    const s2 = drawCanaryMembership(100, { seed: 'x' });
    expect(s1.kind).toBe('seeded');
    expect(Array.from(s1.included)).toEqual(Array.from(s2.included));
  });
});

describe('oneRunAudit', () => {
  it('counts correct guesses on a hand-made ranking', () => {
    // scores descending: canaries 0..5; included: 1 1 0 1 0 0.
    const scores = [6, 5, 4, 3, 2, 1];
    const included = Uint8Array.from([1, 1, 0, 1, 0, 0]);
    const res = oneRunAudit(scores, included, { candidates: [{ kPositive: 2, kNegative: 2 }, { kPositive: 3, kNegative: 1 }] });
    expect(res.perCandidate.map((c) => c.correct)).toEqual([4, 3]);
    expect(res.selection).toBe('bonferroni');
    expect(res.betaPerCandidate).toBeCloseTo(0.025, 15);
    expect(res.included).toBe(3);
  });

  it('a fixed k is tested at level β; a grid pays the Bonferroni price', () => {
    const m = 400;
    const included = drawCanaryMembership(m, { seed: 'grid' }).included;
    const scores = Array.from(included, (b, i) => b * 10 + i / m); // perfectly separating
    const fixed = oneRunAudit(scores, included, { k: 100, seed: 1 });
    expect(fixed.selection).toBe('fixed');
    expect(fixed.best.correct).toBe(200);
    expect(fixed.epsilonLowerBound).toBeCloseTo(epsilonLowerBound({ m, r: 200, correct: 200 }), 6);
    const grid = oneRunAudit(scores, included, { candidates: [{ kPositive: 100, kNegative: 100 }, { kPositive: 50, kNegative: 50 }], seed: 1 });
    expect(grid.epsilonLowerBound).toBeLessThan(fixed.epsilonLowerBound);
    expect(grid.epsilonLowerBound).toBeCloseTo(epsilonLowerBound({ m, r: 200, correct: 200 }, { beta: 0.025 }), 6);
    expect(defaultCandidates(m).map((c) => c.kPositive)).toEqual([4, 8, 20, 40, 80, 120, 200]);
  });

  it('breaks score ties at random, never by canary order (included-first lists must not leak)', () => {
    const m = 400;
    const included = new Uint8Array(m).fill(1, 0, m / 2); // all included canaries listed first
    const res = oneRunAudit(new Float64Array(m), included, { k: 100, seed: 'ties' });
    expect(res.best.correct).toBeGreaterThan(70);
    expect(res.best.correct).toBeLessThan(130);
    expect(res.epsilonLowerBound).toBeLessThan(0.5);
  });

  it('Monte Carlo: on ε-DP randomized response the 95% bound exceeds the true ε in ≤ ~5% of trials', () => {
    const trueEps = 1;
    const keep = Math.exp(trueEps) / (1 + Math.exp(trueEps));
    const m = 500;
    const trials = 200;
    const rng = seedrandom('randomized-response');
    let exceedFixed = 0;
    let exceedGrid = 0;
    let maxFixed = 0;
    for (let t = 0; t < trials; t++) {
      const { included } = drawCanaryMembership(m, { seed: `rr-${t}` });
      // The mechanism: for each canary release its bit, flipped with probability 1/(1 + e^ε) — exactly ε-DP
      // per canary. The attacker's score is the released bit (ties broken by the audit).
      const released = Array.from(included, (b) => (rng() < keep ? b : 1 - b));
      const fixed = oneRunAudit(released, included, { k: m / 2, seed: `tie-${t}` }).epsilonLowerBound;
      const grid = oneRunAudit(released, included, { delta: 1e-5, seed: `tie-${t}` }).epsilonLowerBound;
      maxFixed = Math.max(maxFixed, fixed);
      if (fixed > trueEps) exceedFixed++;
      if (grid > trueEps) exceedGrid++;
    }
    // Expected ≤ 5% (10 of 200); allow binomial sampling slack: P[Binomial(200, 0.05) > 18] ≈ 0.4%.
    expect(exceedFixed).toBeLessThanOrEqual(18);
    expect(exceedGrid).toBeLessThanOrEqual(18);
    // …but the bound is not vacuous: with every canary guessed it gets close to the true ε.
    expect(maxFixed).toBeGreaterThan(0.6);
  });
});
