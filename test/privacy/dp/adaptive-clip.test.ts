import { AdaptiveClipper, adjustedNoiseMultiplier } from '../../../privacy/adaptive-clip';
import { createGaussianSource } from '../../../privacy/noise';
import seedrandom from 'seedrandom';

describe('adjustedNoiseMultiplier (Andrew et al. 2021)', () => {
  it('solves σ⁻² = σ_Δ⁻² + (2σ_b)⁻²', () => {
    const sigma = 1.1;
    const sb = 25;
    const sd = adjustedNoiseMultiplier(sigma, sb);
    expect(sd).toBeGreaterThan(sigma);
    expect(sd ** -2 + (2 * sb) ** -2).toBeCloseTo(sigma ** -2, 12);
    // paper's default σ_b = batch/20 costs little extra gradient noise at batch 500
    expect(adjustedNoiseMultiplier(1.0, 500 / 20) / 1.0).toBeLessThan(1.001);
  });

  it('refuses σ_b too small to leave any budget for the gradient', () => {
    expect(() => adjustedNoiseMultiplier(2, 1)).toThrow(expect.objectContaining({ code: 'ARGUMENT_INVALID' }));
    expect(() => adjustedNoiseMultiplier(2, 1.0001)).not.toThrow();
  });
});

describe('AdaptiveClipper', () => {
  const noise = createGaussianSource({ seed: 'adaptive' });

  it('applies the geometric update C ← C·exp(−η(b̄ − γ)) (noise-free limit)', () => {
    const c = new AdaptiveClipper({ initialClipNorm: 1, targetQuantile: 0.5, learningRate: 0.2, countNoiseStd: 1e-9, noiseMultiplier: 1e-10, expectedBatchSize: 4, noise });
    // 3 of 4 norms ≤ 1 → b̄ = 0.75 → C shrinks by exp(−0.2·0.25)
    const u = c.update([0.1, 0.5, 1.0, 3]);
    expect(u.previous).toBe(1);
    expect(u.noisyUnclippedFraction).toBeCloseTo(0.75, 6);
    expect(c.clipNorm).toBeCloseTo(Math.exp(-0.05), 6);
    // all clipped → grows by exp(0.2·0.5)
    const v = c.update([5, 5, 5, 5]);
    expect(v.clipNorm).toBeCloseTo(Math.exp(-0.05) * Math.exp(0.1), 6);
  });

  it('tracks the target quantile of synthetic norms with a private count', () => {
    const rng = seedrandom('norms');
    const B = 500;
    for (const gamma of [0.5, 0.9]) {
      const c = new AdaptiveClipper({ initialClipNorm: 0.01, targetQuantile: gamma, learningRate: 0.2, countNoiseStd: B / 20, noiseMultiplier: 1.0, expectedBatchSize: B, noise });
      const trace: number[] = [];
      for (let t = 0; t < 400; t++) {
        // log-normal norms, median e^0 = 1
        const norms = Array.from({ length: B }, () => Math.exp(0.5 * gaussian(rng)));
        c.update(norms);
        if (t >= 200) trace.push(c.clipNorm);
      }
      const mean = trace.reduce((a, b) => a + b, 0) / trace.length;
      const truth = Math.exp(0.5 * (gamma === 0.5 ? 0 : 1.2815515655));
      expect(Math.abs(Math.log(mean / truth))).toBeLessThan(0.1);
    }
  });

  it('exposes σ_Δ for the gradient and the accountant σ separately, and restores C', () => {
    const c = new AdaptiveClipper({ initialClipNorm: 0.5, targetQuantile: 0.5, learningRate: 0.2, countNoiseStd: 10, noiseMultiplier: 1.2, expectedBatchSize: 200, noise });
    expect(c.noiseMultiplier).toBe(1.2);
    expect(c.gradientNoiseMultiplier).toBeCloseTo(adjustedNoiseMultiplier(1.2, 10), 12);
    c.update(new Array(200).fill(2));
    const other = new AdaptiveClipper({ initialClipNorm: 0.5, targetQuantile: 0.5, learningRate: 0.2, countNoiseStd: 10, noiseMultiplier: 1.2, expectedBatchSize: 200, noise });
    other.restore(JSON.parse(JSON.stringify(c.toJSON())));
    expect(other.clipNorm).toBe(c.clipNorm);
    expect(() => other.restore({ version: 1, clipNorm: -1 })).toThrow(expect.objectContaining({ code: 'CHECKPOINT_CORRUPT' }));
  });
});

function gaussian(rng: () => number): number {
  const u = 1 - rng();
  const v = rng();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}
