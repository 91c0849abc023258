/**
 * Trains the witness (src/witness.ts) and calibrates its bars by cross-fitting (k-fold cross-validation used for
 * calibration: Stone 1974; the "cross-fitting" of Chernozhukov et al. 2018; the jackknife+/CV+ conformal
 * calibration of Barber, Candès, Ramdas & Tibshirani 2021): the trusted records are split into `folds` folds, a
 * model trained on the other folds scores each fold, and the bars are quantiles of these out-of-fold scores of
 * EVERY trusted record; the witness that judges the stream is then trained on all of them. A held-out share (the
 * former scheme, `folds: 1`) trains the witness on 75% of an already small set and sets a 0.5% bar from a quarter
 * of it — with 200 trusted mails, the single lowest of 50 (bench/results/witness.md).
 *
 * A fold model saw (k − 1)/k of the records, so it is a little weaker than the final witness and its out-of-fold
 * p(label) a little lower: the bars err towards holding back less, never more.
 *
 * With `perLabel` (off by default), the bar for label y is the `falseQuarantine` quantile of p(y) over the
 * trusted records labelled y alone, when every label has MIN_CALIBRATION of them. Measured worse than one bar over
 * all labels (filters/config.ts): a label's share of a small set resolves its tail even less.
 */
import seedrandom from 'seedrandom';
import type { TrainingRecord } from '../core/record';
import { abusivePartScore, textWindows, type WitnessModel } from '../filters/witness';
import { fastPredictor, sparseForward } from '../middleware/fast-predict';
import type { Payload } from '../middleware/featurize';
import type { TfjsLearner } from '../middleware/learner';
import { hashedWindowRows } from '../middleware/windows';
import { trainEpochs } from './pretrain/pretrain';

/** Out-of-fold (or held-out) records needed to calibrate a rule. */
export const MIN_CALIBRATION = 20;

export interface FitOptions {
  readonly kind: 'text' | 'dense';
  /** A fresh learner (same initial weights every call). */
  readonly newLearner: () => Promise<TfjsLearner>;
  readonly epochs: number;
  /** Fewest SGD steps: more epochs than `epochs` when the trusted set is small. */
  readonly minSteps: number;
  readonly batchSize: number;
  /** Windows of each trusted text added to the training, labelled like the text (text with the parts rule). */
  readonly trainingWindows: number;
  /** ≥ 2: cross-fitting with this many folds; 1: the held-out share `heldOut` calibrates, the rest trains. */
  readonly folds: number;
  readonly heldOut: number;
  readonly falseQuarantine: number;
  readonly maxLabelProbability: number;
  readonly minPartThreshold: number;
  readonly perLabel: boolean;
  /** The parts rule (text with abuse labels), or null when it is off. */
  readonly parts: { readonly tokens: number; readonly maxChars: number; readonly abuse: readonly number[] } | null;
}

export interface FittedWitness extends Pick<WitnessModel, 'predict' | 'windowProbabilities' | 'labelThreshold' | 'labelThresholds' | 'partThreshold'> {
  readonly learner: TfjsLearner;
  readonly trainedOn: number;
  /** Records whose out-of-fold (or held-out) score calibrated the bars. */
  readonly calibratedOn: number;
  readonly folds: number;
  /** Out-of-fold (or held-out) accuracy; null without calibration records. */
  readonly accuracy: number | null;
  /** Each record's p(label) from the model that did not train on it, in input order (NaN: not used to calibrate). */
  readonly outOfFold: readonly number[];
  /** Out-of-fold records of an "acceptable" label the parts rule was calibrated on (when the rule is on). */
  readonly partCalibration: number;
}

type Scorer = Pick<WitnessModel, 'predict' | 'windowProbabilities'>;

/** Trains on `train` (with its windows for the parts rule) and returns the learner and how it scores. */
async function trainOn(train: readonly TrainingRecord[], o: FitOptions): Promise<{ learner: TfjsLearner; scorer: Scorer }> {
  const learner = await o.newLearner();
  const set = o.parts ? train.flatMap((r) => [r, ...windowsOf(r, o.parts!.tokens, o.parts!.maxChars, o.trainingWindows)]) : train;
  // At least minSteps SGD steps: a small trusted set gets more passes (epochs) rather than fewer steps.
  const epochs = Math.max(o.epochs, Math.ceil(o.minSteps / Math.max(1, Math.ceil(set.length / o.batchSize))));
  if (set.length > 0) trainEpochs(learner, set, { epochs, batchSize: o.batchSize, seed: 'tayguard-witness' });
  const predict = fastPredictor(learner);
  // Windows scored from rows hashed once per token (middleware/windows.ts) when the witness is a Dense chain over hashed text.
  const forward = o.kind === 'text' ? sparseForward(learner) : undefined;
  const dim = learner.featurizer.dim;
  const windowProbabilities = forward ? (text: string, tokens: number, maxChars: number) => hashedWindowRows(text, dim, tokens, maxChars).map(forward) : undefined;
  return { learner, scorer: { predict, ...(windowProbabilities ? { windowProbabilities } : {}) } };
}

interface Scored {
  readonly label: number;
  readonly probs: ArrayLike<number>;
  /** Abuse score of the worst window (text of an acceptable label, parts rule on). */
  readonly part?: number;
}

function score(scorer: Scorer, r: TrainingRecord, o: FitOptions): Scored {
  const probs = scorer.predict(payloadOf(r));
  const p = o.parts;
  const part = p && r.text && !p.abuse.includes(r.label) ? abusivePartScore(scorer, r.text, p.abuse, p.tokens, p.maxChars) : undefined;
  return { label: r.label, probs, ...(part !== undefined ? { part } : {}) };
}

/** The records' indices in a fixed pseudo-random order (same files, same order, same witness at every start). */
function shuffledOrder(n: number): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  const rng = seedrandom('tayguard-witness-split');
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

/** Each record's fold: the fixed shuffle, grouped by label, dealt out in turn (stratified: every fold has each label's share). */
export function foldsOf(records: readonly TrainingRecord[], k: number): number[] {
  const order = shuffledOrder(records.length).sort((a, b) => records[a].label - records[b].label); // stable: shuffle kept within a label
  const fold = new Array<number>(records.length);
  order.forEach((i, n) => (fold[i] = n % k));
  return fold;
}

/** The witness trained on all trusted records (or all but the held-out share), with its calibrated bars. */
export async function fitWitness(records: readonly TrainingRecord[], o: FitOptions): Promise<FittedWitness> {
  const calibrate = records.length >= 2 * MIN_CALIBRATION;
  const k = calibrate ? Math.min(o.folds, records.length) : 0;
  const scored: Scored[] = [];
  const outOfFold = new Array<number>(records.length).fill(NaN);
  let train: readonly TrainingRecord[] = records;
  if (k >= 2) {
    const fold = foldsOf(records, k);
    for (let f = 0; f < k; f++) {
      const { learner, scorer } = await trainOn(records.filter((_, i) => fold[i] !== f), o);
      for (let i = 0; i < records.length; i++) {
        if (fold[i] !== f) continue;
        const sc = score(scorer, records[i], o);
        scored.push(sc);
        outOfFold[i] = sc.probs[sc.label] ?? 0;
      }
      learner.model.dispose();
    }
  } else if (k === 1) {
    // The first records of the fixed shuffle are held out.
    const order = shuffledOrder(records.length);
    const nHeld = Math.ceil(o.heldOut * records.length);
    const held = order.slice(0, nHeld).map((i) => records[i]);
    train = order.slice(nHeld).map((i) => records[i]);
    const fitted = await trainOn(train, o);
    for (const i of order.slice(0, nHeld)) {
      const sc = score(fitted.scorer, records[i], o);
      scored.push(sc);
      outOfFold[i] = sc.probs[sc.label] ?? 0;
    }
    return { ...fitted.scorer, ...calibrateBars(scored, o), learner: fitted.learner, trainedOn: train.length, calibratedOn: held.length, folds: 1, accuracy: accuracyOf(scored), outOfFold };
  }
  const fitted = await trainOn(train, o);
  return { ...fitted.scorer, ...calibrateBars(scored, o), learner: fitted.learner, trainedOn: train.length, calibratedOn: scored.length, folds: k, accuracy: accuracyOf(scored), outOfFold };
}

function accuracyOf(scored: readonly Scored[]): number | null {
  if (scored.length === 0) return null;
  return scored.filter((s) => argmax(s.probs) === s.label).length / scored.length;
}

/** The bar below which at most `q` of `values` lie (the value at that rank is not held back: the rule is p < bar). */
export function lowerBar(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(q * sorted.length)];
}

/**
 * The two rules share one budget: together they hold back at most `falseQuarantine` of the calibration records.
 * The parts bar takes at most half of it (its (1 − falseQuarantine/2) quantile, never below minPartThreshold);
 * the whole-record bar then takes what is left, over the records the parts rule passes. (Calibrated each to the
 * whole budget, the two added up: 1,000 trusted mails held back 1.4% of honest mail at falseQuarantine 1%.)
 */
function calibrateBars(scored: readonly Scored[], o: FitOptions): Pick<FittedWitness, 'labelThreshold' | 'labelThresholds' | 'partThreshold' | 'partCalibration'> {
  const out: { labelThreshold?: number; labelThresholds?: number[]; partThreshold?: number; partCalibration: number } = { partCalibration: 0 };
  const parts = scored.filter((s) => s.part !== undefined).map((s) => s.part as number);
  out.partCalibration = parts.length;
  if (o.parts && parts.length >= MIN_CALIBRATION) {
    parts.sort((a, b) => a - b);
    const q = parts[Math.min(parts.length - 1, Math.ceil((1 - o.falseQuarantine / 2) * parts.length) - 1)];
    out.partThreshold = Math.max(o.minPartThreshold, q);
  }
  if (scored.length >= MIN_CALIBRATION) {
    const byParts = (s: Scored) => out.partThreshold !== undefined && s.part !== undefined && s.part > out.partThreshold;
    const bar = (group: readonly Scored[]) => {
      const left = Math.floor(o.falseQuarantine * group.length) - group.filter(byParts).length;
      const rest = group.filter((s) => !byParts(s)).map((s) => s.probs[s.label] ?? 0);
      // p < bar holds back the `left` lowest (the next one up is not held back).
      const sorted = rest.sort((a, b) => a - b);
      return Math.min(o.maxLabelProbability, sorted[Math.max(0, left)] ?? o.maxLabelProbability);
    };
    out.labelThreshold = bar(scored);
    const labels = [...new Set(scored.map((s) => s.label))].sort((a, b) => a - b);
    const byLabel = labels.map((l) => scored.filter((s) => s.label === l));
    if (o.perLabel && byLabel.every((v) => v.length >= MIN_CALIBRATION)) {
      const thresholds: number[] = [];
      labels.forEach((l, j) => (thresholds[l] = bar(byLabel[j])));
      // A label no trusted record carries keeps the pooled bar.
      for (let l = 0; l < thresholds.length; l++) thresholds[l] ??= out.labelThreshold;
      out.labelThresholds = thresholds;
    }
  }
  return out;
}

function argmax(p: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < p.length; i++) if (p[i] > p[best]) best = i;
  return best;
}

function payloadOf(r: TrainingRecord): Payload {
  return r.features !== undefined ? { features: r.features } : { text: r.text ?? '' };
}

/** Up to `max` of a text record's windows (evenly spread), as records with the same label. */
function windowsOf(r: TrainingRecord, tokens: number, maxChars: number, max: number): TrainingRecord[] {
  if (!r.text || max === 0) return [];
  const all = textWindows(r.text, tokens, maxChars);
  if (all.length <= 1) return [];
  const every = Math.max(1, Math.ceil(all.length / max));
  return all.filter((_, i) => i % every === 0).map((text, i) => ({ ...r, id: `${r.id}#w${i}`, text }));
}
