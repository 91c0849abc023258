import { initTf, tf } from '../../../core/tf';
import { buildModel } from '../../../middleware/build';
import { clippedGradientSum } from '../../../privacy/clipping';
import { createGaussianSource } from '../../../privacy/noise';
import { privateGradients } from '../../../privacy/dp-sgd';

beforeAll(async () => {
  await initTf();
});

function batch(n: number, dim: number, classes: number): { x: tf.Tensor2D; y: tf.Tensor2D } {
  const xs = Float32Array.from({ length: n * dim }, (_, i) => Math.sin(i * 0.37) * 2);
  const x = tf.tensor2d(xs, [n, dim]);
  const y = tf.tidy(() => tf.oneHot(tf.tensor1d(Array.from({ length: n }, (_, i) => i % classes), 'int32'), classes).toFloat() as tf.Tensor2D);
  return { x, y };
}

describe('privateGradients', () => {
  let model: tf.LayersModel;
  let names: string[];

  beforeAll(async () => {
    await initTf();
    model = buildModel({ inputDim: 12, numClasses: 3, hiddenUnits: 8, seed: 3 });
    names = model.trainableWeights.map((w) => (w.read() as tf.Variable).name);
  });

  afterAll(() => model.dispose());

  it('with σ = 0 equals the clipped sum divided by the EXPECTED batch size', () => {
    const { x, y } = batch(10, 12, 3);
    const ref = clippedGradientSum(model, x, y, 0.5);
    const out = privateGradients(model, x, y, { clipNorm: 0.5, noiseMultiplier: 0, expectedBatchSize: 16, noise: createGaussianSource({ seed: 1 }) });
    expect(Object.keys(out.grads).sort()).toEqual([...names].sort());
    for (const name of names) {
      const a = out.grads[name].dataSync();
      const b = ref.grads[name].dataSync();
      for (let i = 0; i < a.length; i++) expect(a[i]).toBeCloseTo(b[i] / 16, 6);
    }
    expect(Array.from(out.norms)).toEqual(Array.from(ref.norms));
    tf.dispose([x, y, ...Object.values(ref.grads), ...Object.values(out.grads)]);
  });

  it('adds noise of std σC/B per coordinate', () => {
    const { x, y } = batch(4, 12, 3);
    const sigma = 2;
    const C = 1;
    const B = 4;
    const ref = clippedGradientSum(model, x, y, C);
    const out = privateGradients(model, x, y, { clipNorm: C, noiseMultiplier: sigma, expectedBatchSize: B, noise: createGaussianSource({ seed: 'std' }) });
    const diffs: number[] = [];
    for (const name of names) {
      const a = out.grads[name].dataSync();
      const b = ref.grads[name].dataSync();
      for (let i = 0; i < a.length; i++) diffs.push(a[i] - b[i] / B);
    }
    const sd = Math.sqrt(diffs.reduce((s, d) => s + d * d, 0) / diffs.length);
    // 131 coordinates: the sample std is within ~25% of σC/B with overwhelming probability
    expect(sd).toBeGreaterThan(0.75 * (sigma * C) / B);
    expect(sd).toBeLessThan(1.25 * (sigma * C) / B);
    tf.dispose([x, y, ...Object.values(ref.grads), ...Object.values(out.grads)]);
  });

  it('leaks no tensors (normal, grouped, empty batch, and error paths)', () => {
    const noise = createGaussianSource();
    const { x, y } = batch(6, 12, 3);
    const empty = tf.zeros([0, 12]) as tf.Tensor2D;
    const emptyY = tf.zeros([0, 3]) as tf.Tensor2D;
    const before = tf.memory().numTensors;
    for (let r = 0; r < 3; r++) {
      const a = privateGradients(model, x, y, { clipNorm: 1, noiseMultiplier: 1.1, expectedBatchSize: 6, noise });
      tf.dispose(Object.values(a.grads));
      const g = privateGradients(model, x, y, { clipNorm: 1, noiseMultiplier: 1.1, expectedBatchSize: 6, noise, groups: Int32Array.from([0, 0, 1, 1, 2, 5]) });
      expect(g.norms.length).toBe(4);
      tf.dispose(Object.values(g.grads));
      const e = privateGradients(model, empty, emptyY, { clipNorm: 1, noiseMultiplier: 1.1, expectedBatchSize: 6, noise });
      expect(Object.keys(e.grads).sort()).toEqual([...names].sort());
      expect(e.norms.length).toBe(0);
      tf.dispose(Object.values(e.grads));
      expect(() => privateGradients(model, x, y, { clipNorm: 1, noiseMultiplier: 1, expectedBatchSize: 0, noise })).toThrow();
      expect(() => privateGradients(model, x, y, { clipNorm: 1, noiseMultiplier: 1, expectedBatchSize: 6, noise, groups: new Int32Array(2) })).toThrow();
    }
    const failing = { kind: 'crypto' as const, fill: (o: Float32Array) => o, sample: (): Float32Array => { throw new Error('boom'); } };
    expect(() => privateGradients(model, x, y, { clipNorm: 1, noiseMultiplier: 1, expectedBatchSize: 6, noise: failing })).toThrow('boom');
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, y, empty, emptyY]);
  });

  it('an empty Poisson batch yields pure noise / expected batch size', () => {
    const empty = tf.zeros([0, 12]) as tf.Tensor2D;
    const emptyY = tf.zeros([0, 3]) as tf.Tensor2D;
    const zero = privateGradients(model, empty, emptyY, { clipNorm: 1, noiseMultiplier: 0, expectedBatchSize: 6, noise: createGaussianSource() });
    for (const g of Object.values(zero.grads)) expect(Array.from(g.dataSync()).every((v) => v === 0)).toBe(true);
    tf.dispose([empty, emptyY, ...Object.values(zero.grads)]);
  });

  it('the result can be applied by an optimizer', () => {
    const { x, y } = batch(5, 12, 3);
    const opt = tf.train.sgd(0.1);
    const out = privateGradients(model, x, y, { clipNorm: 1, noiseMultiplier: 1, expectedBatchSize: 5, noise: createGaussianSource({ seed: 2 }) });
    expect(() => opt.applyGradients(out.grads)).not.toThrow();
    tf.dispose([x, y, ...Object.values(out.grads)]);
    opt.dispose();
  });
});
