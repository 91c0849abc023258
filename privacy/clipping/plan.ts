/**
 * Model analysis shared by both clipping paths: which layers form a simple chain, which layer produces the
 * logits, and whether every layer is one the ghost-norm path can differentiate by hand.
 *
 * Loss convention (task contract): softmax cross-entropy per example on the logits. When the last layer is a
 * Dense (or Activation) layer with activation 'softmax' its PRE-activation is used as logits, so the loss is
 * computed stably from log-softmax instead of log(softmax(z)); otherwise the model output is the logits.
 */
import type { LayerVariable } from '@tensorflow/tfjs-layers/dist/variables';
import { tf } from '../../core/tf';

export type Layer = tf.layers.Layer;
export type Activation = 'linear' | 'relu' | 'sigmoid' | 'tanh' | 'softmax';
const ACTIVATIONS: ReadonlySet<string> = new Set<Activation>(['linear', 'relu', 'sigmoid', 'tanh', 'softmax']);

export type GhostStep =
  | {
      kind: 'dense';
      kernel: LayerVariable;
      bias?: LayerVariable;
      act: Activation;
      /** Last layer with softmax: its pre-activation z is the logits, the activation is dropped. */
      logits: boolean;
      kernelTrainable: boolean;
      biasTrainable: boolean;
    }
  | { kind: 'embedding'; table: LayerVariable; vocab: number; trainable: boolean }
  | { kind: 'flatten' }
  | { kind: 'activation'; act: Activation; logits: boolean }
  | { kind: 'identity' };

/** The key optimizer.applyGradients expects: the name of the tf.Variable behind the LayerVariable. */
export function varName(v: LayerVariable): string {
  return (v.read() as tf.Variable).name;
}

export interface GhostPlan {
  steps: GhostStep[];
}

export type GhostAnalysis = { plan: GhostPlan; reason?: undefined } | { plan?: undefined; reason: string };

/** Keyed by model; `sig` (the trainable weights' ids) invalidates the plan when layers are (un)frozen. */
const cache = new WeakMap<tf.LayersModel, { sig: string; analysis: GhostAnalysis }>();

/**
 * The model's layers (without the InputLayer) when they form a single-input single-output chain, i.e. each
 * layer is applied exactly once to the previous layer's output; undefined otherwise (branches, shared layers,
 * multiple inputs).
 */
export function chainLayers(model: tf.LayersModel): Layer[] | undefined {
  if (model.inputs.length !== 1 || model.outputs.length !== 1) return undefined;
  if (model instanceof tf.Sequential) return model.layers;
  const layers = model.layers.filter((l) => l.getClassName() !== 'InputLayer');
  let prev: Layer | undefined = model.layers.find((l) => l.getClassName() === 'InputLayer');
  if (prev === undefined) return undefined;
  for (const layer of layers) {
    const nodes = layer.inboundNodes;
    if (nodes.length !== 1 || nodes[0].inboundLayers.length !== 1 || nodes[0].inboundLayers[0] !== prev) {
      return undefined;
    }
    prev = layer;
  }
  return layers;
}

function activationOf(layer: Layer): string {
  return String(layer.getConfig().activation ?? 'linear');
}

/** True when the last layer's activation is softmax, i.e. the logits are its pre-activation. */
export function softmaxHead(layer: Layer): boolean {
  const cls = layer.getClassName();
  return (cls === 'Dense' || cls === 'Activation') && activationOf(layer) === 'softmax';
}

/**
 * Ghost-path plan, or the reason the model is not supported (then 'auto' uses the micro-batch fallback).
 * Cached per model: the plan holds the LayerVariables, whose values are read at every call.
 */
export function analyseGhost(model: tf.LayersModel): GhostAnalysis {
  const sig = model.trainableWeights.map((w) => w.id).join(',');
  const hit = cache.get(model);
  if (hit !== undefined && hit.sig === sig) return hit.analysis;
  const analysis = analyse(model);
  cache.set(model, { sig, analysis });
  return analysis;
}

function analyse(model: tf.LayersModel): GhostAnalysis {
  const layers = chainLayers(model);
  if (layers === undefined) return { reason: 'model is not a single-input single-output chain of layers' };
  const trainable = new Set(model.trainableWeights);
  const covered = new Set<LayerVariable>();
  // Rank of the activation flowing between layers (batch axis included); Dense ghost norms need rank 2
  // (for rank 3 the per-example gradient is a sum over positions, Li et al. 2021 — not implemented).
  let rank = model.inputs[0].shape.length;
  const steps: GhostStep[] = [];
  for (let k = 0; k < layers.length; k++) {
    const layer = layers[k];
    const last = k === layers.length - 1;
    const cls = layer.getClassName();
    if (cls === 'Dense') {
      const act = activationOf(layer);
      if (!ACTIVATIONS.has(act)) return { reason: `Dense layer ${layer.name} has unsupported activation ${act}` };
      if (rank !== 2) return { reason: `Dense layer ${layer.name} has a rank-${rank} input (needs rank 2)` };
      const [kernel, bias] = layer.weights;
      const useBias = layer.getConfig().useBias !== false && bias !== undefined;
      steps.push({
        kind: 'dense',
        kernel,
        bias: useBias ? bias : undefined,
        act: act as Activation,
        logits: last && act === 'softmax',
        kernelTrainable: trainable.has(kernel),
        biasTrainable: useBias && trainable.has(bias),
      });
      covered.add(kernel);
      if (useBias) covered.add(bias);
    } else if (cls === 'Embedding') {
      const cfg = layer.getConfig();
      if (k !== 0) return { reason: `Embedding layer ${layer.name} is not the first layer` };
      if (cfg.maskZero === true) return { reason: `Embedding layer ${layer.name} has maskZero` };
      if (rank !== 2) return { reason: `Embedding layer ${layer.name} needs a [batch, length] input` };
      const table = layer.weights[0];
      steps.push({ kind: 'embedding', table, vocab: Number(cfg.inputDim), trainable: trainable.has(table) });
      covered.add(table);
      rank = 3;
    } else if (cls === 'Flatten') {
      steps.push({ kind: 'flatten' });
      rank = 2;
    } else if (cls === 'Dropout') {
      // Dropout is applied as in inference (identity), matching layer.apply() without {training: true}.
      steps.push({ kind: 'identity' });
    } else if (cls === 'Activation') {
      const act = activationOf(layer);
      if (!ACTIVATIONS.has(act)) return { reason: `Activation layer ${layer.name} has unsupported ${act}` };
      steps.push({ kind: 'activation', act: act as Activation, logits: last && act === 'softmax' });
    } else {
      return { reason: `layer ${layer.name} (${cls}) is not supported by ghost norms` };
    }
    if (layer.weights.some((w) => trainable.has(w) && !covered.has(w))) {
      return { reason: `layer ${layer.name} has trainable weights the ghost path does not know` };
    }
  }
  if (steps.length === 0) return { reason: 'model has no layers' };
  return { plan: { steps } };
}
