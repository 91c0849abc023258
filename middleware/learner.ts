/**
 * The learner adapter: what tayguard needs from an online learner, and the built-in adapter for a tfjs
 * LayersModel. Library users wrap their own model with `new TfjsLearner(model, featurizer)`; the sidecar builds
 * one from config (middleware/build.ts).
 */
import { tf } from '../core/tf';
import type { Featurizer, Payload } from './featurize';
import { encodeBatch } from './featurize';
import { crossEntropySum, logitsFunction } from '../privacy/clipping/microbatch';
import { TayguardError } from '../core/errors';

export interface WeightsSnapshot {
  /** tfjs weight specs (name, shape, dtype), in model.weights order. */
  readonly specs: tf.io.WeightsManifestEntry[];
  readonly data: Buffer;
}

export interface Learner {
  readonly featurizer: Featurizer;
  readonly numClasses: number;
  readonly model: tf.LayersModel;
  /** Class probabilities for each payload. */
  predict(payloads: readonly Payload[]): number[][];
  /** Inputs and one-hot targets for a batch. Caller disposes. */
  batch(payloads: readonly Payload[], labels: readonly number[]): { x: tf.Tensor2D; y: tf.Tensor2D };
  /** Mean softmax cross-entropy loss of a batch, without updating (for held-out evaluation and gates). */
  loss(payloads: readonly Payload[], labels: readonly number[]): number;
  /** Mean loss and accuracy on prepared inputs (the update gate's canary set). */
  evaluate(x: tf.Tensor2D, y: tf.Tensor2D): Evaluation;
  /** One plain (non-private) SGD step on the mean loss. Returns the loss before the step. */
  sgdStep(x: tf.Tensor2D, y: tf.Tensor2D): number;
  /** Apply already-computed gradients (the privatize stage's clipped, noised average). */
  applyGradients(grads: tf.NamedTensorMap): void;
  snapshot(): WeightsSnapshot;
  restore(snapshot: WeightsSnapshot): void;
}

/** Weights as checkpoint bytes: float32, in the given order, with their tfjs specs. */
export function weightsToSnapshot(weights: readonly { name: string; read(): tf.Tensor }[]): WeightsSnapshot {
  const specs: tf.io.WeightsManifestEntry[] = [];
  const parts: Buffer[] = [];
  for (const w of weights) {
    const t = w.read();
    const values = t.dataSync() as Float32Array;
    specs.push({ name: w.name, shape: [...t.shape], dtype: 'float32' });
    parts.push(Buffer.from(values.buffer, values.byteOffset, values.byteLength));
  }
  return { specs, data: Buffer.concat(parts) };
}

/** Checkpoint bytes back into float32 arrays of the given shapes (the caller has checked the layout). */
export function snapshotValues(data: Buffer, shapes: readonly (readonly number[])[]): Float32Array[] {
  let offset = 0;
  return shapes.map((shape) => {
    const size = shape.reduce((a, b) => a * b, 1);
    const values = new Float32Array(size);
    Buffer.from(values.buffer).set(data.subarray(offset, offset + size * 4));
    offset += size * 4;
    return values;
  });
}

/** Mean cross-entropy from probabilities, clamped so that log(0) cannot appear: a metric (loss, evaluate), never a gradient. */
function clampedCrossEntropy(probs: tf.Tensor, y: tf.Tensor): tf.Scalar {
  return tf.tidy(() => tf.neg(tf.mean(tf.sum(tf.mul(y, tf.log(tf.clipByValue(probs, 1e-7, 1))), 1))) as tf.Scalar);
}

/**
 * Mean softmax cross-entropy from the LOGITS (log-softmax), not from clamped probabilities: clamping p to
 * [1e-7, 1] has zero gradient wherever the model is confidently wrong (p < 1e-7), so at large learning rates a
 * saturated model stopped learning for good (it froze at the majority class). The DP path has always used
 * logits (privacy/clipping); the plain path now agrees with it.
 */
function crossEntropyFromLogits(logits: tf.Tensor, y: tf.Tensor): tf.Scalar {
  return tf.tidy(() => tf.div(crossEntropySum(logits, y), y.shape[0] as number) as tf.Scalar);
}

const PREDICT_CHUNK = 128;

/** Mean loss and accuracy on a labelled set, and accuracy per true class (NaN for a class absent from the set). */
export interface Evaluation {
  readonly loss: number;
  readonly accuracy: number;
  readonly perClass: readonly number[];
}

/**
 * Overall and per-class accuracy from predicted and true class indices. Per class, because a targeted attack
 * (spam → ham only) can take one class down while the overall figure hides it behind the other class.
 */
export function accuracyByClass(predicted: ArrayLike<number>, actual: ArrayLike<number>, numClasses: number): { accuracy: number; perClass: number[] } {
  const hits = new Array<number>(numClasses).fill(0);
  const totals = new Array<number>(numClasses).fill(0);
  let all = 0;
  for (let i = 0; i < actual.length; i++) {
    const c = actual[i];
    totals[c] += 1;
    if (predicted[i] === c) {
      hits[c] += 1;
      all += 1;
    }
  }
  return { accuracy: actual.length === 0 ? NaN : all / actual.length, perClass: totals.map((n, c) => (n === 0 ? NaN : hits[c] / n)) };
}

export class TfjsLearner implements Learner {
  readonly numClasses: number;
  /** Bumped whenever the weights change, so that caches of them (middleware/fast-predict.ts) know to re-read. */
  weightsVersion = 0;
  private readonly optimizer: tf.SGDOptimizer;

  constructor(
    readonly model: tf.LayersModel,
    readonly featurizer: Featurizer,
    options: { learningRate: number },
  ) {
    const inShape = model.inputs[0]?.shape;
    const outShape = model.outputs[0]?.shape;
    if (model.inputs.length !== 1 || model.outputs.length !== 1 || inShape?.length !== 2 || outShape?.length !== 2) {
      throw new TayguardError('MODEL_INVALID', 'the model must have one input [batch, features] and one output [batch, classes]');
    }
    if (inShape[1] !== featurizer.dim) {
      throw new TayguardError(
        'MODEL_INVALID',
        `the model reads ${inShape[1]} inputs but the ${featurizer.kind} featurizer makes ${featurizer.dim} (set ${featurizer.kind === 'text' ? 'TEXT_HASH_DIM' : 'FEATURE_DIM'}=${inShape[1]})`,
      );
    }
    this.numClasses = outShape[1] as number;
    this.optimizer = tf.train.sgd(options.learningRate);
  }

  batch(payloads: readonly Payload[], labels: readonly number[]) {
    const x = tf.tensor2d(encodeBatch(this.featurizer, payloads), [payloads.length, this.featurizer.dim]);
    const y = tf.tidy(() => tf.oneHot(tf.tensor1d(labels as number[], 'int32'), this.numClasses).toFloat() as tf.Tensor2D);
    return { x, y };
  }

  predict(payloads: readonly Payload[]): number[][] {
    const rows: number[][] = [];
    // Chunked: a dense [n, 2^14] input for a large request would otherwise allocate n × 64 KB at once.
    for (let i = 0; i < payloads.length; i += PREDICT_CHUNK) {
      const part = payloads.slice(i, i + PREDICT_CHUNK);
      const x = tf.tensor2d(encodeBatch(this.featurizer, part), [part.length, this.featurizer.dim]);
      const probs = this.model.predict(x) as tf.Tensor2D;
      rows.push(...probs.arraySync());
      probs.dispose();
      x.dispose();
    }
    return rows;
  }

  loss(payloads: readonly Payload[], labels: readonly number[]): number {
    const { x, y } = this.batch(payloads, labels);
    try {
      return tf.tidy(() => clampedCrossEntropy(this.model.predict(x) as tf.Tensor, y).dataSync()[0]);
    } finally {
      x.dispose();
      y.dispose();
    }
  }

  evaluate(x: tf.Tensor2D, y: tf.Tensor2D): Evaluation {
    const [loss, predicted, actual] = tf.tidy(() => {
      const probs = this.model.predict(x) as tf.Tensor2D;
      return [clampedCrossEntropy(probs, y), tf.argMax(probs, 1), tf.argMax(y, 1)];
    });
    const out = { loss: loss.dataSync()[0], ...accuracyByClass(predicted.dataSync() as Int32Array, actual.dataSync() as Int32Array, this.numClasses) };
    loss.dispose();
    predicted.dispose();
    actual.dispose();
    return out;
  }

  sgdStep(x: tf.Tensor2D, y: tf.Tensor2D): number {
    this.weightsVersion += 1;
    const logits = logitsFunction(this.model);
    const cost = this.optimizer.minimize(() => crossEntropyFromLogits(logits(x), y), true);
    const value = cost ? cost.dataSync()[0] : NaN;
    cost?.dispose();
    return value;
  }

  applyGradients(grads: tf.NamedTensorMap): void {
    this.weightsVersion += 1;
    this.optimizer.applyGradients(grads);
  }

  snapshot(): WeightsSnapshot {
    return weightsToSnapshot(this.model.weights);
  }

  restore(snapshot: WeightsSnapshot): void {
    const weights = this.model.weights;
    if (snapshot.specs.length !== weights.length) {
      throw new TayguardError('CHECKPOINT_CORRUPT', `checkpoint holds ${snapshot.specs.length} weight tensors but the model has ${weights.length}: was the model configuration changed? Point CHECKPOINT_DIR elsewhere to start fresh.`);
    }
    snapshot.specs.forEach((spec, i) => {
      const expected = weights[i].shape.join('x');
      if (spec.shape.join('x') !== expected) {
        throw new TayguardError('CHECKPOINT_CORRUPT', `checkpoint weight ${spec.name} has shape ${spec.shape.join('x')}, the model expects ${expected}: was the model configuration changed?`);
      }
    });
    const tensors = snapshotValues(snapshot.data, snapshot.specs.map((spec) => spec.shape)).map((values, i) => tf.tensor(values, snapshot.specs[i].shape, 'float32'));
    this.model.setWeights(tensors);
    this.weightsVersion += 1;
    tensors.forEach((t) => t.dispose());
  }
}
