import { hasCode } from '../../../core/errors';
import { initTf, tf } from '../../../core/tf';
import { clippedGradientSum, type ClipOptions } from '../../../privacy/clipping';

beforeAll(async () => {
  await initTf();
});


/** Concatenate a gradient map into one vector in the model's trainable-weight order. */
function flatGrads(model: tf.LayersModel, grads: tf.NamedTensorMap): Float64Array {
  const parts: number[] = [];
  for (const w of model.trainableWeights) {
    const name = (w.read() as tf.Variable).name;
    const g = grads[name];
    if (g === undefined) throw new Error(`missing gradient for ${name}`);
    expect(g.shape).toEqual(w.shape);
    for (const v of g.dataSync()) parts.push(v);
  }
  return Float64Array.from(parts);
}

function l2(v: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i] * v[i];
  return Math.sqrt(s);
}

/** ‖a − b‖ ≤ rel·‖b‖ + abs on the whole vector (float32-appropriate). */
function expectClose(a: ArrayLike<number>, b: ArrayLike<number>, rel = 1e-5, abs = 1e-7): void {
  expect(a.length).toBe(b.length);
  const d = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) d[i] = a[i] - b[i];
  const err = l2(d);
  const bound = rel * l2(b) + abs;
  if (err > bound) throw new Error(`‖a−b‖ = ${err} exceeds ${bound} (‖b‖ = ${l2(b)})`);
}

function disposeMap(m: tf.NamedTensorMap): void {
  for (const t of Object.values(m)) t.dispose();
}

/** Deterministic labels: one-hot of i mod classes. */
function labels(batch: number, classes: number): tf.Tensor2D {
  return tf.tidy(() => {
    const ids = tf.tensor1d(Array.from({ length: batch }, (_, i) => (i * 7 + 3) % classes), 'int32');
    return tf.cast(tf.oneHot(ids, classes), 'float32') as tf.Tensor2D;
  });
}

/** Integer token ids in [0, vocab) as a float32 [batch, len] tensor, with deliberate repeats. */
function tokens(batch: number, len: number, vocab: number): tf.Tensor2D {
  const v: number[] = [];
  for (let b = 0; b < batch; b++) for (let t = 0; t < len; t++) v.push((b * 3 + t * t + (t % 2 ? b : 0)) % vocab);
  return tf.tensor2d(v, [batch, len]);
}

interface Case {
  model: tf.LayersModel;
  x: tf.Tensor;
  y: tf.Tensor2D;
}

const B = 12;
const GROUPS = Int32Array.from([5, 5, 2, 9, 2, 5, 40, 9, 9, 2, 7, 7]); // non-contiguous ids, a singleton (40)

const cases: Array<[string, () => Case]> = [
  [
    'Dense-only with biases, linear logits',
    () => {
      const model = tf.sequential({
        layers: [tf.layers.dense({ units: 8, inputShape: [6] }), tf.layers.dense({ units: 4 })],
      });
      return { model, x: tf.randomNormal([B, 6], 0, 1, 'float32', 1), y: labels(B, 4) };
    },
  ],
  [
    'Dense relu/tanh/sigmoid (one without bias) + softmax head',
    () => {
      const model = tf.sequential({
        layers: [
          tf.layers.dense({ units: 10, activation: 'relu', inputShape: [7] }),
          tf.layers.dense({ units: 9, activation: 'tanh', useBias: false }),
          tf.layers.dense({ units: 6, activation: 'sigmoid' }),
          tf.layers.dense({ units: 5, activation: 'softmax' }),
        ],
      });
      return { model, x: tf.randomNormal([B, 7], 0, 2, 'float32', 2), y: labels(B, 5) };
    },
  ],
  [
    'Embedding (repeated tokens) + Flatten + Dense relu + softmax head',
    () => {
      const model = tf.sequential({
        layers: [
          tf.layers.embedding({ inputDim: 9, outputDim: 4, inputLength: 6 }),
          tf.layers.flatten(),
          tf.layers.dense({ units: 8, activation: 'relu' }),
          tf.layers.dense({ units: 3, activation: 'softmax' }),
        ],
      });
      return { model, x: tokens(B, 6, 9), y: labels(B, 3) };
    },
  ],
  [
    'functional chain with Dropout and Activation layers',
    () => {
      const input = tf.input({ shape: [5] });
      let h = tf.layers.dense({ units: 7 }).apply(input) as tf.SymbolicTensor;
      h = tf.layers.activation({ activation: 'tanh' }).apply(h) as tf.SymbolicTensor;
      h = tf.layers.dropout({ rate: 0.5 }).apply(h) as tf.SymbolicTensor;
      h = tf.layers.dense({ units: 4, activation: 'softmax' }).apply(h) as tf.SymbolicTensor;
      const model = tf.model({ inputs: input, outputs: h });
      return { model, x: tf.randomNormal([B, 5], 0, 1, 'float32', 3), y: labels(B, 4) };
    },
  ],
];

function median(v: Float32Array): number {
  const s = Array.from(v).sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

describe.each(cases)('%s', (_name, make) => {
  let c: Case;
  beforeAll(() => {
    c = make();
  });

  describe.each([
    ['per example', undefined],
    ['with groups', GROUPS],
  ])('%s', (_unit, groups) => {
    it('ghost and microbatch agree on pre-clip norms and on the clipped sum', () => {
      const big: ClipOptions = { groups };
      const g0 = clippedGradientSum(c.model, c.x, c.y, 1e9, { ...big, path: 'ghost' });
      const m0 = clippedGradientSum(c.model, c.x, c.y, 1e9, { ...big, path: 'microbatch' });
      expect(g0.path).toBe('ghost');
      expect(m0.path).toBe('microbatch');
      expect(g0.norms.length).toBe(groups ? 5 : B);
      expect(g0.groupIds === undefined ? undefined : Array.from(g0.groupIds)).toEqual(groups ? [2, 5, 7, 9, 40] : undefined);
      expectClose(g0.norms, m0.norms);
      // Unclipped (C huge): both equal the plain gradient of the summed loss.
      expectClose(flatGrads(c.model, g0.grads), flatGrads(c.model, m0.grads));
      disposeMap(g0.grads);
      disposeMap(m0.grads);

      // C = median norm: about half the units are clipped, half are not.
      const C = median(m0.norms);
      const g = clippedGradientSum(c.model, c.x, c.y, C, { groups, path: 'ghost' });
      const m = clippedGradientSum(c.model, c.x, c.y, C, { groups, path: 'microbatch' });
      expect(g.norms.filter((n) => n > C).length).toBeGreaterThan(0);
      expect(g.norms.filter((n) => n < C).length).toBeGreaterThan(0);
      expectClose(flatGrads(c.model, g.grads), flatGrads(c.model, m.grads));
      expect(l2(flatGrads(c.model, g.grads))).toBeLessThanOrEqual(g.norms.length * C * (1 + 1e-6));
      disposeMap(g.grads);
      disposeMap(m.grads);
    });

    it('each clipped per-unit gradient has norm ≤ C (checked unit by unit in the fallback)', () => {
      const ref = clippedGradientSum(c.model, c.x, c.y, 1e9, { groups, path: 'microbatch' });
      disposeMap(ref.grads);
      const C = median(ref.norms);
      const unitIds = groups ? Array.from(new Set(groups)).sort((a, b) => a - b) : Array.from({ length: B }, (_, i) => i);
      unitIds.forEach((id, u) => {
        const rows = Array.from({ length: B }, (_, i) => i).filter((i) => (groups ? groups[i] === id : i === id));
        const idx = tf.tensor1d(rows, 'int32');
        const xu = tf.gather(c.x, idx);
        const yu = tf.gather(c.y, idx) as tf.Tensor2D;
        const opts = { groups: groups ? new Int32Array(rows.length).fill(id) : undefined };
        for (const path of ['microbatch', 'ghost'] as const) {
          const r = clippedGradientSum(c.model, xu, yu, C, { ...opts, path });
          expect(r.norms.length).toBe(1);
          expect(r.norms[0]).toBeCloseTo(ref.norms[u], 4);
          const n = l2(flatGrads(c.model, r.grads));
          expect(n).toBeLessThanOrEqual(C * (1 + 1e-6));
          // A unit already inside the ball is left unchanged.
          if (ref.norms[u] < C) expect(Math.abs(n - ref.norms[u])).toBeLessThanOrEqual(1e-5 * ref.norms[u] + 1e-7);
          disposeMap(r.grads);
        }
        tf.dispose([idx, xu, yu]);
      });
    });

    it('does not leak tensors on either path', () => {
      for (const path of ['ghost', 'microbatch'] as const) {
        disposeMap(clippedGradientSum(c.model, c.x, c.y, 1, { groups, path }).grads); // warm caches
        const before = tf.memory().numTensors;
        for (let rep = 0; rep < 2; rep++) {
          disposeMap(clippedGradientSum(c.model, c.x, c.y, 1, { groups, path }).grads);
          expect(tf.memory().numTensors).toBe(before);
        }
      }
    });
  });
});

describe('loss convention', () => {
  it('with C = ∞ the ghost sum is the gradient of Σᵢ CE(softmax head pre-activation)', () => {
    const model = tf.sequential({
      layers: [
        tf.layers.dense({ units: 6, activation: 'relu', inputShape: [4] }),
        tf.layers.dense({ units: 3, activation: 'softmax' }),
      ],
    });
    const x = tf.randomNormal([8, 4], 0, 1, 'float32', 9);
    const y = labels(8, 3);
    const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const plain = tf.variableGrads(
      () => tf.neg(tf.sum(tf.mul(y, tf.log(model.apply(x) as tf.Tensor)))) as tf.Scalar,
      vars,
    );
    const r = clippedGradientSum(model, x, y, Number.MAX_VALUE, { path: 'ghost' });
    expectClose(flatGrads(model, r.grads), flatGrads(model, plain.grads), 1e-4);
    disposeMap(r.grads);
    disposeMap(plain.grads);
    tf.dispose([x, y, plain.value]);
  });
});

describe('frozen layers', () => {
  it('only trainable weights are clipped and returned, also after freezing a layer between calls', () => {
    const c = cases[1][1]();
    const first = clippedGradientSum(c.model, c.x, c.y, 0.3);
    disposeMap(first.grads);
    c.model.layers[1].trainable = false;
    const g = clippedGradientSum(c.model, c.x, c.y, 0.3, { path: 'ghost' });
    const m = clippedGradientSum(c.model, c.x, c.y, 0.3, { path: 'microbatch' });
    expect(Object.keys(g.grads).sort()).toEqual(Object.keys(m.grads).sort());
    expect(Object.keys(g.grads).length).toBe(c.model.trainableWeights.length);
    expectClose(g.norms, m.norms);
    expectClose(flatGrads(c.model, g.grads), flatGrads(c.model, m.grads));
    disposeMap(g.grads);
    disposeMap(m.grads);
  });
});

describe('path selection', () => {
  const lstm = (): Case => {
    const model = tf.sequential({
      layers: [tf.layers.lstm({ units: 4, inputShape: [3, 2] }), tf.layers.dense({ units: 3, activation: 'softmax' })],
    });
    return { model, x: tf.randomNormal([5, 3, 2], 0, 1, 'float32', 4), y: labels(5, 3) };
  };

  it("an unsupported layer (LSTM) goes to the fallback under 'auto' and is refused under 'ghost'", () => {
    const c = lstm();
    const r = clippedGradientSum(c.model, c.x, c.y, 0.5);
    expect(r.path).toBe('microbatch');
    expect(r.norms.length).toBe(5);
    expect(Object.keys(r.grads).sort()).toEqual(c.model.trainableWeights.map((w) => (w.read() as tf.Variable).name).sort());
    expect(l2(flatGrads(c.model, r.grads))).toBeLessThanOrEqual(5 * 0.5 * (1 + 1e-6));
    disposeMap(r.grads);
    let caught: unknown;
    try {
      clippedGradientSum(c.model, c.x, c.y, 0.5, { path: 'ghost' });
    } catch (err) {
      caught = err;
    }
    expect(hasCode(caught, 'ARGUMENT_INVALID')).toBe(true);
  });

  it("a Dense applied to a rank-3 input (Embedding without Flatten) falls back under 'auto'", () => {
    const model = tf.sequential({
      layers: [
        tf.layers.embedding({ inputDim: 6, outputDim: 3, inputLength: 4 }),
        tf.layers.dense({ units: 2 }),
        tf.layers.flatten(),
        tf.layers.dense({ units: 3 }),
      ],
    });
    const r = clippedGradientSum(model, tokens(4, 4, 6), labels(4, 3), 1);
    expect(r.path).toBe('microbatch');
    disposeMap(r.grads);
  });

  it("Dense/Embedding chains take the ghost path under 'auto'", () => {
    const c = cases[2][1]();
    const r = clippedGradientSum(c.model, c.x, c.y, 1);
    expect(r.path).toBe('ghost');
    disposeMap(r.grads);
  });

  it('rejects bad arguments with ARGUMENT_INVALID', () => {
    const c = cases[0][1]();
    const bad: Array<() => unknown> = [
      () => clippedGradientSum(c.model, c.x, c.y, 0),
      () => clippedGradientSum(c.model, c.x, c.y, Number.NaN),
      () => clippedGradientSum(c.model, c.x, c.y, 1, { groups: new Int32Array(3) }),
      () => clippedGradientSum(c.model, c.x, labels(B, 5), 1),
      () => clippedGradientSum(c.model, c.x, labels(B - 1, 4), 1),
      () => clippedGradientSum(c.model, c.x, c.y, 1, { path: 'fast' as never }),
      () => clippedGradientSum(c.model, tf.zeros([B, 5]), c.y, 1),
      () => clippedGradientSum(c.model, tf.zeros([B, 6, 1]), c.y, 1),
    ];
    for (const f of bad) {
      let caught: unknown;
      try {
        f();
      } catch (err) {
        caught = err;
      }
      expect(hasCode(caught, 'ARGUMENT_INVALID')).toBe(true);
    }
  });

  it('rejects out-of-vocabulary token ids on the ghost path', () => {
    const c = cases[2][1]();
    const x = tf.fill([B, 6], 9);
    let caught: unknown;
    try {
      clippedGradientSum(c.model, x, c.y, 1);
    } catch (err) {
      caught = err;
    }
    expect(hasCode(caught, 'ARGUMENT_INVALID')).toBe(true);
    x.dispose();
  });
});
