import { initTf } from '../../core/tf';
import { buildModel, featurizerFor } from '../../middleware/build';
import { TfjsLearner } from '../../middleware/learner';
import { createMetrics } from '../../src/metrics';
import { PlainTrainer } from '../../train/plain';
import { UpdateGate } from '../../train/gate';
import { dpWeightNoise } from '../../train/gate-noise';
import { WeightAverage } from '../../train/average';
import { SourceRegistry } from '../../filters/trust';
import { DEFAULT_TRUST } from '../../filters/config';
import type { TrainingRecord } from '../../core/record';

beforeAll(async () => {
  await initTf();
});

const HAM = ['meeting agenda notes', 'lunch with the team', 'project schedule review', 'call notes for tomorrow'];
const SPAM = ['win free money now', 'cheap pills offer', 'claim your cash prize', 'free bonus click now'];
const rec = (i: number, label: number, source: string, flip = false): TrainingRecord => ({
  id: `${source}-${i}`,
  source,
  label: flip ? 1 - label : label,
  text: `${(label ? SPAM : HAM)[i % 4]} ${i % 7}`,
});

function setup(settings = { lossTolerance: 0.05, accuracyTolerance: 0.02, rollbackDrop: 0.05, rollbackAfter: 2 }) {
  const learner = new TfjsLearner(buildModel({ inputDim: 128, numClasses: 2, hiddenUnits: 0, seed: 5 }), featurizerFor('text', 128), { learningRate: 5 });
  const canary = Array.from({ length: 40 }, (_, i) => rec(1000 + i, i % 2, 'trusted'));
  const { x, y } = learner.batch(canary, canary.map((r) => r.label));
  const registry = new SourceRegistry(DEFAULT_TRUST);
  const gate = new UpdateGate(learner, { x, y, size: 40 }, registry, settings);
  const trainer = new PlainTrainer(learner, createMetrics(), 16, [gate.stage()]);
  return { learner, gate, trainer, registry };
}

describe('update gate (RONI on a trusted canary set)', () => {
  it('accepts clean updates and undoes a batch of flipped labels, penalising its sources', async () => {
    const { gate, trainer, registry } = setup();
    for (let i = 0; i < 64; i++) await trainer.admit(rec(i, i % 2, `user-${i % 8}`));
    expect(gate.accepted).toBe(4);
    expect(gate.rejected).toBe(0);
    const before = gate.score();
    for (let i = 0; i < 16; i++) {
      registry.observe(rec(i, 0, `sybil-${i}`), Date.now());
      await trainer.admit(rec(i, i % 2, `sybil-${i}`, true));
    }
    expect(gate.rejected).toBe(1);
    expect(gate.score()).toEqual(before); // the harmful update was undone exactly
    // Each source held 1 of the update's 16 records: 1/16 of a penalty each.
    for (let i = 0; i < 16; i++) expect(registry.get(`sybil-${i}`)?.penalties).toBeCloseTo(1 / 16);
  });

  it("penalises in proportion to evidence: by each source's share of the undone update, not every source of the batch alike", async () => {
    const { gate, trainer, registry } = setup();
    for (let i = 0; i < 64; i++) await trainer.admit(rec(i, i % 2, `user-${i % 8}`));
    // One batch: 12 flipped records from one account, and 4 honest records from 4 established users.
    const batch = [...Array.from({ length: 12 }, (_, i) => rec(500 + i, i % 2, 'poisoner', true)), ...Array.from({ length: 4 }, (_, i) => rec(600 + i, i % 2, `user-${i}`))];
    for (const r of batch) registry.observe(r, 0);
    registry.observe(rec(700, 0, 'user-5'), 0);
    for (const r of batch) await trainer.admit(r);
    expect(gate.rejected).toBe(1);
    expect(registry.get('poisoner')?.penalties).toBeCloseTo(12 / 16);
    for (let i = 0; i < 4; i++) expect(registry.get(`user-${i}`)?.penalties).toBeCloseTo(1 / 16);
    expect(registry.get('user-5')?.penalties).toBe(0); // not in the undone update
  });

  it('rolls back to the best checkpoint after sustained degradation and raises an alert', async () => {
    // Tolerances wide open: every poisoned step passes on its own (slow poisoning), only the checkpoint check can act.
    const { gate, trainer } = setup({ lossTolerance: 100, accuracyTolerance: 1, rollbackDrop: 0.05, rollbackAfter: 2 });
    for (let i = 0; i < 64; i++) await trainer.admit(rec(i, i % 2, `user-${i % 8}`));
    expect(gate.judge()).toBeUndefined();
    const good = gate.score();
    let alert;
    for (let round = 0; round < 4 && !alert; round++) {
      for (let i = 0; i < 48; i++) await trainer.admit(rec(round * 100 + i, i % 2, `sybil-${i}`, true));
      alert = gate.judge();
    }
    expect(alert).toMatchObject({ kind: 'rollback', restoredAccuracy: good.accuracy });
    expect(alert?.canaryAccuracy).toBeLessThan(good.accuracy - 0.05);
    expect(gate.score()).toEqual(good);
    expect(gate.alerts).toHaveLength(1);
  });

  it('learns the noise level of DP steps: after warm-up it undoes far fewer clean noisy updates than fixed tolerances do', async () => {
    const { DpTrainer } = await import('../../train/dp');
    const run = async (noiseQuantile: number | undefined) => {
      const learner = new TfjsLearner(buildModel({ inputDim: 128, numClasses: 2, hiddenUnits: 0, seed: 5 }), featurizerFor('text', 128), { learningRate: 5 });
      const canary = Array.from({ length: 40 }, (_, i) => rec(1000 + i, i % 2, 'trusted'));
      const { x, y } = learner.batch(canary, canary.map((r) => r.label));
      const gate = new UpdateGate(learner, { x, y, size: 40 }, new SourceRegistry(DEFAULT_TRUST), { lossTolerance: 0.01, accuracyTolerance: 0.01, rollbackDrop: 0.5, rollbackAfter: 2, noiseQuantile });
      const dp = { sampleRate: 0.5, noiseMultiplier: 1, clipNorm: 1, window: 2, stepEveryRecords: 8, epsilonLimit: 1000, delta: 1e-5, unit: 'record' as const, maxRecordsPerSource: 4, accountant: 'rdp' as const, seed: 'gate-noise' };
      const trainer = new DpTrainer(learner, createMetrics(), dp, undefined, [gate.stage()]);
      for (let i = 0; i < 8 * 25; i++) await trainer.admit(rec(i, i % 2, `user-${i % 8}`));
      const warm = gate.rejected;
      for (let i = 200; i < 200 + 8 * 40; i++) await trainer.admit(rec(i, i % 2, `user-${i % 8}`));
      return gate.rejected - warm;
    };
    const fixed = await run(undefined);
    const aware = await run(0.95);
    expect(fixed).toBeGreaterThan(10); // tolerances of 0.01 alone undo much of the noise
    expect(aware).toBeLessThan(fixed / 2);
    expect(aware).toBeLessThanOrEqual(6); // ~5% of 40 steps by construction, plus slack
  });

  it('rolls back on noise-calibrated drops: DP noise alone stops triggering it, poisoning still does', async () => {
    const { DpTrainer } = await import('../../train/dp');
    const run = async (rollbackNoiseZ: number, poisonFrom: number) => {
      const learner = new TfjsLearner(buildModel({ inputDim: 128, numClasses: 2, hiddenUnits: 0, seed: 5 }), featurizerFor('text', 128), { learningRate: 5 });
      const canary = Array.from({ length: 40 }, (_, i) => rec(1000 + i, i % 2, 'trusted'));
      const { x, y } = learner.batch(canary, canary.map((r) => r.label));
      // Steps pass on their own (slow poisoning); only the checkpoint check acts. σ = 4: canary accuracy jumps by
      // several points from checkpoint to checkpoint on clean data.
      const dp = { sampleRate: 0.5, noiseMultiplier: 4, clipNorm: 1, window: 2, stepEveryRecords: 16, epsilonLimit: 1e6, delta: 1e-5, unit: 'record' as const, maxRecordsPerSource: 4, accountant: 'rdp' as const, seed: 'gate-rollback' };
      // The DP noise scale, known from the configuration: η·σ·C/(q·W·S).
      const noise = dpWeightNoise({ learningRate: 5, noiseMultiplier: dp.noiseMultiplier, clipNorm: dp.clipNorm, expectedBatchSize: dp.sampleRate * dp.window * dp.stepEveryRecords });
      const gate = new UpdateGate(learner, { x, y, size: 40 }, new SourceRegistry(DEFAULT_TRUST), { lossTolerance: 100, accuracyTolerance: 1, rollbackDrop: 0.05, rollbackAfter: 2, rollbackNoiseZ, dpWeightNoise: noise });
      const trainer = new DpTrainer(learner, createMetrics(), dp, undefined, [gate.stage()]);
      const at: number[] = [];
      for (let checkpoint = 0; checkpoint < 30; checkpoint++) {
        for (let i = 0; i < 64; i++) {
          const n = checkpoint * 64 + i;
          await trainer.admit(rec(n, n % 2, `user-${i % 8}`, checkpoint >= poisonFrom));
        }
        if (gate.judge()) at.push(checkpoint);
      }
      return at;
    };
    const fixed = await run(0, Infinity);
    const aware = await run(5, Infinity); // the default z
    const poisoned = await run(5, 15); // every label flipped from checkpoint 15 on
    expect(fixed.length).toBeGreaterThanOrEqual(5); // a fixed 5-point drop mistakes noise for degradation
    expect(aware.length).toBeLessThanOrEqual(1);
    expect(poisoned.length).toBeGreaterThanOrEqual(2);
    expect(poisoned.filter((c) => c < 15).length).toBe(aware.filter((c) => c < 15).length);
    // Caught within a few checkpoints. The margin is now the analytic DP noise's (train/gate-noise.ts), which no
    // stream can widen; at this extreme noise (each step moves every weight by 1.25) its random-walk bound is wide,
    // so it takes six checkpoints where the stream-measured margin took three (test/train/gate-dp.test.ts shows the
    // default regime, where it sits at the 5-point floor).
    expect(poisoned.find((c) => c >= 15)).toBeLessThanOrEqual(21);
  });

  it('judges rollback on the served model (the moving average), restores it into the learner and restarts the average there', async () => {
    const learner = new TfjsLearner(buildModel({ inputDim: 128, numClasses: 2, hiddenUnits: 0, seed: 5 }), featurizerFor('text', 128), { learningRate: 5 });
    const canary = Array.from({ length: 40 }, (_, i) => rec(1000 + i, i % 2, 'trusted'));
    const { x, y } = learner.batch(canary, canary.map((r) => r.label));
    const average = new WeightAverage(learner, 0.9);
    const gate = new UpdateGate(learner, { x, y, size: 40 }, new SourceRegistry(DEFAULT_TRUST), { lossTolerance: 100, accuracyTolerance: 1, rollbackDrop: 0.05, rollbackAfter: 2 }, {}, average);
    const trainer = new PlainTrainer(learner, createMetrics(), 16, [average.stage(), gate.stage()]);
    const served: { accuracy: number; bytes: Buffer }[] = [];
    let alert;
    for (let round = 0; round < 8 && !alert; round++) {
      for (let i = 0; i < 48; i++) await trainer.admit(rec(round * 100 + i, i % 2, round < 2 ? `user-${i % 8}` : `sybil-${i}`, round >= 2));
      const bytes = average.snapshot().data;
      alert = gate.judge();
      if (!alert) served.push({ accuracy: gate.servedScore!.accuracy, bytes });
    }
    expect(alert).toBeDefined();
    const best = served.reduce((b, x) => (x.accuracy >= b.accuracy ? x : b)); // ties: the later one, as the gate keeps
    expect(alert?.restoredAccuracy).toBe(best.accuracy);
    expect(learner.snapshot().data.equals(best.bytes)).toBe(true); // the learner now holds the best served weights
    expect(average.snapshot().data.equals(best.bytes)).toBe(true); // and the average starts again there, warm
    expect(average.nextDecay()).toBeCloseTo(0.9, 12);
    average.dispose();
  });

  it('judges by itself every judgeEverySteps steps', async () => {
    const { gate, trainer } = setup({ lossTolerance: 100, accuracyTolerance: 1, rollbackDrop: 0.05, rollbackAfter: 2, judgeEverySteps: 3 } as never);
    for (let i = 0; i < 16 * 7; i++) await trainer.admit(rec(i, i % 2, `user-${i % 8}`));
    expect(gate.toJSON().judgedScores).toHaveLength(2); // after steps 3 and 6 of 7
    expect(gate.servedScore).toBeDefined();
  });

  it('with the noise-aware tolerance, measures the first 20 steps without undoing any, and a restart keeps what it measured', async () => {
    const settings = { lossTolerance: 0.05, accuracyTolerance: 0.02, rollbackDrop: 0.05, rollbackAfter: 2, noiseQuantile: 0.95 };
    const flipped = (from: number) => Array.from({ length: 16 }, (_, i) => rec(from + i, i % 2, `sybil-${i}`, true));
    // A fresh gate measures, it does not judge: the model is new, every step moves the canaries a lot, and judging
    // by the fixed tolerances froze the model in the SpamAssassin bench. Even a flipped batch passes.
    const fresh = setup(settings);
    for (const r of flipped(0)) await fresh.trainer.admit(r);
    expect(fresh.gate.rejected).toBe(0);

    const { gate, trainer, learner, registry } = setup(settings);
    for (let i = 0; i < 16 * 20; i++) await trainer.admit(rec(i, i % 2, `user-${i % 8}`));
    expect(gate).toMatchObject({ rejected: 0, accepted: 20 });
    const state = JSON.parse(JSON.stringify(gate.toJSON()));
    expect(state.lossChanges).toHaveLength(20);
    // A restarted gate (same canaries, state from the checkpoint) judges the very next step.
    const again = new UpdateGate(learner, gate.canaries, registry, settings);
    again.restore(state);
    const next = new PlainTrainer(learner, createMetrics(), 16, [again.stage()]);
    for (const r of flipped(5000)) await next.admit(r);
    expect(again.toJSON()).toMatchObject({ rejected: 1, accepted: 20 });
    // Damaged or older state: paired changes stay paired, counts are whole and ≥ 0, no best without its weights.
    again.restore({ lossChanges: [1, NaN, 3, 4], accuracyChanges: [0.1, 0.2, null], judgedScores: null, rejected: -1, accepted: 3, degraded: 2, best: { loss: 1, accuracy: 0.9 } } as never);
    expect(again.toJSON()).toEqual({ lossChanges: [1], accuracyChanges: [0.1], judgedScores: [], rejected: 0, accepted: 3, degraded: 0, best: null, noise: null, judgements: 0, judgedPerClass: [] });
  });

  it('a restart keeps the best model and the degraded run: the rollback still reaches the weights from before it', async () => {
    const settings = { lossTolerance: 100, accuracyTolerance: 1, rollbackDrop: 0.05, rollbackAfter: 2 };
    const { gate, trainer, learner, registry } = setup(settings);
    for (let i = 0; i < 64; i++) await trainer.admit(rec(i, i % 2, `user-${i % 8}`));
    gate.judge();
    const good = learner.snapshot().data;
    let round = 0;
    while (gate.toJSON().degraded === 0 && round < 6) {
      for (let i = 0; i < 48; i++) await trainer.admit(rec(++round * 100 + i, i % 2, `sybil-${i}`, true));
      expect(gate.judge()).toBeUndefined();
    }
    const state = JSON.parse(JSON.stringify(gate.toJSON()));
    expect(state).toMatchObject({ degraded: 1, best: { accuracy: expect.any(Number) } });
    const again = new UpdateGate(learner, gate.canaries, registry, settings);
    again.restore(state, gate.bestSnapshot());
    const next = new PlainTrainer(learner, createMetrics(), 16, [again.stage()]);
    for (let i = 0; i < 48; i++) await next.admit(rec(9000 + i, i % 2, `sybil-${i}`, true));
    expect(again.judge()).toMatchObject({ kind: 'rollback', restoredAccuracy: state.best.accuracy });
    expect(learner.snapshot().data.equals(good)).toBe(true);
  });
});
