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

/** Held-out accuracy of plain SGD (the served average) after one pass over `stream` in order. */
export async function plainAccuracy(plainConfig: Config, stream: readonly LabelledText[], heldOut: readonly LabelledText[]): Promise<number> {
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
  const probs = serving.predict(heldOut);
  let right = 0;
  probs.forEach((p, k) => (right += p.indexOf(Math.max(...p)) === heldOut[k].label ? 1 : 0));
  average?.dispose();
  for (const l of [learner, serving]) l.model.dispose();
  return right / heldOut.length;
}
