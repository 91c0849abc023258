import { hasCode } from '../../core/errors';
import { initTf, tf } from '../../core/tf';
import { addNoise, createGaussianSource } from '../../privacy/noise';

const N = 1_000_000;
/** P(|Z| > 3) for a standard normal, 2·(1 − Φ(3)). */
const TAIL3 = 0.0026997960632601866;

beforeAll(async () => {
  await initTf();
});

function moments(z: Float32Array): { mean: number; variance: number; tail: number } {
  let s = 0;
  for (let i = 0; i < z.length; i++) s += z[i];
  const mean = s / z.length;
  let ss = 0;
  let tail = 0;
  for (let i = 0; i < z.length; i++) {
    const d = z[i] - mean;
    ss += d * d;
    if (Math.abs(z[i]) > 3) tail++;
  }
  return { mean, variance: ss / (z.length - 1), tail };
}

describe.each([
  ['crypto', {}],
  ['seeded', { seed: 'tayguard-test' }],
])('%s Gaussian source, 10^6 draws', (kind, opts) => {
  const source = createGaussianSource(opts);
  const z = source.sample(N, 1);
  const m = moments(z);

  it('reports its kind', () => {
    expect(source.kind).toBe(kind);
  });

  it('has mean within 4 standard errors of 0', () => {
    expect(Math.abs(m.mean)).toBeLessThanOrEqual(4 / Math.sqrt(N));
  });

  it('has variance within a chi-square bound', () => {
    // (n−1)s²/σ² ~ χ²_{n−1}, mean n−1, sd √(2(n−1)); for n = 10^6 the normal approximation is excellent,
    // so 5 sd: |s² − 1| ≤ 5·√(2/(n−1)) ≈ 0.0071 (false-failure rate ≈ 6e-7).
    expect(Math.abs(m.variance - 1)).toBeLessThanOrEqual(5 * Math.sqrt(2 / (N - 1)));
  });

  it('has tail mass P(|z|>3) within a binomial bound of 0.0027', () => {
    // count ~ Binomial(n, p): 5 sd ≈ 260 around 2700.
    const sd = Math.sqrt(N * TAIL3 * (1 - TAIL3));
    expect(Math.abs(m.tail - N * TAIL3)).toBeLessThanOrEqual(5 * sd);
  });

  it('scales with std and produces only finite values', () => {
    const w = source.sample(200_000, 3);
    const mw = moments(w);
    expect(w.every(Number.isFinite)).toBe(true);
    expect(Math.abs(Math.sqrt(mw.variance) - 3)).toBeLessThan(0.05);
  });
});

describe('reproducibility', () => {
  it('seeded mode is reproducible and differs across seeds', () => {
    const a = createGaussianSource({ seed: 7 }).sample(1001, 1);
    const b = createGaussianSource({ seed: 7 }).sample(1001, 1);
    const c = createGaussianSource({ seed: 8 }).sample(1001, 1);
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(Array.from(a)).not.toEqual(Array.from(c));
  });

  it('crypto mode differs across calls and across sources', () => {
    const s = createGaussianSource();
    const a = s.sample(64, 1);
    const b = s.sample(64, 1);
    const c = createGaussianSource().sample(64, 1);
    expect(Array.from(a)).not.toEqual(Array.from(b));
    expect(Array.from(a)).not.toEqual(Array.from(c));
  });

  it('odd lengths and lengths above one refill chunk are filled completely', () => {
    const s = createGaussianSource({ seed: 1 });
    for (const n of [1, 3, 8191, 8193, 20001]) {
      const z = s.fill(new Float32Array(n).fill(Number.NaN), 1);
      expect(z.every(Number.isFinite)).toBe(true);
    }
  });

  it('rejects a negative or non-finite std', () => {
    const s = createGaussianSource();
    for (const std of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
      let caught: unknown;
      try {
        s.sample(3, std);
      } catch (err) {
        caught = err;
      }
      expect(hasCode(caught, 'ARGUMENT_INVALID')).toBe(true);
    }
  });
});

describe('addNoise', () => {
  it('returns new noisy tensors, leaves the inputs alone and does not leak', () => {
    const grads = { a: tf.zeros([300, 20]), b: tf.ones([20]) };
    const before = tf.memory().numTensors;
    const noisy = addNoise(grads, 0.5, createGaussianSource({ seed: 3 }));
    expect(Object.keys(noisy).sort()).toEqual(['a', 'b']);
    expect(noisy.a.shape).toEqual([300, 20]);
    expect(noisy.a).not.toBe(grads.a);
    const a = noisy.a.dataSync();
    const m = moments(Float32Array.from(a));
    expect(Math.abs(Math.sqrt(m.variance) - 0.5)).toBeLessThan(0.03);
    expect(grads.a.dataSync().every((v) => v === 0)).toBe(true);
    for (const t of Object.values(noisy)) t.dispose();
    expect(tf.memory().numTensors).toBe(before);
    for (const t of Object.values(grads)) t.dispose();
  });

  it('is reproducible with a seeded source', () => {
    const g = { w: tf.zeros([5]) };
    const n1 = addNoise(g, 1, createGaussianSource({ seed: 'x' }));
    const n2 = addNoise(g, 1, createGaussianSource({ seed: 'x' }));
    expect(Array.from(n1.w.dataSync())).toEqual(Array.from(n2.w.dataSync()));
    tf.dispose([g.w, n1.w, n2.w]);
  });
});
