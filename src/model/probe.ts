/**
 * Never publish or serve a broken model (issue 14: plain SGD on features of 1e308 published a model whose
 * predictions were {"label": -1, "probabilities": [null, null]}). A version is published only if every weight is
 * finite and the model answers a probe with valid probabilities; a prediction is answered only with a label in
 * 0 … NUM_CLASSES-1 and finite probabilities, else 503 MODEL_UNHEALTHY.
 */
import type { Learner, WeightsSnapshot } from '../../middleware/learner';
import type { Payload } from '../../middleware/featurize';
import { TayguardError } from '../errors';

/** Every float32 of the snapshot is finite. */
export function snapshotFinite(snapshot: WeightsSnapshot): boolean {
  const values = new Float32Array(snapshot.data.buffer, snapshot.data.byteOffset, Math.floor(snapshot.data.byteLength / 4));
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) return false;
  return true;
}

function probePayloads(learner: Pick<Learner, 'featurizer'>): Payload[] {
  const f = learner.featurizer;
  if (f.kind === 'text') return [{ text: 'tayguard probe: free money meeting agenda' }, { text: '' }];
  const dim = f.dim;
  return [{ features: new Array<number>(dim).fill(0) }, { features: Array.from({ length: dim }, (_, i) => (i % 2 === 0 ? 1 : -1)) }];
}

/** Why these probabilities are not a valid answer, or null when they are. */
export function invalidProbabilities(rows: readonly (readonly number[])[], numClasses: number): string | null {
  for (const row of rows) {
    if (row.length !== numClasses) return `a prediction has ${row.length} probabilities, not ${numClasses}`;
    let sum = 0;
    for (const p of row) {
      if (!Number.isFinite(p) || p < 0 || p > 1) return `a probability is ${p}`;
      sum += p;
    }
    if (Math.abs(sum - 1) > 1e-3) return `probabilities sum to ${sum}`;
  }
  return null;
}

/**
 * Load `candidate` into `serving` and probe it. On failure `serving` is put back as it was and the reason returned;
 * on success `serving` holds the candidate and null is returned.
 */
export function probeCandidate(serving: Learner, candidate: WeightsSnapshot): string | null {
  if (!snapshotFinite(candidate)) return 'a weight is NaN or Infinity';
  const previous = serving.snapshot();
  serving.restore(candidate);
  let problem: string | null;
  try {
    problem = invalidProbabilities(serving.predict(probePayloads(serving)), serving.numClasses);
  } catch (e) {
    problem = `the probe prediction threw: ${(e as Error).message}`;
  }
  if (problem) serving.restore(previous);
  return problem;
}

/** The label of one prediction: argmax, only ever in 0 … numClasses-1; throws MODEL_UNHEALTHY on invalid rows. */
export function labelOf(probabilities: readonly number[], numClasses: number): number {
  const problem = invalidProbabilities([probabilities], numClasses);
  if (problem) {
    throw new TayguardError('MODEL_UNHEALTHY', `the served model gave an invalid prediction (${problem}); it is not answered. Check /readyz, /v1/model and the log for "rolled back" alerts`, { retriable: true });
  }
  let best = 0;
  for (let i = 1; i < probabilities.length; i++) if (probabilities[i] > probabilities[best]) best = i;
  return best;
}
