/**
 * SOURCE_CLIP with the real DP trainer (train/dp.ts): under PRIVACY_UNIT=record, one source flooding a step moves
 * the weights by no more than one of its records would, while a batch of honest sources (one record each) trains
 * exactly as per-record clipping does. One step with q = 1 and W = 1 (every slot in it), the same seeded coins
 * and noise in every run, so two runs' weights differ by exactly lr·(difference of the clipped sums)/(q·W·S).
 */
import seedrandom from 'seedrandom';
import { initTf } from '../../core/tf';
import { buildModel, featurizerFor } from '../../middleware/build';
import { TfjsLearner } from '../../middleware/learner';
import { createMetrics } from '../../src/metrics';
import { DpTrainer, type DpOptions } from '../../train/dp';
import type { TrainingRecord } from '../../core/record';

beforeAll(async () => {
  await initTf();
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
  seed: 'source-clip',
};
const LR = 1;
const EXPECTED_BATCH = base.sampleRate * base.window * base.stepEveryRecords;

const WORDS = ['invoice', 'meeting', 'lunch', 'report', 'schedule', 'garden', 'picnic', 'team'];
const honest = (i: number): TrainingRecord => {
  const rng = seedrandom(`h${i}`);
  return { id: `h${i}`, source: `honest-${i}`, label: i % 2, text: Array.from({ length: 5 }, () => WORDS[Math.floor(rng() * WORDS.length)]).join(' ') };
};
const attack = (i: number): TrainingRecord => ({ id: `a${i}`, source: 'attacker', label: 1, text: 'free money prize winner casino' });

/**
 * One DP step over SLOTS slots: even slots honest, odd slots the attacker's (`attackerRecords` of them, the rest
 * empty). Returns the weights after the step, flattened.
 */
async function weightsAfter(attackerRecords: number, o: DpOptions): Promise<Float64Array> {
  const learner = new TfjsLearner(buildModel({ inputDim: 64, numClasses: 2, hiddenUnits: 0, seed: 1 }), featurizerFor('text', 64), { learningRate: LR });
  const trainer = new DpTrainer(learner, createMetrics(), o);
  let sent = 0;
  for (let i = 0; i < SLOTS; i++) {
    if (i % 2 === 0) await trainer.admit(honest(i));
    else if (sent < attackerRecords) await trainer.admit(attack(sent++));
    else await trainer.pass();
  }
  expect(trainer.ledger.steps).toBe(1);
  const parts: number[] = [];
  for (const w of learner.model.getWeights()) parts.push(...w.dataSync());
  return Float64Array.from(parts);
}

const dist = (a: Float64Array, b: Float64Array): number => Math.sqrt(a.reduce((s, v, k) => s + (v - b[k]) ** 2, 0));

describe('SOURCE_CLIP under PRIVACY_UNIT=record, with the DP trainer', () => {
  it('a source sending 20 records moves the weights as much as one of its records does, never more than lr·C/(q·W·S)', async () => {
    const none = await weightsAfter(0, base);
    const one = await weightsAfter(1, base);
    const flood = await weightsAfter(20, base);
    const bound = (LR * base.clipNorm) / EXPECTED_BATCH;
    const single = dist(one, none);
    // The attacker's record is longer than C (clipped), so one record already moves the weights by the bound.
    expect(single).toBeGreaterThan(0.99 * bound);
    expect(dist(flood, none)).toBeLessThanOrEqual(bound * (1 + 1e-3));
    expect(dist(flood, one)).toBeLessThanOrEqual(1e-3 * bound);
  });

  it('with SOURCE_CLIP=off the same flood moves the weights ~20× as far (per-record clipping alone)', async () => {
    const off = { ...base, sourceClip: false };
    const none = await weightsAfter(0, off);
    const one = await weightsAfter(1, off);
    const flood = await weightsAfter(20, off);
    expect(dist(flood, none)).toBeGreaterThan(19 * dist(one, none));
  });

  it('honest traffic (one record per source) trains bit for bit as with per-record clipping', async () => {
    const on = await weightsAfter(0, base);
    const off = await weightsAfter(0, { ...base, sourceClip: false });
    expect(Array.from(on)).toEqual(Array.from(off));
  });
});
