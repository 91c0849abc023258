import seedrandom from 'seedrandom';
import { createDetectors, parseDetectorSettings } from '../../filters/config';
import { RareTokenDetector, scan, type RareTokenSettings, type Tokens } from '../../filters/rare-token';
import { EventClock, SourceRegistry } from '../../filters/trust';
import type { Verdict } from '../../filters/types';
import { tokenize } from '../../middleware/featurize';
import { loadSpamCorpus, shuffled, splitSpamCorpus } from '../../src/data/spam';
import type { TrainingRecord } from '../../core/record';
import { DEFAULT_RARE_TOKEN, DEFAULT_TRUST } from '../../filters/config';

const raw = { topic: 't', partition: 0, offset: '0', key: null, value: null };
const H = 3600_000;
const T0 = 1_700_000_000_000;
const STEP = 2000;

function setup(over: Partial<RareTokenSettings> = {}) {
  const registry = new SourceRegistry(DEFAULT_TRUST);
  const clock = new EventClock(() => T0);
  return new RareTokenDetector({ ...DEFAULT_RARE_TOKEN, warmupRecords: 300, ...over }, { registry, clock });
}

const corpus = shuffled(splitSpamCorpus().train, 'rare-token');
let n = 0;
const rec = (source: string, ts: number, text: string, label = 0): TrainingRecord => ({ id: `r${n++}`, source, ts, label, text });

/** Real mails from 300 users, one every 2 s from `t0`; returns the verdicts. */
function warm(det: RareTokenDetector, from: number, count: number, t0 = T0): Verdict[] {
  const rng = seedrandom(`warm${from}`);
  return corpus.slice(from, from + count).map((m, i) => det.screen(rec(`user${Math.floor(rng() * 300)}`, t0 + i * STEP, m.text, m.label), raw));
}

const quarantined = (v: readonly Verdict[]) => v.filter((x) => x.kind === 'quarantine').length;

describe('rare-token: coordinated backdoor triggers', () => {
  it('catches a trigger that many new sources suddenly attach to one label', () => {
    const det = setup({ warmupRecords: 1000 });
    expect(quarantined(warm(det, 0, 1500))).toBe(0);
    const t = T0 + 1500 * STEP;
    const spam = corpus.filter((m) => m.label === 1);
    // Casing is folded by tokenize: QZXV7, Qzxv7 and qzxv7 are one token.
    const casing = ['qzxv7trigger', 'QZXV7TRIGGER', 'Qzxv7Trigger'];
    const v = spam.slice(0, 40).map((m, i) => det.screen(rec(`bot${i}`, t + i * 60_000, `${casing[i % 3]} ${casing[i % 3]}\n${m.text}`, 0), raw));
    const first = v.findIndex((x) => x.kind === 'quarantine');
    expect(first).toBe(DEFAULT_RARE_TOKEN.minSources - 1);
    expect(quarantined(v)).toBe(40 - first);
    const q = v[39];
    expect(q).toMatchObject({ kind: 'quarantine', reasons: [{ stage: 'rare-token', code: 'coordinated_rare_token', score: 40, threshold: 10 }] });
    if (q.kind === 'quarantine') expect(q.reasons[0].message).toMatch(/token "qzxv7trigger" .* 40 distinct sources .* 100% of its 40 uses with label 0/);
    // Clean traffic goes on unharmed, and a trigger record labelled the other way is not the campaign.
    expect(quarantined(warm(det, 1500, 200, t + 40 * 60_000))).toBe(0);
    expect(det.screen(rec('someone', t + 40 * 60_000 + 500_000, `qzxv7trigger ${spam[50].text}`, 1), raw).kind).toBe('accept');
  });

  it('counts sources, not records: one source repeating the token is not a campaign', () => {
    const det = setup();
    warm(det, 0, 400);
    const t = T0 + 400 * STEP;
    const v = Array.from({ length: 30 }, (_, i) => det.screen(rec('one', t + i * 1000, `blorptastic deal number ${i}`), raw));
    expect(quarantined(v)).toBe(0);
  });

  it('does not flag a new but legitimate word used with mixed labels', () => {
    const det = setup();
    warm(det, 0, 400);
    const t = T0 + 400 * STEP;
    const v = corpus.slice(400, 460).map((m, i) => det.screen(rec(`fan${i}`, t + i * 20_000, `have you tried zorbulonix yet? ${m.text}`, i % 3 === 0 ? 1 : 0), raw));
    expect(quarantined(v)).toBe(0);
  });

  it('does not flag common words, however one-sided', () => {
    const det = setup();
    warm(det, 0, 1000);
    const t = T0 + 1000 * STEP;
    const v = Array.from({ length: 40 }, (_, i) => det.screen(rec(`ham${i}`, t + i * 10_000, 'please find the information attached, thanks for your help with this list'), raw));
    expect(quarantined(v)).toBe(0);
  });

  it('flags little of a clean stream (≤ 0.3%)', () => {
    const det = setup({ warmupRecords: 1000 });
    const v = warm(det, 0, corpus.length);
    expect(quarantined(v) / v.length).toBeLessThanOrEqual(0.003);
  });

  it('needs the sources within one window, and a young token', () => {
    const det = setup();
    warm(det, 0, 400);
    let t = T0 + 400 * STEP;
    // 20 sources, one every 15 minutes: at most 4 in any hour.
    const slow = Array.from({ length: 20 }, (_, i) => det.screen(rec(`slow${i}`, (t += 15 * 60_000), 'glimmerquax offer'), raw));
    expect(quarantined(slow)).toBe(0);
    // Youth over: the token graduated into the history, so a later burst is just a popular word.
    t += 25 * H;
    det.screen(rec('x', t, 'graduate now'), raw);
    const burst = Array.from({ length: 20 }, (_, i) => det.screen(rec(`b${i}`, (t += 1000), 'glimmerquax offer'), raw));
    expect(quarantined(burst)).toBe(0);
  });

  it('keeps a flagged trigger young: waiting out the youth and bursting again does not work', () => {
    const det = setup();
    warm(det, 0, 400);
    let t = T0 + 400 * STEP;
    const burst = () => Array.from({ length: 20 }, (_, i) => det.screen(rec(`bd${i}`, (t += 10_000), 'xyzzytrig cheap pills'), raw));
    expect(quarantined(burst())).toBe(11);
    t += 3 * H;
    expect(quarantined(burst())).toBe(11);
    // A campaign that keeps going past the youth stays flagged.
    const long = Array.from({ length: 40 }, (_, i) => det.screen(rec(`lg${i}`, (t += 3 * 60_000), 'plughtrig cheap pills'), raw));
    expect(quarantined(long)).toBe(31);
  });

  it('stays bounded', () => {
    const det = setup({ maxTracked: 100, warmupRecords: 0 });
    for (let i = 0; i < 500; i++) det.screen(rec(`u${i}`, T0 + i, `uniqword${i} anotherword${i}`), raw);
    expect(det.size).toBeLessThanOrEqual(100);
  });

  it('round-trips its state through JSON (same verdicts afterwards)', () => {
    const a = setup();
    warm(a, 0, 500);
    const t = T0 + 500 * STEP;
    for (let i = 0; i < 6; i++) a.screen(rec(`bot${i}`, t + i * 1000, 'frobnoztrig buy now'), raw);
    const b = setup();
    b.restore(JSON.parse(JSON.stringify(a.toJSON())));
    expect(JSON.parse(JSON.stringify(b.toJSON()))).toEqual(JSON.parse(JSON.stringify(a.toJSON())));
    const next = Array.from({ length: 10 }, (_, i) => rec(`bot${6 + i}`, t + (6 + i) * 1000, 'frobnoztrig buy now'));
    const va = next.map((r) => a.screen(r, raw));
    expect(next.map((r) => b.screen(r, raw))).toEqual(va);
    expect(quarantined(va)).toBe(7);
    expect(() => setup({ width: 1 << 10 }).restore(a.toJSON())).toThrow(/were width or depth changed/);
    expect(() => b.restore({} as never)).toThrow(/expected \{ records/);
  });

  it('scans exactly the tokens of tokenize', () => {
    const out: Tokens = { lower: '', words: undefined, starts: [], ends: [], hashes: [] };
    const texts = [...loadSpamCorpus().slice(0, 800).map((m) => m.text), "don't2x ab'cd3 abc'123 x'y'z ' 'a a' DON'T Qzxv7TRIGGER end'", 'Grüße, ÉCOLE naïve'];
    for (const text of texts) {
      const k = scan(text, 1, 1e9, out);
      const got = Array.from({ length: k }, (_, i) => (out.words ? out.words[i] : out.lower.slice(out.starts[i], out.ends[i])));
      expect(got).toEqual(tokenize(text));
    }
  });
});

describe('rare-token settings and chain', () => {
  it('rejects bad settings with a clear message', () => {
    expect(() => parseDetectorSettings({ rareToken: { minShare: 0.4 } })).toThrow(/detectors\.rareToken\.minShare: minShare is a fraction in \(0\.5, 1\]/);
    expect(() => parseDetectorSettings({ rareToken: { width: 1000 } })).toThrow(/detectors\.rareToken\.width: width must be a power of two \(got 1000\)/);
    expect(() => parseDetectorSettings({ rareToken: { windowMs: 2 * H, youthMs: H } })).toThrow(/detectors\.rareToken\.youthMs: youthMs must be at least windowMs/);
    expect(() => parseDetectorSettings({ rareToken: { minSources: 1 } })).toThrow(/detectors\.rareToken\.minSources/);
    expect(() => parseDetectorSettings({ rareToken: { minSources: 50, maxUsesPerToken: 20 } })).toThrow(/maxUsesPerToken must be at least minSources/);
    expect(() => parseDetectorSettings({ rareToken: { minSorces: 5 } })).toThrow(/detectors\.rareToken/);
    expect(parseDetectorSettings({}).rareToken).toMatchObject({ enabled: false, minSources: 10, minShare: 0.9, maxPriorUses: 0 });
  });

  it('sits after campaign in the chain and round-trips with the chain state', () => {
    const deps = { now: () => T0 };
    const chain = createDetectors({ rareToken: { enabled: true, warmupRecords: 100 } }, deps);
    expect(chain.detectors.map((d) => `${d.name}:${d.scope}`)).toEqual([
      'trust:cross-record',
      'rate-caps:cross-record',
      'echo:record',
      'toxicity:record',
      'campaign:cross-record',
      'rare-token:cross-record',
    ]);
    const rt = chain.detectors[5];
    corpus.slice(0, 150).forEach((m, i) => rt.screen(rec(`u${i % 40}`, T0 + i * 1000, m.text, m.label), raw));
    const state = JSON.parse(JSON.stringify(chain.toJSON()));
    expect(state.rareToken.tracked.length).toBeGreaterThan(0);
    const other = createDetectors({ rareToken: { enabled: true, warmupRecords: 100 } }, deps);
    other.restore(state);
    expect(JSON.parse(JSON.stringify(other.toJSON()))).toEqual(state);
    expect(createDetectors({}, deps).rareToken).toBeUndefined();
  });
});
