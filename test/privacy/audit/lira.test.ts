import seedrandom from 'seedrandom';
import {
  crossEntropyLosses,
  fitOutDistribution,
  liraOfflineScores,
  logitConfidence,
  lossAttackScores,
  miaMetrics,
  oneSidedScore,
  rocAuc,
} from '../../../privacy/audit';

function gaussian(rng: () => number): number {
  const u = 1 - rng();
  const v = rng();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

describe('scores from probabilities', () => {
  const probs = { values: Float32Array.from([0.9, 0.1, 0.25, 0.75, 1, 0]), n: 3, classes: 2 };

  it('logit confidence φ = log(p_y/(1 − p_y)) and loss −log p_y', () => {
    const phi = logitConfidence(probs, [0, 0, 0]);
    expect(phi[0]).toBeCloseTo(Math.log(9), 6);
    expect(phi[1]).toBeCloseTo(Math.log(1 / 3), 6);
    expect(Number.isFinite(phi[2])).toBe(true); // p_y = 1 stays finite
    const loss = crossEntropyLosses(probs, [0, 1, 0]);
    expect(loss[0]).toBeCloseTo(-Math.log(0.9), 6);
    expect(loss[1]).toBeCloseTo(-Math.log(0.75), 6);
    expect(loss[2]).toBe(0);
    expect(Array.from(lossAttackScores(probs, [0, 1, 0]))).toEqual(Array.from(loss, (l) => -l));
    expect(() => logitConfidence(probs, [0, 2, 0])).toThrow();
  });

  it('one-sided score −log P[Z ≥ φ] rises with φ and stays finite in the far tail', () => {
    expect(oneSidedScore(0, 0, 1)).toBeCloseTo(Math.LN2, 12);
    expect(oneSidedScore(1, 0, 1)).toBeGreaterThan(oneSidedScore(0.5, 0, 1));
    expect(oneSidedScore(-40, 0, 1)).toBeGreaterThanOrEqual(0);
    expect(oneSidedScore(40, 0, 1)).toBeGreaterThan(700); // −log of ~1e-350: underflows in linear space
    expect(Number.isFinite(oneSidedScore(40, 0, 1))).toBe(true);
  });
});

describe('offline LiRA on a synthetic population', () => {
  // Example i has its own difficulty μ_i (OUT models reach φ ~ N(μ_i, 1)); training on it adds +2.
  // A global threshold on φ barely works (μ_i spreads over [−6, 6]); per-example calibration does.
  const n = 2000;
  const refs = 8;
  const rng = seedrandom('lira');
  const mu = Array.from({ length: n }, () => -6 + 12 * rng());
  const member = Array.from({ length: n }, () => rng() < 0.5);
  const reference = Array.from({ length: refs }, () => mu.map((m) => m + gaussian(rng)));
  const target = mu.map((m, i) => m + (member[i] ? 2 : 0) + gaussian(rng));
  const split = (scores: ArrayLike<number>) => {
    const ins: number[] = [];
    const outs: number[] = [];
    for (let i = 0; i < n; i++) (member[i] ? ins : outs).push(scores[i]);
    return [ins, outs] as const;
  };

  it.each([true, false])('separates members from non-members (global variance: %s)', (globalVariance) => {
    const out = fitOutDistribution(reference, { globalVariance });
    expect(out.global).toBe(globalVariance);
    const [ins, outs] = split(liraOfflineScores(target, out));
    const m = miaMetrics(ins, outs);
    const [rawIn, rawOut] = split(target);
    expect(m.auc).toBeGreaterThan(0.85);
    expect(m.auc).toBeGreaterThan(rocAuc(rawIn, rawOut) + 0.15);
    expect(m.tprAt001).toBeGreaterThan(0.05);
  });

  it('is at chance when training changes nothing', () => {
    const out = fitOutDistribution(reference);
    const same = mu.map((m) => m + gaussian(rng));
    const [ins, outs] = split(liraOfflineScores(same, out));
    expect(Math.abs(rocAuc(ins, outs) - 0.5)).toBeLessThan(0.05);
  });

  it('pooled variance recovers the true OUT spread', () => {
    const out = fitOutDistribution(reference, { globalVariance: true });
    expect(out.std[0]).toBeGreaterThan(0.9);
    expect(out.std[0]).toBeLessThan(1.1);
    expect(() => fitOutDistribution([mu], { globalVariance: false })).toThrow();
  });
});
