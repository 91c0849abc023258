/**
 * The loss-threshold membership attack (Yeom et al. 2018, "Privacy Risk in Machine Learning", the
 * "threshold" adversary): members of the training set tend to have lower loss, so score = −loss and flag
 * "member" when the loss is below a threshold τ (Yeom et al. use τ = the mean training loss; the ROC metrics in
 * ./metrics sweep every τ).
 *
 * Losses are computed from the model's class probabilities as −log p_y = log(1 + Σ_{j≠y} p_j / p_y), which
 * stays distinct for well-memorised examples whose float32 p_y rounds to 1 (−log p_y would then be exactly 0
 * for all of them, and ties destroy the low-FPR end of the ROC curve).
 */
import { TayguardError } from '../../core/errors';
import { tf } from '../../core/tf';

/** Smallest probability used in logs: float32's smallest normal, so log never sees 0. */
const TINY = 1.1754943508222875e-38;
const PREDICT_CHUNK = 256;

export interface Probabilities {
  /** Row-major [n, classes] class probabilities. */
  readonly values: Float32Array;
  readonly n: number;
  readonly classes: number;
}

/** Class probabilities of a softmax-output model, predicted in chunks (inputs: [n, ...features]). */
export function predictProbabilities(model: tf.LayersModel, x: tf.Tensor): Probabilities {
  const n = x.shape[0];
  const classes = model.outputs[0]?.shape[1];
  if (typeof classes !== 'number') {
    throw new TayguardError('MODEL_INVALID', 'the model must output [batch, classes] probabilities');
  }
  const values = new Float32Array(n * classes);
  for (let start = 0; start < n; start += PREDICT_CHUNK) {
    const size = Math.min(PREDICT_CHUNK, n - start);
    const part = tf.tidy(() => {
      const slice = tf.slice(x, [start], [size]);
      return (model.predict(slice) as tf.Tensor).dataSync() as Float32Array;
    });
    values.set(part, start * classes);
  }
  return { values, n, classes };
}

function checkLabels(probs: Probabilities, labels: ArrayLike<number>): void {
  if (labels.length !== probs.n) {
    throw new TayguardError('ARGUMENT_INVALID', `got ${probs.n} probability rows but ${labels.length} labels; pass one label per example`);
  }
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i];
    if (!Number.isInteger(y) || y < 0 || y >= probs.classes) {
      throw new TayguardError('ARGUMENT_INVALID', `label ${i} is ${y}; labels must be class indices in [0, ${probs.classes})`);
    }
  }
}

/** p_y and Σ_{j≠y} p_j for example i (the latter summed directly, not as 1 − p_y, to keep its precision). */
export function trueAndOther(probs: Probabilities, i: number, y: number): { pTrue: number; pOther: number } {
  const row = i * probs.classes;
  let other = 0;
  for (let j = 0; j < probs.classes; j++) if (j !== y) other += probs.values[row + j];
  return { pTrue: probs.values[row + y], pOther: other };
}

/** Per-example cross-entropy −log p_y. */
export function crossEntropyLosses(probs: Probabilities, labels: ArrayLike<number>): Float64Array {
  checkLabels(probs, labels);
  const out = new Float64Array(probs.n);
  for (let i = 0; i < probs.n; i++) {
    const { pTrue, pOther } = trueAndOther(probs, i, labels[i]);
    out[i] = Math.log1p(pOther / Math.max(pTrue, TINY));
  }
  return out;
}

/** Yeom et al. scores: −loss (higher = more likely a member). */
export function lossAttackScores(probs: Probabilities, labels: ArrayLike<number>): Float64Array {
  const losses = crossEntropyLosses(probs, labels);
  for (let i = 0; i < losses.length; i++) losses[i] = -losses[i];
  return losses;
}

/** Convenience: predict, then score. */
export function lossAttackScoresForModel(model: tf.LayersModel, x: tf.Tensor, labels: ArrayLike<number>): Float64Array {
  return lossAttackScores(predictProbabilities(model, x), labels);
}

/** Yeom et al.'s decision rule: member iff loss ≤ threshold (their threshold: the mean training loss). */
export function yeomMembershipGuess(losses: ArrayLike<number>, threshold: number): Uint8Array {
  const out = new Uint8Array(losses.length);
  for (let i = 0; i < losses.length; i++) out[i] = losses[i] <= threshold ? 1 : 0;
  return out;
}
