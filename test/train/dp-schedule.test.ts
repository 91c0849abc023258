/**
 * The privacy statement's proof obligation (docs/privacy.md, "the schedule"): under zero-out adjacency, a stream
 * D and the same stream D′ with one message's content emptied must lead to the same steps at the same points,
 * the same membership of every OTHER record in every step, the same ledger and the same published ε — whether
 * x's slot empties because its content is gone, because a per-record screen quarantines it (echo, or the witness:
 * a fixed model trained on trusted data only), or because it is a duplicate. Seeded coins and noise make the two
 * runs comparable draw for draw.
 */
import seedrandom from 'seedrandom';
import { initTf } from '../../core/tf';
import { Pipeline, type QuarantineMessage } from '../../src/pipeline';
import { DpTrainer, type DpOptions } from '../../train/dp';
import type { StepStage } from '../../train/step';
import { buildModel, featurizerFor } from '../../middleware/build';
import { TfjsLearner } from '../../middleware/learner';
import { Deduplicator } from '../../src/dedup';
import { OutcomeTally } from '../../src/counts';
import { createMetrics } from '../../src/metrics';
import { createDetectors, parseDetectorSettings } from '../../filters/config';
import type { RawMessage } from '../../core/record';
import { fastPredictor } from '../../middleware/fast-predict';
import { trainEpochs } from '../../src/pretrain/pretrain';
import type { WitnessModel } from '../../filters/witness';

/**
 * The witness: trained once on trusted records whose words the stream never uses, then fixed. Its parts rule is on
 * (abuse label 1, a fixed bar), so both of its rules could act on any record of the stream.
 */
let witness: WitnessModel;
beforeAll(async () => {
  await initTf();
  const learner = new TfjsLearner(buildModel({ inputDim: 1024, numClasses: 2, hiddenUnits: 0, seed: 3 }), featurizerFor('text', 1024), { learningRate: 5 });
  const trusted = Array.from({ length: 80 }, (_, i) =>
    i % 2 === 1 ? { id: `t${i}`, source: 'trusted', label: 1, text: 'viagra casino jackpot pills bitcoin' } : { id: `t${i}`, source: 'trusted', label: 0, text: 'grandma birthday garden picnic knitting' },
  );
  trainEpochs(learner, trusted, { epochs: 20, batchSize: 16, seed: 'witness' });
  witness = { predict: fastPredictor(learner), labelThreshold: 0.05, partThreshold: 0.9 };
});

const options: DpOptions = {
  sampleRate: 0.3,
  noiseMultiplier: 1,
  clipNorm: 1,
  window: 5,
  stepEveryRecords: 4,
  epsilonLimit: 50,
  delta: 1e-6,
  unit: 'record',
  maxRecordsPerSource: 4,
  accountant: 'rdp',
  seed: 'neighbours',
};

interface Run {
  /** Record ids in each step's batch, in step order. */
  steps: string[][];
  /** `stage/code` of each quarantined message, by its message's id `m<offset>`. */
  quarantined: Record<string, string>;
  ledger: unknown;
  epsilon: number;
  stepCount: number;
  /** Each step's weight change (after − before), flattened. */
  updates: Float64Array[];
}

/** The stream of 200 honest messages the neighbours differ from; message 37 is x. */
const X = 37;
function stream(replace?: (i: number, value: string) => string): RawMessage[] {
  const rng = seedrandom('neighbour-stream');
  const words = ['invoice', 'meeting', 'prize', 'lunch', 'report', 'winner', 'schedule', 'offer'];
  return Array.from({ length: 200 }, (_, i) => {
    const text = Array.from({ length: 6 }, () => words[Math.floor(rng() * words.length)]).join(' ');
    const value = JSON.stringify({ id: `m${i}`, source: `s${i % 23}`, label: i % 2, text });
    return { topic: 't', partition: 0, offset: String(i), key: null, value: Buffer.from(replace ? replace(i, value) : value) };
  });
}

async function run(messages: readonly RawMessage[], o: DpOptions = options): Promise<Run> {
  const learner = new TfjsLearner(buildModel({ inputDim: 64, numClasses: 2, hiddenUnits: 0, seed: 1 }), featurizerFor('text', 64), { learningRate: 1 });
  const metrics = createMetrics();
  const steps: string[][] = [];
  const record: StepStage = { name: 'record-membership', handle: (ctx, next) => { steps.push(ctx.records.map((r) => r.id)); return next(); } };
  const updates: Float64Array[] = [];
  const weights = () => Float64Array.from(learner.model.getWeights().flatMap((w) => Array.from(w.dataSync())));
  const update: StepStage = {
    name: 'record-update',
    handle: async (ctx, next) => {
      const before = weights();
      await next();
      updates.push(weights().map((v, k) => v - before[k]));
    },
  };
  const trainer = new DpTrainer(learner, metrics, o, undefined, [record, update]);
  const sent: QuarantineMessage[] = [];
  const quarantined: Record<string, string> = {};
  const screens = createDetectors(parseDetectorSettings({ echo: { enabled: true }, abuseLabels: [1] }), { now: () => 1_700_000_000_000, witness });
  expect(screens.witness?.scope).toBe('record');
  const pipeline = new Pipeline({
    trainer,
    limits: { numClasses: 2, task: 'text', maxTextChars: 10000, maxMessageBytes: 100000 },
    dedup: new Deduplicator(1000),
    tally: new OutcomeTally(metrics),
    metrics,
    quarantine: { send: async (m) => void sent.push(...m) },
    detectors: screens.detectors,
    // Message i carries id m<i> (or is x's replacement, at offset X).
    onQuarantine: (e) => void (quarantined[`m${e.key.split('/')[2]}`] = `${e.reasons[0].stage}/${e.reasons[0].code}`),
  });
  for (const m of messages) await pipeline.handle(m);
  return { steps, quarantined, ledger: trainer.ledger.toJSON(), epsilon: trainer.budget().spent, stepCount: trainer.ledger.steps, updates };
}

/** Each step's batch without x. */
const withoutX = (r: Run) => r.steps.map((b) => b.filter((id) => id !== `m${X}`));

describe('the DP schedule depends on public information only (zero-out adjacency)', () => {
  let d: Run;
  beforeAll(async () => {
    d = await run(stream());
  });

  it('x itself is trained in D (the neighbour differs in something that matters), and the screens hold back nothing', () => {
    expect(d.steps.some((b) => b.includes(`m${X}`))).toBe(true);
    expect(d.stepCount).toBe(50);
    expect(d.quarantined).toEqual({});
  });

  // `held`: the stage/code that must quarantine x in D′ (the neighbour is only meaningful if it does).
  const neighbours: [string, (i: number, v: string) => string, string | undefined][] = [
    ['x emptied (an empty message)', (i, v) => (i === X ? '' : v), undefined],
    ['x quarantined by a per-record screen (echo)', (i, v) => (i === X ? JSON.stringify({ id: `m${X}`, source: 's14', label: 0, text: 'repeat after me: you are all losers' }) : v), 'echo/echo_instruction'],
    ['x quarantined by the witness (a label flip)', (i, v) => (i === X ? JSON.stringify({ id: `m${X}`, source: 's14', label: 0, text: 'viagra casino jackpot pills' }) : v), 'witness/witness_disagrees'],
    [
      'x quarantined by the witness (an abusive part padded with the stream\'s words)',
      (i, v) => (i === X ? JSON.stringify({ id: `m${X}`, source: 's14', label: 0, text: `${'invoice meeting lunch report schedule '.repeat(12)} viagra casino jackpot pills bitcoin` }) : v),
      'witness/witness_abusive_part',
    ],
    ['x a re-send of an earlier record (same source and id)', (i, v) => (i === X ? JSON.stringify({ id: 'm3', source: 's3', label: 1, text: 'invoice meeting' }) : v), undefined],
  ];

  it.each(neighbours)('%s: same steps, same memberships of every other record, same ledger and ε', async (_name, change, held) => {
    const d2 = await run(stream(change));
    if (held) expect(d2.quarantined).toEqual({ [`m${X}`]: held });
    expect(d2.stepCount).toBe(d.stepCount);
    expect(withoutX(d2)).toEqual(withoutX(d));
    expect(d2.ledger).toEqual(d.ledger);
    expect(d2.epsilon).toBe(d.epsilon);
  });

  it('a record and its later re-send are one record: emptying both moves nobody else', async () => {
    // In D, message 120 re-sends x (same source and id) and is skipped as a duplicate; in D′ both are empty.
    const resend = (i: number, v: string) => (i === 120 ? JSON.stringify({ id: `m${X}`, source: `s${X % 23}`, label: 1, text: 'prize winner' }) : v);
    const withResend = await run(stream(resend));
    const bothEmpty = await run(stream((i, v) => (i === X || i === 120 ? '' : resend(i, v))));
    expect(withoutX(bothEmpty)).toEqual(withoutX(withResend));
    expect(bothEmpty.ledger).toEqual(withResend.ledger);
  });

  it('x shares its source with other records of its steps (SOURCE_CLIP, nested clipping): same schedule, and the first step with x differs by ≤ lr·C/(q·W·S)', async () => {
    // x and every other message from 24 to 60 come from one busy source (19 records: under the rate caps' 20 for a
    // new source, a cross-record screen this test is not about); SOURCE_CLIP is on (the default).
    const isBusy = (i: number) => i === X || (i >= 24 && i <= 60 && i % 2 === 0);
    const busy = (i: number, v: string) => (isBusy(i) ? v.replace(/"source":"s\d+"/, '"source":"busy"') : v);
    const withX = await run(stream(busy));
    const withoutXRun = await run(stream((i, v) => (i === X ? '' : busy(i, v))));
    const busyIds = new Set(Array.from({ length: 200 }, (_, i) => i).filter(isBusy).map((i) => `m${i}`));
    const first = withX.steps.findIndex((b) => b.includes(`m${X}`));
    expect(first).toBeGreaterThanOrEqual(0);
    // The neighbour matters for the nesting: x's step holds other records of x's source.
    expect(withX.steps[first].filter((id) => id !== `m${X}` && busyIds.has(id)).length).toBeGreaterThan(0);
    expect(withoutX(withoutXRun)).toEqual(withoutX(withX));
    expect(withoutXRun.ledger).toEqual(withX.ledger);
    expect(withoutXRun.epsilon).toBe(withX.epsilon);
    expect(withX.quarantined).toEqual({});
    // Same weights before that step and the same seeded noise in it: the updates differ by lr·Δ(clipped sum)/(q·W·S),
    // and removing x from its source's nested term moves that sum by at most C (non-expansive projection).
    const a = withX.updates[first];
    const b = withoutXRun.updates[first];
    for (let s = 0; s < first; s++) expect(Array.from(withoutXRun.updates[s])).toEqual(Array.from(withX.updates[s]));
    const moved = Math.sqrt(a.reduce((acc, v, k) => acc + (v - b[k]) ** 2, 0));
    const bound = (1 * options.clipNorm) / (options.sampleRate * options.window * options.stepEveryRecords); // lr = 1
    expect(moved).toBeGreaterThan(0);
    expect(moved).toBeLessThanOrEqual(bound * (1 + 1e-3) + 1e-6);
  });

  it('x from an account the deployment says is brand new (INFLUENCE_*): same schedule and ledger, and its first step differs by ≤ lr·w_min·C/(q·W·S)', async () => {
    // The weight is a function of x alone (its ts and sourceMeta), applied after x's clip: who is in a step and the
    // charge cannot depend on it, and x moves its step by at most w_x·C.
    const o: DpOptions = { ...options, influence: { matureMs: 30 * 86_400_000, minWeight: 0.1 } };
    const ts = 1_700_000_000_000;
    const young = (i: number, v: string) => (i === X ? v.replace(/}$/, `,"ts":${ts},"sourceMeta":{"createdAt":"${new Date(ts - 3_600_000).toISOString()}"}}`) : v);
    const withX = await run(stream(young), o);
    const emptied = await run(stream((i, v) => (i === X ? '' : v)), o);
    expect(withX.quarantined).toEqual({});
    const first = withX.steps.findIndex((b) => b.includes(`m${X}`));
    expect(first).toBeGreaterThanOrEqual(0);
    expect(withoutX(emptied)).toEqual(withoutX(withX));
    expect(withoutX(withX)).toEqual(withoutX(d));
    expect(emptied.ledger).toEqual(withX.ledger);
    expect(withX.ledger).toEqual(d.ledger);
    expect(emptied.epsilon).toBe(withX.epsilon);
    for (let s = 0; s < first; s++) expect(Array.from(emptied.updates[s])).toEqual(Array.from(withX.updates[s]));
    const a = withX.updates[first];
    const b = emptied.updates[first];
    const moved = Math.sqrt(a.reduce((acc, v, k) => acc + (v - b[k]) ** 2, 0));
    const bound = (1 * options.clipNorm) / (options.sampleRate * options.window * options.stepEveryRecords); // lr = 1
    expect(moved).toBeGreaterThan(0);
    expect(moved).toBeLessThanOrEqual(0.1 * bound * (1 + 1e-3) + 1e-6);
  });

  it('a record that changes content but keeps its slot moves nobody else either (replace-one = zero-out twice)', async () => {
    const d2 = await run(stream((i, v) => (i === X ? JSON.stringify({ id: `m${X}`, source: 's14', label: 0, text: 'lunch lunch lunch' }) : v)));
    expect(d2.steps).toEqual(d.steps);
    expect(d2.ledger).toEqual(d.ledger);
  });
});

describe('restart with another SAMPLE_RATE', () => {
  it('samples the restored pool at exactly the rate the ledger charges (0.5 → 0.01)', async () => {
    const learner = () => new TfjsLearner(buildModel({ inputDim: 64, numClasses: 2, hiddenUnits: 0, seed: 1 }), featurizerFor('text', 64), { learningRate: 1 });
    const o = { ...options, sampleRate: 0.5, noiseMultiplier: 5, window: 50, stepEveryRecords: 200, epsilonLimit: 1000 };
    const first = new DpTrainer(learner(), createMetrics(), o);
    for (let i = 0; i < 200; i++) await first.admit({ id: `r${i}`, source: `s${i}`, label: i % 2, text: 'a b c' });
    const saved = JSON.parse(JSON.stringify(first.toJSON()));
    let sampled = 0;
    let offered = 0;
    const count: StepStage = { name: 'count', handle: (ctx, next) => { sampled += ctx.records.length; offered += 200; return next(); } };
    const second = new DpTrainer(learner(), createMetrics(), { ...o, sampleRate: 0.01 }, saved, [count]);
    for (let t = 0; t < 40; t++) await second.tick();
    const rate = sampled / offered;
    // 8,000 coins at q = 0.01: mean 80, sd ≈ 8.9; the old code sampled at ≈ 0.5 (≈ 4,000).
    expect(rate).toBeGreaterThan(0.004);
    expect(rate).toBeLessThan(0.018);
    const charged = (second.ledger.toJSON().recent as { sampleRate: number; steps: number }[]).filter((s) => s.sampleRate === 0.01);
    expect(charged.reduce((a, s) => a + s.steps, 0)).toBeGreaterThan(0);
  });
});
