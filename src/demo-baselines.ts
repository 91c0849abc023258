/**
 * The demo's yardsticks: what a learner WITHOUT tayguard would have served on the same stream.
 *
 * A private, screened model is only worth running if it is not much worse than what the operator would have had
 * otherwise. After the sidecar's run the demo trains, in-process and on the same messages in the same order:
 *   - naive: plain minibatch SGD on every well-formed record, flood included (no screens, no DP) — the model an
 *     unprotected online learner would serve after the attack;
 *   - non-private, clean: plain SGD on the honest mails only (no flood, no DP) — the best the stream allows, so
 *     "DP and screens cost X points" is read against it.
 * Both use the sidecar's own model, featurizer, learning rate for DP_ENABLED=false, batch size and served moving
 * average (train/plain.ts, train/average.ts), so the only differences are the screens and the privacy.
 */
import type { Config } from './config';
import { buildModel, featurizerFor } from '../middleware/build';
import { TfjsLearner } from '../middleware/learner';
import { WeightAverage } from '../train/average';
import { PlainTrainer } from '../train/plain';
import { createMetrics } from './metrics';

export interface LabelledText {
  readonly text: string;
  readonly label: number;
}

/** Share of `set` a model's argmax agrees with the set's labels. */
export function agreement(predict: (set: readonly LabelledText[]) => number[][], set: readonly LabelledText[]): number {
  let right = 0;
  predict(set).forEach((p, k) => (right += p.indexOf(Math.max(...p)) === set[k].label ? 1 : 0));
  return right / set.length;
}

/**
 * Plain SGD (the served average) after one pass over `stream` in order; returns its agreement with each of `sets`
 * (held-out accuracy, or — for a set labelled as the attacker wants — the attack's success).
 */
export async function plainAgreement(plainConfig: Config, stream: readonly LabelledText[], sets: readonly (readonly LabelledText[])[]): Promise<number[]> {
  const { model, training } = plainConfig;
  const make = () =>
    new TfjsLearner(buildModel({ inputDim: model.inputDim, numClasses: model.numClasses, hiddenUnits: model.hiddenUnits, seed: 1 }), featurizerFor(model.kind, model.inputDim), {
      learningRate: training.learningRate,
    });
  const learner = make();
  const average = training.averageDecay > 0 ? new WeightAverage(learner, training.averageDecay) : undefined;
  const trainer = new PlainTrainer(learner, createMetrics(), training.batchSize, average ? [average.stage()] : []);
  let i = 0;
  for (const r of stream) await trainer.admit({ id: `b${i++}`, source: 'baseline', label: r.label, text: r.text });
  await trainer.flush();
  const serving = make();
  serving.restore(average ? average.snapshot() : learner.snapshot());
  const out = sets.map((set) => agreement((x) => serving.predict(x), set));
  average?.dispose();
  for (const l of [learner, serving]) l.model.dispose();
  return out;
}
