/** The DP trainer as the sidecar uses it: window sampling, the budget check before each step, source caps, restore. */
import seedrandom from 'seedrandom';
import { initTf, tf } from '../../core/tf';
import { buildModel, featurizerFor } from '../../middleware/build';
import { TfjsLearner } from '../../middleware/learner';
import { createMetrics } from '../../src/metrics';
import { DpTrainer, type DpOptions } from '../../train/dp';
import { rdpEpsilon } from '../../privacy/accountants';
import type { TrainingRecord } from '../../core/record';
import { hasCode } from '../../core/errors';

beforeAll(async () => {
  await initTf();
});

const learner = () => new TfjsLearner(buildModel({ inputDim: 64, numClasses: 2, hiddenUnits: 0, seed: 1 }), featurizerFor('text', 64), { learningRate: 1 });
const base: DpOptions = {
  sampleRate: 0.1,
  noiseMultiplier: 1,
  clipNorm: 1,
  window: 10,
  stepEveryRecords: 8,
  epsilonLimit: 8,
  delta: 1e-5,
  unit: 'record',
  maxRecordsPerSource: 2,
  accountant: 'rdp',
  seed: 'unit-test',
};
const rng = seedrandom('records');
const record = (i: number, source = `s${i}`): TrainingRecord => ({ id: `r${i}`, source, label: i % 2, text: rng() < 0.5 ? 'free money' : 'team meeting' });

describe('DP trainer', () => {
  it('charges each record exactly its window: ε stops growing after W steps', async () => {
    const t = new DpTrainer(learner(), createMetrics(), base);
    const spent: number[] = [];
    for (let i = 0; i < 8 * 30; i++) {
      expect(await t.admit(record(i))).toEqual({ kind: 'trained' });
      if (i % 8 === 7) spent.push(t.ledger.spent);
    }
    const window = rdpEpsilon([{ sampleRate: 0.1, noiseMultiplier: 1, steps: 10 }], 1e-5).epsilon;
    expect(t.ledger.steps).toBe(30);
    expect(spent[4]).toBeLessThan(spent[9]); // growing while steps < W
    expect(spent[29]).toBeCloseTo(window, 10); // then flat at the window's ε
    expect(spent[20]).toBeCloseTo(window, 10);
    expect(t.budget()).toMatchObject({ steps: 30, exhausted: false, unit: 'record' });
  });

  it('does not leak tensors across DP steps', async () => {
    const t = new DpTrainer(learner(), createMetrics(), base);
    for (let i = 0; i < 16; i++) await t.admit(record(i));
    const n = tf.memory().numTensors;
    for (let i = 16; i < 16 + 8 * 10; i++) await t.admit(record(i));
    expect(tf.memory().numTensors).toBe(n);
  });

  it('stops training when the limit is lowered below what is spent: records are skipped, ε is kept', async () => {
    const t = new DpTrainer(learner(), createMetrics(), base);
    for (let i = 0; i < 8 * 12; i++) await t.admit(record(i));
    const state = JSON.parse(JSON.stringify(t.toJSON()));
    const spent = t.ledger.spent;
    const tightened = new DpTrainer(learner(), createMetrics(), { ...base, epsilonLimit: spent * 0.9 }, state);
    expect(tightened.ledger.spent).toBe(spent); // restore never lowers ε
    const steps = tightened.ledger.steps;
    expect(await tightened.admit(record(1000))).toEqual({ kind: 'skipped', reason: 'budget_exhausted' });
    for (let i = 1001; i < 1050; i++) await tightened.admit(record(i));
    expect(tightened.ledger.steps).toBe(steps); // no step was taken
    expect(tightened.budget().exhausted).toBe(true);
  });

  it('refuses to re-base a ledger on another δ or window', () => {
    const t = new DpTrainer(learner(), createMetrics(), base);
    const err = (() => {
      try {
        new DpTrainer(learner(), createMetrics(), { ...base, delta: 1e-6, window: 20 }, t.toJSON());
      } catch (e) {
        return e;
      }
    })();
    expect(hasCode(err, 'CONFIG_INVALID')).toBe(true);
    expect(String((err as Error).message)).toMatch(/DELTA \(checkpoint: 0.00001, now: 0.000001\).*WINDOW_STEPS/);
  });

  it('source level: caps a flooding source at k records per window and stops it at its own ε limit', async () => {
    // one window of a source: ε(1-(1-0.1)^2, σ=1, 10 steps) ≈ 5.5 < 8, so every source can contribute at first
    const t = new DpTrainer(learner(), createMetrics(), { ...base, unit: 'source', epsilonLimit: 8 });
    const reasons = new Map<string, number>();
    let admittedFlood = 0;
    for (let i = 0; i < 4000; i++) {
      // one flooding account among many ordinary ones (which send one record each)
      const r = await t.admit(i % 2 === 0 ? record(i, 'flooder') : record(i));
      if (r.kind === 'skipped') reasons.set(r.reason, (reasons.get(r.reason) ?? 0) + 1);
      else if (i % 2 === 0) admittedFlood += 1;
    }
    expect(reasons.get('source_record_cap')).toBeGreaterThan(0);
    expect(reasons.get('source_budget_exhausted')).toBeGreaterThan(0);
    expect(t.ledger.sourceEpsilon('flooder')).toBeLessThanOrEqual(8);
    expect(t.ledger.sourceEpsilon('flooder')).toBeGreaterThan(5.5);
    expect(admittedFlood).toBeLessThan(2000 / 5);
    // ordinary sources are never refused
    expect([...reasons.values()].reduce((a, b) => a + b, 0)).toBe(2000 - admittedFlood);
  });

  it('adaptive clipping: the clip norm moves toward the target quantile, ε is charged as without it, state survives restore', async () => {
    const adaptive = { ...base, clipNorm: 10, adaptiveClip: { targetQuantile: 0.5, learningRate: 0.5, countNoiseStd: 2 } };
    const t = new DpTrainer(learner(), createMetrics(), adaptive);
    const fixed = new DpTrainer(learner(), createMetrics(), base);
    for (let i = 0; i < 8 * 40; i++) {
      await t.admit(record(i));
      await fixed.admit(record(i));
    }
    // per-example gradient norms of this model are below ~1.5 (unit-norm inputs), so C = 10 must shrink a lot
    expect(t.clipNorm).toBeLessThan(3);
    expect(t.clipper?.gradientNoiseMultiplier).toBeGreaterThan(1);
    expect(t.ledger.spent).toBeCloseTo(fixed.ledger.spent, 12);
    const restored = new DpTrainer(learner(), createMetrics(), adaptive, JSON.parse(JSON.stringify(t.toJSON())));
    expect(restored.clipNorm).toBe(t.clipNorm);
  });
});

describe('DP trainer, source mode (k = 20)', () => {
  it('refuses only the source that cannot afford a full window; every other source trains on and nobody passes the limit', async () => {
    const o: DpOptions = { ...base, unit: 'source', maxRecordsPerSource: 20, sampleRate: 0.05, noiseMultiplier: 2, window: 10, stepEveryRecords: 4, epsilonLimit: 10 };
    const t = new DpTrainer(learner(), createMetrics(), o);
    const outcomes: { source: string; kind: string; reason?: string }[] = [];
    for (let i = 0; i < 800; i++) {
      // Every other message from one heavy source, the rest from sources seen once.
      const source = i % 2 === 0 ? 'heavy' : `once-${i}`;
      const r = await t.admit(record(i, source));
      outcomes.push({ source, kind: r.kind, ...(r.kind === 'skipped' ? { reason: r.reason } : {}) });
    }
    const heavy = outcomes.filter((x) => x.source === 'heavy');
    const others = outcomes.filter((x) => x.source !== 'heavy');
    expect(heavy.some((x) => x.reason === 'source_budget_exhausted')).toBe(true);
    expect(heavy.filter((x) => x.kind === 'trained').length).toBeGreaterThan(0);
    // The others are never refused, and training never stops: one step per 4 messages.
    expect(others.every((x) => x.kind === 'trained')).toBe(true);
    expect(t.ledger.steps).toBe(200);
    expect(t.budget().exhaustedAndStopped).toBe(false);
    // Nobody's ε passes the limit — and the heavy source's admitted windows were affordable in full.
    expect(t.ledger.sourceEpsilon('heavy')).toBeLessThanOrEqual(10);
    expect(t.ledger.spent).toBeLessThanOrEqual(10);
  });

  it('looks ahead the whole window: a present source may only add a record when W more steps fit its budget', async () => {
    const o: DpOptions = { ...base, unit: 'source', maxRecordsPerSource: 20, sampleRate: 0.05, noiseMultiplier: 2, window: 10, stepEveryRecords: 4, epsilonLimit: 10 };
    const t = new DpTrainer(learner(), createMetrics(), o);
    await t.admit(record(0, 'a'));
    for (let i = 1; i < 20; i++) await t.admit(record(i)); // 20 slots = 5 steps with 'a' in the pool
    expect(t.ledger.steps).toBe(5);
    const rate = 1 - 0.95 ** 20;
    const fifteen = rdpEpsilon([{ sampleRate: rate, noiseMultiplier: 2, steps: 15 }], 1e-5).epsilon;
    // Its 5 charged steps + the W = 10 a new record would add (the old look-ahead counted only 5 more).
    expect(t.ledger.checkSource('a').epsilonIfAdmitted).toBeCloseTo(fifteen, 6);
  });
});

describe('review regressions: nothing content-dependent survives a restart or halts everyone', () => {
  it('a record that arrives while the budget is exhausted leaves no trace: D and D′ train alike after the limit is raised again', async () => {
    const o: DpOptions = { ...base, epsilonLimit: 50 };
    const warm = new DpTrainer(learner(), createMetrics(), o);
    for (let i = 0; i < 8 * 12; i++) await warm.admit(record(i));
    const saved = JSON.parse(JSON.stringify(warm.toJSON()));
    const low = { ...o, epsilonLimit: 0.5 }; // below what is spent: nothing may step
    const run = async (withRecord: boolean) => {
      const t = new DpTrainer(learner(), createMetrics(), low, JSON.parse(JSON.stringify(saved)));
      if (withRecord) expect(await t.admit(record(1000))).toEqual({ kind: 'skipped', reason: 'budget_exhausted' });
      else await t.pass();
      const state = JSON.parse(JSON.stringify(t.toJSON()));
      const again = new DpTrainer(learner(), createMetrics(), o, state); // the operator restores the limit
      const outcomes = [];
      for (let i = 2000; i < 2000 + 8 * 5; i++) outcomes.push((await again.admit(record(i))).kind);
      return { state, outcomes, steps: again.ledger.steps };
    };
    const d = await run(true);
    const d2 = await run(false);
    expect(d.state).toEqual(d2.state);
    expect(d.outcomes).toEqual(d2.outcomes);
    expect(d.outcomes.every((k) => k === 'trained')).toBe(true);
    expect(d.steps).toBe(d2.steps);
  });

  it('source mode: a source whose past ε is above a lowered limit is dropped, and the others keep stepping', async () => {
    const o: DpOptions = { ...base, unit: 'source', maxRecordsPerSource: 20, sampleRate: 0.05, noiseMultiplier: 2, window: 10, stepEveryRecords: 4, epsilonLimit: 20, accountant: 'rdp' };
    const t = new DpTrainer(learner(), createMetrics(), o);
    for (let i = 0; i < 200; i++) await t.admit(record(i, i % 2 === 0 ? 'heavy' : `once-${i}`));
    const heavy = t.ledger.sourceEpsilon('heavy');
    const lowered = { ...o, epsilonLimit: heavy * 0.8 };
    const again = new DpTrainer(learner(), createMetrics(), lowered, JSON.parse(JSON.stringify(t.toJSON())));
    const before = again.ledger.steps;
    const outcomes = [];
    for (let i = 0; i < 40; i++) outcomes.push((await again.admit(record(10_000 + i, `fresh-${i}`))).kind);
    expect(outcomes.every((k) => k === 'trained')).toBe(true);
    expect(again.ledger.steps).toBe(before + 10); // no halt for everyone
    expect(again.budget().exhaustedAndStopped).toBe(false);
  });
});

describe('an exhausted budget', () => {
  it('keeps the pool bounded: messages after exhaustion take no slot (no step can use them)', async () => {
    const o: DpOptions = { ...base, epsilonLimit: 50 };
    const t = new DpTrainer(learner(), createMetrics(), o);
    for (let i = 0; i < 8 * 12; i++) await t.admit(record(i));
    const exhausted = new DpTrainer(learner(), createMetrics(), { ...o, epsilonLimit: 0.5 }, JSON.parse(JSON.stringify(t.toJSON())));
    const pool = exhausted.poolSize;
    for (let i = 0; i < 5000; i++) {
      if (i % 2) await exhausted.pass();
      else expect(await exhausted.admit(record(10_000 + i))).toEqual({ kind: 'skipped', reason: 'budget_exhausted' });
    }
    expect(exhausted.poolSize).toBe(pool);
    expect(exhausted.budget().exhaustedAndStopped).toBe(true);
  });
});
