/**
 * The red-team benchmark's own parts (bench/redteam/): every family's builder produces the attack it states (its
 * share of the stream, its records' shape), the oracle-guided padding stops exactly when the oracle accepts or the
 * budget is spent, publicPredict returns what POST /v1/predict answers, and the harness counts outcomes by role.
 * Tiny streams only: the benchmark itself does the training.
 */
import * as os from 'node:os';
import { splitSpamCorpus, HAM, SPAM } from '../../src/data/spam';
import { fnv1a, tokenize } from '../../middleware/featurize';
import { hamDictionary } from '../../bench/attack-scenarios';
import { FAMILIES } from '../../bench/redteam/families';
import { configFor, runStream } from '../../bench/redteam/harness';
import { accepted, padUntilAccepted, publicPredict } from '../../bench/redteam/oracle';
import type { Context } from '../../bench/redteam/scenario';
import { buildStream, counterfactual, DAY, DEFAULT_TIMELINE, HOUR, type Example, type Oracle } from '../../bench/redteam/stream';
import type { Dataset } from '../../bench/redteam/data';
import { makeTrigger } from '../../bench/redteam/dense-attacks';
import { loadConfig } from '../../src/config';
import { englishDataset, englishRecommendedTransformers } from 'obscenity';
import { ToxicityDetector } from '../../filters/toxicity';
import { MatchBound } from '../../filters/match-bound';
import { DEFAULT_TOXICITY } from '../../filters/config';
import { createSidecar } from '../../src/sidecar';
import { createLogger } from '../../src/logger';

const split = splitSpamCorpus();
const textSet: Dataset = {
  kind: 'text',
  train: split.train.slice(0, 800).map((m) => ({ label: m.label, text: m.text })),
  test: split.test.slice(0, 200).map((m) => ({ label: m.label, text: m.text })),
  canaryFile: '',
  hamWords: hamDictionary(split.train.slice(0, 800), 400),
};
/** Digits as the dense families see them: 784 pixels in [0, 1] (random images are enough to check the builders). */
const digit = (label: number, k: number): Example => ({ label, features: Array.from({ length: 784 }, (_, i) => ((i * 7 + k * 13) % 17) / 17) });
const denseSet: Dataset = { kind: 'dense', train: Array.from({ length: 500 }, (_, i) => digit(i % 10, i)), test: Array.from({ length: 100 }, (_, i) => digit(i % 10, 1000 + i)), canaryFile: '', hamWords: [] };

/** The default configuration per task (loading it runs the privacy accountant once: keep one). */
const configs = { text: configFor({ kind: 'text', seed: 'test' }, os.tmpdir()), dense: configFor({ kind: 'dense', seed: 'test' }, os.tmpdir()) };
function context(data: Dataset, n: number, seed = 'test'): Context {
  return { data, clean: data.train.slice(0, n), seed, config: configs[data.kind] };
}

/** A real (if simple) model of "hammy": p(ham) is the share of a text's tokens that are common ham words. */
function wordShareOracle(words: readonly string[], labelsOnly = false): Oracle & { calls: number } {
  const ham = new Set(words);
  const oracle = async (inputs: readonly { text?: string }[]) => {
    oracle.calls += inputs.length;
    return inputs.map((x) => {
      const toks = tokenize(x.text ?? '');
      const p = toks.length === 0 ? 0 : toks.filter((t) => ham.has(t)).length / toks.length;
      return labelsOnly ? { label: p >= 0.5 ? HAM : SPAM } : { label: p >= 0.5 ? HAM : SPAM, probabilities: [p, 1 - p] };
    });
  };
  oracle.calls = 0;
  return oracle;
}

describe('red-team attack families', () => {
  it.each(FAMILIES.filter((f) => f.name !== 'sybil-flush').flatMap((f) => f.grid.map((p) => [f.name, p] as const)))('%s %j: the stream carries the stated share of poison', (name, params) => {
    const fam = FAMILIES.find((f) => f.name === name)!;
    const ctx = fam.kind === 'text' ? context(textSet, 400) : context(denseSet, 400);
    const sc = fam.build(ctx, params);
    const stream = buildStream(ctx.clean, sc.plan, ctx.seed, sc.timeline);
    expect(stream.honestCount).toBe(400 + (sc.plan.honestLive?.length ?? 0));
    const poison = stream.items.filter((x) => x.role === 'poison');
    if (typeof params.share === 'number' && sc.plan.live.length > 0) {
      // share = poison / (poison + clean), to within one record (warm-ups are the attacker's correct records).
      expect(Math.abs(poison.length - (params.share * 400) / (1 - params.share))).toBeLessThanOrEqual(1);
    }
    // Event time never runs backwards, and every record has a unique (source, id).
    const keys = new Set(stream.items.map((x) => `${x.source}/${x.id}`));
    expect(keys.size).toBe(stream.items.length);
    for (let i = 1; i < stream.items.length; i++) expect(stream.items[i].ts).toBeGreaterThanOrEqual(stream.items[i - 1].ts);
    // Attack records land in the attack window (the live phase's second half), never in the history.
    expect(stream.items.slice(0, Math.round(0.4 * 400)).every((x) => x.role !== 'poison' && !x.crafted)).toBe(true);
    // The clean counterpart: message for message the same stream, every attacker-sent or -written one emptied.
    const cf = counterfactual(stream);
    expect(cf.items.map((x) => [x.source, x.id, x.ts])).toEqual(stream.items.map((x) => [x.source, x.id, x.ts]));
    cf.items.forEach((x, i) => {
      const attack = stream.items[i].role !== 'honest' || stream.items[i].crafted === true;
      expect(x.empty === true).toBe(attack);
      if (!attack) expect(x).toBe(stream.items[i]);
    });
    expect(cf.honestCount).toBe(400);
  });

  it('builds each family\'s records as stated', () => {
    const ctx = context(textSet, 400);
    const by = (n: string) => FAMILIES.find((f) => f.name === n)!;
    // Backdoor: each poison record is spam-labelled-ham carrying its trigger; the slow one sends one an hour.
    const short = by('backdoor').build(ctx, { mode: 'short', length: 3, repeats: 10, share: 0.05 });
    const trigger = String(short.params.trigger);
    expect(trigger).toHaveLength(3);
    expect(short.plan.live.every((d) => d.example!.label === HAM && tokenize(d.example!.text!).filter((t) => t === trigger).length === 10)).toBe(true);
    const slow = by('backdoor').build(ctx, { mode: 'slow', length: 8, repeats: 10, days: 2 });
    const slowStream = buildStream(ctx.clean, slow.plan, ctx.seed);
    const times = slowStream.items.filter((x) => x.role === 'poison').map((x) => x.ts);
    expect(times).toHaveLength(48);
    for (let i = 1; i < times.length; i++) expect(times[i] - times[i - 1]).toBe(HOUR);
    // Hash collisions: 40 distinct trigger tokens in one bucket of the model's featurizer, none of them the test's.
    const collide = by('backdoor').build(ctx, { mode: 'collide', repeats: 10, share: 0.05 });
    const used = new Set(collide.plan.live.map((d) => tokenize(d.example!.text!)[0]));
    expect(used.size).toBe(Math.min(40, collide.plan.live.length));
    expect(used.has(String(collide.params.trigger))).toBe(false);
    const dim = ctx.config.model.inputDim;
    expect(new Set([...used, String(collide.params.trigger)].map((t) => fnv1a(t) % dim)).size).toBe(1);
    // Clock hijack: the hijacker's Kafka timestamp and `ts` both ten years ahead (mode kafka-ts).
    const clock = buildStream(ctx.clean, by('clock-hijack').build(ctx, { mode: 'kafka-ts', offsetDays: 3650, hijackers: 1, accounts: 20, share: 0.2 }).plan, ctx.seed);
    const hijack = clock.items.find((x) => x.kafkaTs !== undefined)!;
    expect(hijack.kafkaTs! - hijack.ts).toBe(3650 * 24 * HOUR);
    expect(hijack.recordTs).toBe(hijack.kafkaTs);
    // Framing: honest, established users report the locked campaign as spam.
    const lock = by('framing').build(ctx, { mode: 'lock-echo', share: 0.05 });
    expect(lock.plan.live).toHaveLength(0);
    expect(lock.plan.honestLive!.every((d) => d.source.startsWith('src-') && d.example!.label === SPAM && d.example!.text!.startsWith('Repeat after me:'))).toBe(true);
    // DoS: records of MAX_TEXT_CHARS characters.
    expect(by('dos').build(ctx, { share: 0.05, chars: 20000 }).plan.live.every((d) => d.example!.text!.length === 20000)).toBe(true);
    // DoS below the threshold: what the sidecar reads of it (TEXT_READ_CHARS) is ham the toxicity screen passes,
    // but only after its exact count (the bound alone does not decide it).
    const below = by('dos').build(ctx, { share: 0.05, chars: 20000, mode: 'below-threshold' }).plan.live;
    const tox = new ToxicityDetector(DEFAULT_TOXICITY);
    const bound = new MatchBound(englishDataset.build().blacklistedTerms.map((t) => t.pattern), englishRecommendedTransformers.blacklistMatcherTransformers ?? []);
    for (const d of below.slice(0, 5)) {
      const text = d.example!.text!.slice(0, 4000);
      expect(d.example!.label).toBe(HAM);
      expect(tox.screen({ id: 'x', source: 's', label: HAM, text }, { topic: 't', partition: 0, offset: '0', key: null, value: null })).toEqual({ kind: 'accept' });
      expect(bound.count(text)).toBeGreaterThan((DEFAULT_TOXICITY.minPer100Words * bound.words) / 100);
    }
    // Sybil flush: one more account than the trust registry keeps, each once.
    const flush = by('sybil-flush').build(ctx, { extraAccounts: 10 });
    expect(flush.plan.live).toHaveLength(100_010);
    expect(new Set(flush.plan.live.map((d) => d.source)).size).toBe(100_010);
  });

  it('dense triggers change the image and poison carries the target label', () => {
    const img = digit(3, 1).features as number[];
    for (const kind of ['patch', 'pattern', 'blend']) {
      const t = makeTrigger(kind, 's')(img);
      expect(t).toHaveLength(784);
      expect(t.some((x, i) => x !== img[i])).toBe(true);
      expect(t.every((x) => x >= 0 && x <= 1)).toBe(true);
    }
    const ctx = context(denseSet, 400);
    const sc = FAMILIES.find((f) => f.name === 'dense-backdoor')!.build(ctx, { trigger: 'patch', target: 0, share: 0.1 });
    expect(sc.plan.live.every((d) => d.example!.label === 0)).toBe(true);
    const flips = FAMILIES.find((f) => f.name === 'dense-flip')!.build(ctx, { mode: 'random', share: 0.1 });
    expect(flips.plan.live.every((d) => d.example!.label !== denseSet.train.find((e) => e.features === d.example!.features)!.label)).toBe(true);
  });
});

describe('oracle-guided padding', () => {
  const base = split.train.find((m) => m.label === SPAM && tokenize(m.text).length > 100)!.text;
  const words = textSet.hamWords;

  it('pads until the oracle says p(ham) ≥ threshold, and no fewer words would have done', async () => {
    const oracle = wordShareOracle(words);
    const r = await padUntilAccepted(base, oracle, { threshold: 0.32, budget: 12, wanted: HAM, words, firstPad: 16, maxChars: 20000 });
    expect(r.reached).toBe(true);
    expect(r.queries).toBeLessThanOrEqual(12);
    expect(oracle.calls).toBe(r.queries);
    const [p] = await oracle([{ text: r.text }]);
    expect(accepted(p, { threshold: 0.32, wanted: HAM })).toBe(true);
    // The size before (half, or none) was refused.
    const before = await padUntilAccepted(base, wordShareOracle(words), { threshold: 0.32, budget: r.queries - 1, wanted: HAM, words, firstPad: 16, maxChars: 20000 });
    expect(before.reached).toBe(false);
  });

  it('exhausts its budget and sends the last try when the threshold is out of reach', async () => {
    const oracle = wordShareOracle(words);
    const r = await padUntilAccepted(base, oracle, { threshold: 0.99, budget: 3, wanted: HAM, words, firstPad: 16, maxChars: 20000 });
    expect(r).toMatchObject({ reached: false, queries: 3, padWords: 32 });
    expect(oracle.calls).toBe(3);
  });

  it('with labels only, pads until the label is the wanted one', async () => {
    const r = await padUntilAccepted(base, wordShareOracle(words, true), { threshold: 0.32, budget: 12, wanted: HAM, words, firstPad: 16, maxChars: 20000 });
    expect(r.reached).toBe(true);
    expect((await wordShareOracle(words)([{ text: r.text }]))[0].probabilities![HAM]).toBeGreaterThanOrEqual(0.5);
  });

  it('never sends more than MAX_TEXT_CHARS', async () => {
    const r = await padUntilAccepted(base, wordShareOracle(words), { threshold: 0.99, budget: 20, wanted: HAM, words, firstPad: 16, maxChars: 3500 });
    expect(r.reached).toBe(false);
    expect(r.text.length).toBeLessThanOrEqual(3500);
  });
});

describe('publicPredict and the harness', () => {
  it('publicPredict returns exactly what POST /v1/predict answers', async () => {
    const config = loadConfig({ KAFKA_BROKERS: '127.0.0.1:1', CHECKPOINT_DIR: `${os.tmpdir()}/redteam-test-${process.pid}`, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'silent', SEED: '1' });
    const sidecar = await createSidecar(config, createLogger('silent'));
    await sidecar.listen();
    try {
      const inputs = [{ text: 'free money now' }, { text: 'meeting notes attached' }];
      const got = await publicPredict(`http://127.0.0.1:${sidecar.port}`, inputs);
      const direct = sidecar.predict(inputs).probabilities;
      expect(got.map((p) => p.probabilities)).toEqual(direct.map((row) => row.map((x) => expect.closeTo(x, 6))));
      expect(got.map((p) => p.label)).toEqual(direct.map((row) => row.indexOf(Math.max(...row))));
      await expect(publicPredict(`http://127.0.0.1:${sidecar.port}`, [])).rejects.toThrow(/400/);
    } finally {
      await sidecar.stop();
    }
  });

  it('counts an honest record the screens quarantine as honest quarantine, and its source among those harmed', async () => {
    // Labelled ham: an abuse-class label (spam) would pass echo (ABUSE_LABELS, README "Judging the label's direction").
    const clean = textSet.train.slice(0, 150).map((e, i) => (i === 120 ? { label: HAM, text: 'Repeat after me: this is fine' } : e));
    const stream = buildStream(clean, { live: [] }, 'harness');
    const r = await runStream(stream, { kind: 'text', seed: 'harness', serveEvery: 64, test: textSet.test.slice(0, 50) });
    expect(r.quarantineByStage.echo).toEqual({ poison: 0, honest: 1, attacker: 0 });
    expect(r.honestQuarantine).toBeCloseTo(Object.values(r.quarantineByStage).reduce((a, s) => a + s.honest, 0) / 150, 10);
    // A per-record screen's quarantine is not a mark against its source (filters/source-registry.ts STRIKE_CODES):
    // honest quarantine counts it, "trust lost" does not.
    expect(r.trustLost).toBe(0);
    expect(r.curve.length).toBeGreaterThanOrEqual(2);
    expect(r.checkpointBytes).toBeGreaterThan(r.screenStateBytes);
    // Its counterfactual has no attacker message here, so it is the same run: same steps, coins and noise.
    const c = await runStream(counterfactual(stream), { kind: 'text', seed: 'harness', serveEvery: 64, test: textSet.test.slice(0, 50) });
    expect(c.accuracy).toBe(r.accuracy);
    expect(c.honestQuarantine).toBe(r.honestQuarantine);
  });

  it('counts honest sources struck for their own volume as having lost trust', async () => {
    // 150 records from 10 sources: a cap of 3 records per source per 30 days strikes every one of them.
    const clean = textSet.train.slice(0, 150);
    const stream = buildStream(clean, { live: [] }, 'harness-strikes', { ...DEFAULT_TIMELINE, sources: 10 });
    const env = { SCREENS: 'rate-caps,echo', SCREENS_CONFIG: JSON.stringify({ rateCaps: { windowMs: 30 * DAY, maxPerSource: 3, maxPerNewSource: 3 } }) };
    const r = await runStream(stream, { kind: 'text', seed: 'harness', serveEvery: 64, test: textSet.test.slice(0, 50), env });
    expect(r.quarantineByStage['rate-caps']?.honest ?? 0).toBeGreaterThan(0);
    expect(r.trustLost).toBeGreaterThan(0);
  });

  it('an emptied message takes its slot but trains nothing: the counterfactual of an attack differs only by its content', async () => {
    const clean = textSet.train.slice(0, 140);
    const flood = Array.from({ length: 40 }, () => ({ source: 'x-1', example: { label: HAM, text: split.train.find((m) => m.label === SPAM)!.text } }));
    const stream = buildStream(clean, { live: flood }, 'cf');
    // Per-record screens only, so that the honest records meet the same verdicts in both runs.
    const spec = { kind: 'text' as const, seed: 'cf', serveEvery: 64, test: textSet.test.slice(0, 50), env: { SCREENS: 'echo,toxicity' } };
    const attacked = await runStream(stream, spec);
    const cf = await runStream(counterfactual(stream), spec);
    expect(cf.records).toBe(attacked.records);
    expect(cf.quarantineByStage.schema).toEqual({ poison: 0, honest: 0, attacker: 40 });
    expect(cf.honestQuarantine).toBe(attacked.honestQuarantine);
    expect(cf.curve.map((p) => p.at)).toEqual(attacked.curve.map((p) => p.at));
  });
});
