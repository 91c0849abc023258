/**
 * Influence by account age (train/influence.ts) with the real DP trainer (train/dp.ts): a record from an account the
 * deployment says is brand new moves the weights by w_min of what the same record from a mature account does. One
 * step with q = 1 and W = 1 (every slot in it), the same seeded coins and noise in every run, so two runs' weights
 * differ by exactly lr·(difference of the clipped sums)/(q·W·S) — as in test/train/source-clip.test.ts.
 */
import seedrandom from 'seedrandom';
import { initTf } from '../../core/tf';
import { buildModel, featurizerFor } from '../../middleware/build';
import { TfjsLearner } from '../../middleware/learner';
import { createMetrics } from '../../src/metrics';
import { DpTrainer, type DpOptions } from '../../train/dp';
import { influenceWeight, stepWeights, type InfluenceOptions } from '../../train/influence';
import type { SourceMeta, TrainingRecord } from '../../core/record';

beforeAll(async () => {
  await initTf();
});

const DAY = 86_400_000;
const T = Date.UTC(2026, 0, 15);
const iso = (ms: number) => new Date(ms).toISOString();
const AGE: InfluenceOptions = { matureMs: 30 * DAY, minWeight: 0.1 };

describe('influenceWeight: from the record alone', () => {
  const at = (createdAt: number, extra: Partial<SourceMeta> = {}) => ({ ts: T, sourceMeta: { createdAt: iso(createdAt), ...extra } });

  it('grows linearly with the account age from w_min to 1 at INFLUENCE_MATURE_DAYS', () => {
    expect(influenceWeight(at(T - 60_000), AGE)).toBe(0.1);
    expect(influenceWeight(at(T - 2 * DAY), AGE)).toBe(0.1); // 2/30 < w_min
    expect(influenceWeight(at(T - 15 * DAY), AGE)).toBeCloseTo(0.5, 12);
    expect(influenceWeight(at(T - 30 * DAY), AGE)).toBe(1);
    expect(influenceWeight(at(T - 3 * 365 * DAY), AGE)).toBe(1);
  });

  it('gives w_min to an account created after the event (age 0), and when the age cannot be established', () => {
    expect(influenceWeight(at(T + 10 * DAY), AGE)).toBe(0.1);
    expect(influenceWeight({ sourceMeta: { createdAt: iso(T - 365 * DAY) } }, AGE)).toBe(0.1); // no event time
    expect(influenceWeight({ ts: T, sourceMeta: { createdAt: 'not a date' } }, AGE)).toBe(0.1);
  });

  it('gives 1 to a verified account, and to a record whose account nothing is vouched for', () => {
    expect(influenceWeight(at(T - 60_000, { verified: true }), AGE)).toBe(1);
    expect(influenceWeight(at(T - 60_000, { verified: false }), AGE)).toBe(0.1);
    expect(influenceWeight({ ts: T }, AGE)).toBe(1);
    expect(influenceWeight({ ts: T, sourceMeta: { verified: false } }, AGE)).toBe(1);
  });

  it('stepWeights: one per row, 1 for padding; undefined when off (w_min = 1) or when every weight is 1', () => {
    const young = { id: 'y', source: 'y', label: 0, ...at(T - 60_000) } as TrainingRecord;
    const old = { id: 'o', source: 'o', label: 0, ...at(T - 100 * DAY) } as TrainingRecord;
    expect(Array.from(stepWeights([young, old], 2, AGE) ?? [])).toEqual([Math.fround(0.1), 1, 1, 1]);
    expect(stepWeights([old, old], 3, AGE)).toBeUndefined();
    expect(stepWeights([young], 0, { ...AGE, minWeight: 1 })).toBeUndefined();
    expect(stepWeights([young], 0, undefined)).toBeUndefined();
  });
});

const SLOTS = 40;
const base: DpOptions = {
  sampleRate: 1,
  noiseMultiplier: 1,
  clipNorm: 0.05,
  window: 1,
  stepEveryRecords: SLOTS,
  epsilonLimit: 1000,
  delta: 1e-5,
  unit: 'record',
  maxRecordsPerSource: 4,
  accountant: 'rdp',
  seed: 'influence',
  influence: AGE,
};
const LR = 1;
const WORDS = ['invoice', 'meeting', 'lunch', 'report', 'schedule', 'garden', 'picnic', 'team'];
const honest = (i: number): TrainingRecord => {
  const rng = seedrandom(`h${i}`);
  // Honest accounts a year old: full weight.
  return { id: `h${i}`, source: `honest-${i}`, ts: T, sourceMeta: { createdAt: iso(T - 365 * DAY) }, label: i % 2, text: Array.from({ length: 5 }, () => WORDS[Math.floor(rng() * WORDS.length)]).join(' ') };
};

/** One DP step over SLOTS slots: even slots honest, slot 1 holds `x` when given, the other odd slots are empty. */
async function weightsAfter(x: TrainingRecord | undefined, o: DpOptions = base): Promise<Float64Array> {
  const learner = new TfjsLearner(buildModel({ inputDim: 64, numClasses: 2, hiddenUnits: 0, seed: 1 }), featurizerFor('text', 64), { learningRate: LR });
  const trainer = new DpTrainer(learner, createMetrics(), o);
  for (let i = 0; i < SLOTS; i++) {
    if (i % 2 === 0) await trainer.admit(honest(i));
    else if (i === 1 && x !== undefined) await trainer.admit(x);
    else await trainer.pass();
  }
  expect(trainer.ledger.steps).toBe(1);
  return Float64Array.from(learner.model.getWeights().flatMap((w) => Array.from(w.dataSync())));
}

const dist = (a: Float64Array, b: Float64Array): number => Math.sqrt(a.reduce((s, v, k) => s + (v - b[k]) ** 2, 0));
const spam = (meta: SourceMeta | undefined): TrainingRecord => ({ id: 'x', source: 'spammer', ts: T, label: 1, text: 'free money prize winner casino', ...(meta ? { sourceMeta: meta } : {}) });

describe('INFLUENCE_* with the DP trainer', () => {
  let none: Float64Array;
  let matureMove: number;
  beforeAll(async () => {
    none = await weightsAfter(undefined);
    matureMove = dist(await weightsAfter(spam({ createdAt: iso(T - 365 * DAY) })), none);
  });

  it("a brand-new account's record moves the weights by w_min of what a mature account's does (≤ lr·w_min·C/(q·W·S))", async () => {
    const bound = (LR * base.clipNorm) / (base.sampleRate * base.window * base.stepEveryRecords);
    // The record is longer than C, so from a mature account it moves the weights by the full bound.
    expect(matureMove).toBeGreaterThan(0.99 * bound);
    const youngMove = dist(await weightsAfter(spam({ createdAt: iso(T - 3_600_000) })), none);
    expect(youngMove).toBeLessThanOrEqual(0.1 * matureMove * (1 + 1e-2));
    expect(youngMove).toBeGreaterThan(0.09 * matureMove);
    // Half-way to mature: half the pull.
    const halfMove = dist(await weightsAfter(spam({ createdAt: iso(T - 15 * DAY) })), none);
    expect(halfMove / matureMove).toBeCloseTo(0.5, 2);
  });

  it('a young account the deployment verified, a record without sourceMeta, and INFLUENCE_MIN_WEIGHT=1 all pull in full', async () => {
    const young = { createdAt: iso(T - 3_600_000) };
    for (const move of [
      dist(await weightsAfter(spam({ ...young, verified: true })), none),
      dist(await weightsAfter(spam(undefined)), none),
      dist(await weightsAfter(spam(young), { ...base, influence: { ...AGE, minWeight: 1 } }), await weightsAfter(undefined, { ...base, influence: { ...AGE, minWeight: 1 } })),
    ]) {
      expect(Math.abs(move - matureMove)).toBeLessThanOrEqual(1e-2 * matureMove);
    }
  });

  it('refuses a weight above 1 or a non-positive horizon when the trainer is built', () => {
    const learner = new TfjsLearner(buildModel({ inputDim: 64, numClasses: 2, hiddenUnits: 0, seed: 1 }), featurizerFor('text', 64), { learningRate: LR });
    expect(() => new DpTrainer(learner, createMetrics(), { ...base, influence: { matureMs: 0, minWeight: 0.1 } })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
    expect(() => new DpTrainer(learner, createMetrics(), { ...base, influence: { matureMs: DAY, minWeight: 1.5 } })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
  });
});
