/**
 * The update gate evaluated with DP on (the default), on SpamAssassin mail: the real DP trainer, the served moving
 * average, the analytic noise margin (train/gate-noise.ts) — issue 10, "a gate the attacker cannot calibrate".
 */
import { initTf } from '../../core/tf';
import { buildModel, featurizerFor } from '../../middleware/build';
import { TfjsLearner } from '../../middleware/learner';
import { createMetrics } from '../../src/metrics';
import { UpdateGate, judgementNoise, type GateAlert, type UpdateGateSettings } from '../../train/gate';
import { dpWeightNoise, servedSteps } from '../../train/gate-noise';
import { gateSettings } from '../../train/gate-factory';
import { WeightAverage } from '../../train/average';
import { DpTrainer, type DpOptions } from '../../train/dp';
import { PlainTrainer } from '../../train/plain';
import { SourceRegistry } from '../../filters/trust';
import { DEFAULT_TRUST } from '../../filters/config';
import { splitSpamCorpus, shuffled } from '../../src/data/spam';

beforeAll(async () => {
  await initTf();
});

const { train, test } = splitSpamCorpus();
const mails = shuffled(train, 'gate-dp');
const spam = mails.filter((m) => m.label === 1);
const canary = shuffled(test, 'gate-dp-canaries').slice(0, 200);
// σ = 1 over an expected batch q·W·S = 64, learning rate 5: each step moves every weight by 5·1·1/64 ≈ 0.08.
const DP = { sampleRate: 0.2, noiseMultiplier: 1, clipNorm: 1, window: 10, stepEveryRecords: 32, epsilonLimit: 1e6, delta: 1e-5, unit: 'record' as const, maxRecordsPerSource: 4, accountant: 'rdp' as const, seed: 'gate-dp' };
const LR = 5;
/** A burst: 256 records (two judgement intervals) of flipped labels, then as many clean ones. */
const BURST = 256;

function setup(overrides: Partial<UpdateGateSettings> = {}, dp = true, dpOptions: DpOptions = DP) {
  const learner = new TfjsLearner(buildModel({ inputDim: 512, numClasses: 2, hiddenUnits: 0, seed: 5 }), featurizerFor('text', 512), { learningRate: LR });
  const { x, y } = learner.batch(canary, canary.map((m) => m.label));
  const average = new WeightAverage(learner, 0.9);
  const alerts: GateAlert[] = [];
  const settings: UpdateGateSettings = {
    lossTolerance: 100, // the step check off: what is tested is the rollback judgement
    accuracyTolerance: 1,
    rollbackDrop: 0.05,
    rollbackAfter: 2,
    rollbackNoiseZ: 5,
    judgeEverySteps: 4,
    ...(dp ? { dpWeightNoise: dpWeightNoise({ learningRate: LR, noiseMultiplier: DP.noiseMultiplier, clipNorm: DP.clipNorm, expectedBatchSize: DP.sampleRate * DP.window * DP.stepEveryRecords }) } : {}),
    ...overrides,
  };
  const gate = new UpdateGate(learner, { x, y, size: canary.length }, new SourceRegistry(DEFAULT_TRUST), settings, { onRollback: (a) => alerts.push(a) }, average);
  const stages = [average.stage(), gate.stage()];
  const trainer = dp ? new DpTrainer(learner, createMetrics(), dpOptions, undefined, stages) : new PlainTrainer(learner, createMetrics(), 32, stages);
  let next = 0;
  /** `count` mails from the training split; `poison`: every label flipped. */
  const feed = async (count: number, poison = false) => {
    for (let i = 0; i < count; i++) {
      const m = mails[next++];
      await trainer.admit({ id: m.id, source: poison ? `p${i % 20}` : `u${i % 50}`, label: poison ? 1 - m.label : m.label, text: m.text });
    }
  };
  return { gate, trainer, feed, alerts };
}

describe('update gate with DP on', () => {
  it('alternating poison bursts no longer widen the rollback margin (the stream-measured estimate they widened is shown beside it)', async () => {
    // Three judgements in a row: a burst of two intervals dips the scores and recovers without a rollback, so the
    // dips stay in the judged scores — what widened the old, stream-measured margin from 5 to 16 points.
    const { gate, feed, alerts } = setup({ rollbackAfter: 3 });
    await feed(1536); // 48 steps: the bursts below each fill one judgement interval (4 steps of 32 records)
    const before = gate.rollbackMargin();
    // What the old margin was made of: z × the noise read from the judged scores themselves.
    const streamMeasured = () => 5 * judgementNoise(gate.toJSON().judgedScores);
    const streamBefore = streamMeasured();
    let streamMax = streamBefore;
    for (let cycle = 0; cycle < 6; cycle++) {
      await feed(BURST, true); // a burst of flipped labels
      await feed(BURST); // then clean again, so the scores jump down and back up
      streamMax = Math.max(streamMax, streamMeasured());
    }
    const after = gate.rollbackMargin();
    console.log(`rollback margin ${(100 * before).toFixed(1)} → ${(100 * after).toFixed(1)} points; stream-measured ${(100 * streamBefore).toFixed(1)} → up to ${(100 * streamMax).toFixed(1)}; rollbacks ${alerts.length}`);
    expect(streamMax).toBeGreaterThan(2 * streamBefore); // the attack works on a margin the stream measures …
    // … and not on this one: it changes only with the best model (re-measured on a better one), not with the dips.
    expect(after).toBeLessThanOrEqual(1.25 * before);
    expect(Number.isFinite(before)).toBe(true);
    expect(alerts.length).toBeGreaterThanOrEqual(3); // and the bursts were rolled back
  });

  it('rolls back targeted damage to one class that the overall accuracy hides (spam sent as ham)', async () => {
    // A wide overall margin (15 points): only the per-class judgement can catch this. Per-record clipping only
    // (SOURCE_CLIP=off): the gate is what is tested, so the 20 accounts must be able to do the damage; with the
    // default per-source bound their pull is capped at C per account per step (test/train/source-clip.test.ts).
    const { gate, trainer, alerts } = setup({ rollbackDrop: 0.15 }, true, { ...DP, sourceClip: false });
    let n = 0;
    for (const m of mails.slice(0, 1500)) await trainer.admit({ id: m.id, source: `u${n++ % 50}`, label: m.label, text: m.text });
    const best = gate.servedScore!;
    let s = 0;
    for (let round = 0; round < 6 && alerts.length === 0; round++) {
      // A quarter of the traffic is spam labelled ham.
      for (let i = 0; i < 128; i++) {
        const poison = i % 4 === 0;
        const m = poison ? spam[s++] : mails[1500 + round * 128 + i];
        await trainer.admit({ id: `t${round}-${i}`, source: poison ? `p${i % 20}` : `u${i % 50}`, label: poison ? 0 : m.label, text: m.text });
      }
    }
    console.log(`targeted: ${alerts[0]?.message}`);
    expect(alerts).toHaveLength(1);
    expect(alerts[0].message).toMatch(/on class 1/);
    // The overall drop stayed inside its 15-point margin: without the per-class judgement there is no rollback.
    expect(alerts[0].canaryAccuracy).toBeGreaterThan(best.accuracy - 0.15);
  });

  it('takes the DP noise scale from the configuration: η·σ·C/(q·W·S), and none without DP', () => {
    const base = { model: { numClasses: 2, kind: 'text' as const }, limits: { maxTextChars: 100, maxMessageBytes: 1000 }, training: { learningRate: 15 } };
    const gate = { canaryFile: 'c.jsonl', lossTolerance: 0.1, accuracyTolerance: 0.05, rollbackDrop: 0.05, rollbackAfter: 2 };
    const privacy = { noiseMultiplier: 2.24, clipNorm: 1, sampleRate: 0.2, window: 50, stepEveryRecords: 64 };
    expect(gateSettings({ ...base, gate, privacy })?.dpWeightNoise).toBeCloseTo((15 * 2.24) / 640); // the defaults: 0.0525
    expect(gateSettings({ ...base, gate, privacy: null })?.dpWeightNoise).toBeUndefined();
    expect(gateSettings({ ...base, gate: null, privacy })).toBeUndefined();
  });

  it("the served average's smoothing enters the noise scale: variance of k steps' noise through decay d", () => {
    expect(servedSteps(8, 0)).toBeCloseTo(8);
    expect(servedSteps(1, 0)).toBeCloseTo(1);
    expect(servedSteps(8, 0.95)).toBeCloseTo(1.44, 2);
    // By simulation: a random walk through the moving average, 20,000 runs.
    let x = 12345;
    const normal = () => {
      x = (x * 1103515245 + 12345) % 2147483648;
      const u = (x + 1) / 2147483649;
      x = (x * 1103515245 + 12345) % 2147483648;
      const v = (x + 1) / 2147483649;
      return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
    };
    let sq = 0;
    for (let run = 0; run < 20_000; run++) {
      let e = 0;
      let m = 0;
      for (let t = 0; t < 200; t++) {
        e += normal();
        m = 0.9 * m + 0.1 * e;
      }
      const start = m;
      for (let t = 0; t < 4; t++) {
        e += normal();
        m = 0.9 * m + 0.1 * e;
      }
      sq += (m - start) ** 2;
    }
    expect(sq / 20_000).toBeCloseTo(servedSteps(4, 0.9), 1);
  });

  it('without DP, the noise is read over a warm-up and then frozen: later bursts do not move it', async () => {
    const { gate, feed } = setup({}, false);
    await feed(1500);
    const frozen = gate.canaryNoise();
    expect(frozen).toBeDefined();
    for (let cycle = 0; cycle < 4; cycle++) {
      await feed(128, true);
      await feed(128);
    }
    expect(gate.canaryNoise()).toEqual(frozen);
    // And it survives a restart.
    const copy = JSON.parse(JSON.stringify(gate.toJSON()));
    expect(copy.noise.overall).toBe(frozen!.overall);
  });
});
