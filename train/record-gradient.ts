/**
 * The per-record gradient of the current model's last Dense layer, exactly, for the gradient screen
 * (filters/gradient-spectral.ts). For a Dense layer z = a·W + b with softmax cross-entropy on top, the gradient of
 * one record's loss is the outer product ∇W = a ⊗ (p − e_y), ∇b = p − e_y (Goodfellow 2015, "Efficient
 * per-example gradient computations"; the identity privacy/clipping/ghost.ts uses for its norms), so it is
 * returned factored: the residual p − e_y (one value per class) and the layer's input a as non-zeros. For the
 * built-in text and dense models (HIDDEN_UNITS=0: softmax regression) this is the whole gradient; with hidden
 * layers it is the last layer's part, the representation spectral signatures use (Tran, Li & Madry 2018).
 *
 * Cost: one forward pass in plain JS over the record's non-zero inputs (as middleware/fast-predict.ts does; at
 * most `maxInputs` of them are read), weights re-read when the learner's weights change. Models that are not a
 * chain of Dense layers, or whose output is not a softmax, get no gradient (the screen then passes every record).
 */
import type { TrainingRecord } from '../core/record';
import type { RecordGradient } from '../filters/gradient-spectral';
import { denseChain, type DenseLayer } from '../middleware/fast-predict';
import type { Learner } from '../middleware/learner';

export function recordGradient(learner: Learner & { readonly weightsVersion: number }, maxInputs = 4096): (record: TrainingRecord) => RecordGradient | undefined {
  let cached: { version: number; chain: DenseLayer[] | undefined } | undefined;
  const dim = learner.featurizer.dim;
  const row = new Float32Array(dim);
  const residual = new Float64Array(learner.numClasses);
  let indices = new Int32Array(Math.min(maxInputs, dim));
  let values = new Float64Array(indices.length);
  let hidden = 0;

  return (record) => {
    if (cached?.version !== learner.weightsVersion) {
      const chain = denseChain(learner);
      const last = chain?.[chain.length - 1];
      // The factored form needs softmax cross-entropy on the last layer's output.
      const ok = chain && last && last.units === learner.numClasses && learner.model.layers[learner.model.layers.length - 1].getConfig().activation === 'softmax';
      cached = { version: learner.weightsVersion, chain: ok ? chain : undefined };
      hidden = ok && chain.length > 1 ? chain[chain.length - 2].units : 0;
      if (hidden > indices.length) {
        indices = new Int32Array(hidden);
        values = new Float64Array(hidden);
      }
    }
    const chain = cached.chain;
    const y = record.label;
    if (!chain || !Number.isInteger(y) || y < 0 || y >= learner.numClasses) return undefined;

    // The model's input as non-zeros (capped).
    let n = 0;
    const sparse = learner.featurizer.encodeSparse?.(record);
    if (sparse) {
      for (let i = 0; i < sparse.indices.length && n < indices.length; i++) {
        indices[n] = sparse.indices[i];
        values[n++] = sparse.values[i];
      }
    } else {
      row.fill(0);
      learner.featurizer.encodeInto(record, row, 0);
      for (let j = 0; j < dim && n < indices.length; j++) {
        if (row[j] !== 0 && Number.isFinite(row[j])) {
          indices[n] = j;
          values[n++] = row[j];
        }
      }
    }

    // Forward pass; the input of the last layer stays in (indices, values).
    let inputs = dim;
    for (let l = 0; l < chain.length; l++) {
      const layer = chain[l];
      const z = new Float64Array(layer.units);
      if (layer.bias) for (let k = 0; k < layer.units; k++) z[k] = layer.bias[k];
      for (let i = 0; i < n; i++) {
        const base = indices[i] * layer.units;
        const x = values[i];
        for (let k = 0; k < layer.units; k++) z[k] += x * layer.kernel[base + k];
      }
      layer.activation(z);
      if (l === chain.length - 1) {
        for (let k = 0; k < z.length; k++) residual[k] = z[k] - (k === y ? 1 : 0);
        break;
      }
      n = 0;
      for (let k = 0; k < z.length; k++) {
        if (z[k] !== 0) {
          indices[n] = k;
          values[n++] = z[k];
        }
      }
      inputs = layer.units;
    }
    return { residual, n, indices, values, inputs };
  };
}
