/**
 * Shared by the clipping property tests (test/privacy/clipping/nested.test.ts, weighted.test.ts): real tfjs models
 * of the kinds the service builds and an independent float64 reference — per-example gradients by one
 * tf.variableGrads each on the model's own output, nothing shared with the clipping code.
 */
import { tf } from '../../core/tf';
import { buildModel, featurizerFor } from '../../middleware/build';

export interface Kind {
  model: tf.LayersModel;
  classes: number;
  /** Rows of x for a batch of n, from the seeded rng. */
  x: (n: number, rng: () => number) => tf.Tensor;
  /** The model's output for the reference gradients when model.apply cannot be differentiated on wasm. */
  forward?: (x: tf.Tensor) => tf.Tensor;
}

const WORDS = ['free', 'money', 'meeting', 'lunch', 'prize', 'invoice', 'winner', 'team', 'report', 'casino'];

export const kinds: Array<[string, () => Kind]> = [
  [
    'text model (hashed text, logistic regression with a softmax head)',
    () => {
      const feat = featurizerFor('text', 64);
      return {
        model: buildModel({ inputDim: 64, numClasses: 2, hiddenUnits: 0, seed: 7 }),
        classes: 2,
        x: (n, rng) => {
          const out = new Float32Array(n * 64);
          for (let i = 0; i < n; i++) {
            const text = Array.from({ length: 2 + Math.floor(rng() * 6) }, () => WORDS[Math.floor(rng() * WORDS.length)]).join(' ');
            feat.encodeInto({ text }, out, i * 64);
          }
          return tf.tensor2d(out, [n, 64]);
        },
      };
    },
  ],
  [
    // A wide hidden layer (D·K = 4·48 against M²(D+K)): group norms by the Gram identity for few repeated rows, by
    // the formed group sums for more — both ways of ghost-nested.ts get exercised.
    'dense model (MLP: relu hidden layer + softmax head)',
    () => ({
      model: buildModel({ inputDim: 4, numClasses: 3, hiddenUnits: 48, seed: 3 }),
      classes: 3,
      x: (n, rng) => tf.tensor2d(Float32Array.from({ length: n * 4 }, () => (rng() - 0.5) * 4), [n, 4]),
    }),
  ],
  [
    'Embedding (repeated tokens) + Flatten + Dense softmax',
    () => {
      const model = tf.sequential({
        layers: [
          tf.layers.embedding({ inputDim: 7, outputDim: 3, inputLength: 4 }),
          tf.layers.flatten(),
          tf.layers.dense({ units: 2, activation: 'softmax' }),
        ],
      });
      return {
        model,
        classes: 2,
        x: (n, rng) => tf.tensor2d(Float32Array.from({ length: n * 4 }, () => Math.floor(rng() * 4)), [n, 4]),
        // The wasm backend cannot differentiate gather (no UnsortedSegmentSum): look up by a one-hot matmul.
        forward: (x) => {
          const table = model.layers[0].weights[0].read();
          const onehot = tf.cast(tf.equal(tf.reshape(tf.cast(x, 'int32'), [-1, 1]), tf.range(0, 7, 1, 'int32')), 'float32');
          return model.layers[2].apply(tf.reshape(tf.matMul(onehot, table), [x.shape[0], -1])) as tf.Tensor;
        },
      };
    },
  ],
];

export function flat(model: tf.LayersModel, grads: tf.NamedTensorMap): Float64Array {
  const parts: number[] = [];
  for (const w of model.trainableWeights) for (const v of grads[(w.read() as tf.Variable).name].dataSync()) parts.push(v);
  for (const t of Object.values(grads)) t.dispose();
  return Float64Array.from(parts);
}

export const norm = (v: ArrayLike<number>): number => Math.sqrt(Array.from(v).reduce((s, a) => s + a * a, 0));
export const diff = (a: ArrayLike<number>, b: ArrayLike<number>): Float64Array => Float64Array.from(a, (v, k) => v - b[k]);

/** Per-example gradients of −y·log(model(x)), one tf.variableGrads each: nothing shared with the clipping code. */
export function perExampleGrads(kind: Kind, x: tf.Tensor, y: tf.Tensor2D): Float64Array[] {
  const { model } = kind;
  const forward = kind.forward ?? ((xi: tf.Tensor) => model.apply(xi) as tf.Tensor);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  return Array.from({ length: x.shape[0] }, (_, i) => {
    const parts: number[] = [];
    tf.tidy(() => {
      const xi = tf.slice(x, [i, ...x.shape.slice(1).map(() => 0)], [1, ...x.shape.slice(1)]);
      const yi = tf.slice(y, [i, 0], [1, -1]);
      const { grads } = tf.variableGrads(() => tf.neg(tf.sum(tf.mul(yi, tf.log(forward(xi))))) as tf.Scalar, vars);
      for (const v of vars) for (const a of grads[v.name].dataSync()) parts.push(a);
    });
    return Float64Array.from(parts);
  });
}

export function clip(g: Float64Array, C: number): Float64Array {
  const n = norm(g);
  return n <= C ? g : g.map((v) => (v * C) / n);
}

/** Σ_G clip_C(Σ_{i∈G} clip_C(g_i)) in float64, and each group's term. */
export function reference(g: Float64Array[], groups: Int32Array, C: number): { sum: Float64Array; terms: Map<number, Float64Array> } {
  const inner = new Map<number, Float64Array>();
  g.forEach((gi, i) => {
    const acc = inner.get(groups[i]) ?? new Float64Array(gi.length);
    clip(gi, C).forEach((v, k) => (acc[k] += v));
    inner.set(groups[i], acc);
  });
  const sum = new Float64Array(g[0].length);
  const terms = new Map<number, Float64Array>();
  for (const [id, s] of inner) {
    const t = clip(s, C);
    terms.set(id, t);
    t.forEach((v, k) => (sum[k] += v));
  }
  return { sum, terms };
}

export function labels(n: number, classes: number, rng: () => number): tf.Tensor2D {
  return tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d(Array.from({ length: n }, () => Math.floor(rng() * classes)), 'int32'), classes), 'float32') as tf.Tensor2D);
}

