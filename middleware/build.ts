/**
 * Built-in models (MODEL=text|dense) or an existing tfjs LayersModel from MODEL_PATH — the latter is how the
 * sidecar wraps a learner a team already runs.
 */
import { tf } from '../core/tf';
import { TayguardError } from '../core/errors';
import { denseFeaturizer, hashedTextFeaturizer, type Featurizer } from './featurize';
import { TfjsLearner } from './learner';
import { loadLayersModelFromDir } from './files';

export interface BuildOptions {
  readonly inputDim: number;
  readonly numClasses: number;
  /** 0: logistic regression; otherwise one hidden ReLU layer of this width. */
  readonly hiddenUnits: number;
  readonly seed?: number;
}

/**
 * Layer names are fixed so that a checkpoint written by one process restores into a model built by another
 * (tfjs otherwise numbers layers by construction order across the whole process).
 */
export function buildModel(o: BuildOptions): tf.LayersModel {
  const model = tf.sequential({ name: 'tayguard' });
  const init = (salt: number) => tf.initializers.glorotUniform({ seed: o.seed === undefined ? undefined : o.seed + salt });
  if (o.hiddenUnits > 0) {
    model.add(tf.layers.dense({ name: 'hidden', inputShape: [o.inputDim], units: o.hiddenUnits, activation: 'relu', kernelInitializer: init(1) }));
    model.add(tf.layers.dense({ name: 'output', units: o.numClasses, activation: 'softmax', kernelInitializer: init(2) }));
  } else {
    model.add(tf.layers.dense({ name: 'output', inputShape: [o.inputDim], units: o.numClasses, activation: 'softmax', kernelInitializer: init(2) }));
  }
  return model;
}

export function featurizerFor(kind: 'text' | 'dense', dim: number): Featurizer {
  return kind === 'text' ? hashedTextFeaturizer(dim) : denseFeaturizer(dim);
}

/** What createLearner reads of the service's configuration (src/config.ts `Config` has these fields). */
export interface LearnerConfig {
  readonly model: { readonly kind: 'text' | 'dense'; readonly path?: string; readonly numClasses: number; readonly hiddenUnits: number; readonly inputDim: number };
  readonly training: { readonly seed?: string; readonly learningRate: number };
}

/** The learner the sidecar trains, from config. */
export async function createLearner(config: LearnerConfig): Promise<TfjsLearner> {
  const { kind, path, numClasses, hiddenUnits } = config.model;
  const seed = config.training.seed === undefined ? undefined : hashSeed(config.training.seed);
  let model: tf.LayersModel;
  if (path !== undefined) {
    model = await loadLayersModelFromDir(path);
  } else {
    model = buildModel({ inputDim: config.model.inputDim, numClasses, hiddenUnits, seed });
  }
  const inputDim = model.inputs[0]?.shape[1];
  if (typeof inputDim !== 'number') throw new TayguardError('MODEL_INVALID', `${path}: the model input must be [batch, features]`);
  if (path !== undefined && kind === 'dense' && config.model.inputDim !== 0 && config.model.inputDim !== inputDim) {
    throw new TayguardError('MODEL_INVALID', `FEATURE_DIM=${config.model.inputDim} but the model at MODEL_PATH reads ${inputDim} features: make them agree`);
  }
  const learner = new TfjsLearner(model, featurizerFor(kind, inputDim), { learningRate: config.training.learningRate });
  if (learner.numClasses !== numClasses) {
    throw new TayguardError('MODEL_INVALID', `the model outputs ${learner.numClasses} classes but NUM_CLASSES=${numClasses}: make them agree`);
  }
  return learner;
}

function hashSeed(seed: string): number {
  let h = 0;
  for (let i = 0; i < seed.length; i++) h = (Math.imul(h, 31) + seed.charCodeAt(i)) | 0;
  return Math.abs(h);
}
