/**
 * Single-record prediction without tfjs, for screens that ask the model about every record (label consistency).
 * A tfjs call per record costs ~100 µs in fixed overhead; for a chain of Dense layers over a sparse hashed-text
 * row, a plain-JS forward pass over the non-zero inputs costs a few µs. Weights are copied out of the model once
 * and re-read whenever the learner's weights change (`learner.weightsVersion`).
 */
import type { Learner } from './learner';
import type { Payload } from './featurize';

type Activation = (v: Float64Array) => void;

const ACTIVATIONS: Record<string, Activation> = {
  linear: () => undefined,
  relu: (v) => v.forEach((x, i) => (v[i] = x > 0 ? x : 0)),
  tanh: (v) => v.forEach((x, i) => (v[i] = Math.tanh(x))),
  sigmoid: (v) => v.forEach((x, i) => (v[i] = 1 / (1 + Math.exp(-x)))),
  softmax: (v) => {
    let max = -Infinity;
    for (const x of v) max = Math.max(max, x);
    let sum = 0;
    for (let i = 0; i < v.length; i++) sum += v[i] = Math.exp(v[i] - max);
    for (let i = 0; i < v.length; i++) v[i] /= sum;
  },
};

export interface DenseLayer {
  readonly kernel: Float32Array; // [in, out], row-major
  readonly bias: Float32Array | null;
  readonly inputs: number;
  readonly units: number;
  readonly activation: Activation;
}

/** The Dense chain of a model, or undefined when some layer is not a plain Dense layer (use tfjs then). */
export function denseChain(learner: Learner): DenseLayer[] | undefined {
  const layers: DenseLayer[] = [];
  for (const layer of learner.model.layers) {
    const cls = layer.getClassName();
    if (cls === 'InputLayer') continue;
    if (cls !== 'Dense') return undefined;
    const config = layer.getConfig() as { activation?: string; useBias?: boolean; units: number };
    const activation = ACTIVATIONS[config.activation ?? 'linear'];
    if (!activation) return undefined;
    const [kernel, bias] = layer.getWeights();
    layers.push({
      kernel: kernel.dataSync() as Float32Array,
      bias: bias ? (bias.dataSync() as Float32Array) : null,
      inputs: kernel.shape[0] as number,
      units: config.units,
      activation,
    });
  }
  return layers.length > 0 ? layers : undefined;
}

/** The Dense chain's output for one input row given as its non-zero entries (`visit` calls `add(j, x)` for each). */
function forward(chain: DenseLayer[], visit: (add: (j: number, x: number) => void) => void): number[] {
  // First layer over the non-zero inputs only: hashed text rows have a few hundred of 2^14.
  const first = chain[0];
  let h = new Float64Array(first.units);
  if (first.bias) for (let k = 0; k < first.units; k++) h[k] = first.bias[k];
  visit((j, x) => {
    const base = j * first.units;
    for (let k = 0; k < first.units; k++) h[k] += x * first.kernel[base + k];
  });
  first.activation(h);
  for (let l = 1; l < chain.length; l++) {
    const layer = chain[l];
    const next = new Float64Array(layer.units);
    if (layer.bias) for (let k = 0; k < layer.units; k++) next[k] = layer.bias[k];
    for (let j = 0; j < layer.inputs; j++) {
      const x = h[j];
      if (x === 0) continue;
      const base = j * layer.units;
      for (let k = 0; k < layer.units; k++) next[k] += x * layer.kernel[base + k];
    }
    layer.activation(next);
    h = next;
  }
  return Array.from(h);
}

/**
 * The forward pass over a sparse input row, for a model of Dense layers only (undefined otherwise), with the
 * weights as they are now: for a model that no longer trains (the witness, src/witness.ts).
 */
export function sparseForward(learner: Learner): ((row: { readonly indices: readonly number[]; readonly values: readonly number[] }) => number[]) | undefined {
  const chain = denseChain(learner);
  if (!chain) return undefined;
  return (row) =>
    forward(chain, (add) => {
      for (let i = 0; i < row.indices.length; i++) add(row.indices[i], row.values[i]);
    });
}

export function fastPredictor(learner: Learner & { readonly weightsVersion: number }): (payload: Payload) => number[] {
  let cached: { version: number; chain: DenseLayer[] | undefined } | undefined;
  const row = new Float32Array(learner.featurizer.dim);
  return (payload) => {
    if (cached?.version !== learner.weightsVersion) cached = { version: learner.weightsVersion, chain: denseChain(learner) };
    const chain = cached.chain;
    if (!chain) return learner.predict([payload])[0];
    return forward(chain, (add) => {
      const sparse = learner.featurizer.encodeSparse?.(payload);
      if (sparse) {
        for (let i = 0; i < sparse.indices.length; i++) add(sparse.indices[i], sparse.values[i]);
      } else {
        row.fill(0);
        learner.featurizer.encodeInto(payload, row, 0);
        for (let j = 0; j < row.length; j++) if (row[j] !== 0) add(j, row[j]);
      }
    });
  };
}
