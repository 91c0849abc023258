/**
 * The sidecar's continuous one-run audit (src/audit.ts) on real training. The deliberate-bug check: train
 * without noise while claiming ε = 0.5 — the audit's lower bound must exceed the claim and raise the alarm.
 * With DP-SGD actually on, the bound must stay below the accountant's ε.
 */
import seedrandom from 'seedrandom';
import { initTf } from '../../src/tf';
import { buildModel, featurizerFor } from '../../src/model/build';
import { TfjsLearner } from '../../middleware/learner';
import { createMetrics } from '../../src/metrics';
import { PlainTrainer } from '../../src/trainer/plain';
import { DpTrainer } from '../../src/trainer/dp';
import { Auditor, AUDIT_SOURCE } from '../../src/audit';
import type { Trainer } from '../../src/trainer/types';
import { validRecord } from '../helpers/records';

beforeAll(async () => {
  await initTf();
});

async function runRound(trainer: Trainer, auditor: Auditor, records: number) {
  const rng = seedrandom('audit-stream');
  let canaries = 0;
  for (let i = 0; i < records; i++) {
    await trainer.admit(JSON.parse(validRecord(i, rng).value as string));
    const canary = auditor.canaryDue(trainer.progress);
    if (canary) {
      expect(canary.source.startsWith(`${AUDIT_SOURCE}/`)).toBe(true);
      await trainer.admit(canary);
      canaries += 1;
    }
  }
  // let every canary finish its exposure (DP: W more steps on a quiet stream)
  for (let i = 0; i < 200 && auditor.status().current?.toAdmit === 0; i++) {
    await trainer.flush();
    await trainer.tick();
    await trainer.tick();
  }
  return canaries;
}

describe('continuous one-run audit', () => {
  it('fires the alarm when training without noise claims ε = 0.5 (the deliberate bug), on the second round in a row', async () => {
    const learner = new TfjsLearner(buildModel({ inputDim: 16384, numClasses: 2, hiddenUnits: 0, seed: 2 }), featurizerFor("text", 16384), { learningRate: 5 });
    const trainer = new PlainTrainer(learner, createMetrics(), 4);
    const auditor = new Auditor({ canaries: 200, every: 2, numClasses: 2, task: 'text' as const, featureDim: 16384, delta: 1e-6, exposure: trainer.exposure });
    const admitted = await runRound(trainer, auditor, 600);
    expect(admitted).toBeGreaterThan(60);
    await trainer.flush();
    const result = auditor.maybeScore(trainer.progress, learner, 0.5);
    expect(result).toBeDefined();
    expect(result?.canaries).toBe(200);
    expect(result?.included).toBe(admitted);
    expect(result?.auc).toBeGreaterThan(0.75); // measured 0.83–0.99 over five runs
    expect(result?.epsilonLowerBound).toBeGreaterThan(0.5); // measured 1.6–3.2 over five runs
    // One round above ε is what a correct implementation shows 5% of the time: no alarm yet (ALARM_RULE).
    expect(result?.exceeds).toBe(true);
    expect(result?.alarm).toBe(false);
    // a new round starts with fresh coins
    expect(auditor.status().current).toBeNull();
    expect(auditor.status().history).toHaveLength(1);
    // The bug persists, so the next round exceeds too: that is the alarm.
    await runRound(trainer, auditor, 600);
    await trainer.flush();
    const second = auditor.maybeScore(trainer.progress, learner, 0.5);
    expect(second?.exceeds).toBe(true);
    expect(second?.alarm).toBe(true);
    expect(auditor.status()).toMatchObject({ alarmRule: expect.stringMatching(/two consecutive rounds/) });
  });

  it('stays below the accountant when DP-SGD is really on, and survives a restart mid-round', async () => {
    const learner = new TfjsLearner(buildModel({ inputDim: 16384, numClasses: 2, hiddenUnits: 0, seed: 2 }), featurizerFor("text", 16384), { learningRate: 5 });
    const opts = { sampleRate: 0.1, noiseMultiplier: 1, clipNorm: 1, window: 10, stepEveryRecords: 16, epsilonLimit: 8, delta: 1e-6, unit: 'record' as const, maxRecordsPerSource: 4, accountant: 'rdp' as const };
    const trainer = new DpTrainer(learner, createMetrics(), opts);
    let auditor = new Auditor({ canaries: 200, every: 2, numClasses: 2, task: 'text' as const, featureDim: 16384, delta: 1e-6, exposure: trainer.exposure });
    await runRound(trainer, auditor, 300);
    auditor = new Auditor({ canaries: 200, every: 2, numClasses: 2, task: 'text' as const, featureDim: 16384, delta: 1e-6, exposure: trainer.exposure }, JSON.parse(JSON.stringify(auditor.toJSON())));
    await runRound(trainer, auditor, 200);
    const accounted = trainer.ledger.spent;
    const result = auditor.maybeScore(trainer.progress, learner, accounted);
    expect(result).toBeDefined();
    expect(result?.epsilonLowerBound).toBeLessThanOrEqual(accounted);
    expect(result?.alarm).toBe(false);
  });

  it('makes canaries the model can read: random feature vectors for dense models, under the reserved source', () => {
    const auditor = new Auditor({ canaries: 10, every: 1, numClasses: 3, task: 'dense', featureDim: 7, delta: 1e-6, exposure: 1 });
    let canary;
    for (let i = 0; i < 20 && !canary; i++) canary = auditor.canaryDue(0);
    expect(canary).toMatchObject({ source: expect.stringMatching(/^__tayguard_audit__\//), features: expect.any(Array) });
    expect(canary?.features).toHaveLength(7);
    expect(canary?.text).toBeUndefined();
    expect(canary?.label).toBeGreaterThanOrEqual(0);
    expect(canary?.label).toBeLessThan(3);
  });
});

