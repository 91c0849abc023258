import seedrandom from 'seedrandom';
import { DEFAULT_RARE_TOKEN, DEFAULT_TRUST, DETECTOR_DEFAULTS, createDetectors, parseDetectorSettings } from '../../filters/config';
import { featureView } from '../../filters/feature-view';
import { RareFeatureDetector, poissonSurprise, type RareFeatureSettings } from '../../filters/rare-feature';
import { RareTokenDetector } from '../../filters/rare-token';
import { EventClock, SourceRegistry } from '../../filters/trust';
import { denseFeaturizer, fnv1a, hashedTextFeaturizer } from '../../middleware/featurize';
import { loadSpamCorpus, splitSpamCorpus } from '../../src/data/spam';
import { DAY, HOUR, RAW, T0, honestDigits, honestMail, inject, mnistDigits, pct, tally } from '../helpers/screen-streams';

const { enabled: _enabled, maxLabels: _maxLabels, ...DEFAULTS } = DETECTOR_DEFAULTS.rareFeature;
const TEXT_DIM = 1 << 12; // TEXT_HASH_DIM's default

function detector(kind: 'text' | 'dense', over: Partial<RareFeatureSettings> = {}) {
  const dim = kind === 'text' ? TEXT_DIM : 784;
  const featurizer = kind === 'text' ? hashedTextFeaturizer(dim) : denseFeaturizer(dim);
  const shared = { clock: new EventClock(() => T0), registry: new SourceRegistry(DEFAULT_TRUST) };
  const det = new RareFeatureDetector({ ...DEFAULTS, maxLabels: kind === 'text' ? 2 : 10, ...over }, { ...shared, features: featureView(featurizer, 4096), kind, dim });
  return { ...shared, det };
}

const rareToken = () => new RareTokenDetector(DEFAULT_RARE_TOKEN, { clock: new EventClock(() => T0), registry: new SourceRegistry(DEFAULT_TRUST) });

// A code-reading attacker picks a trigger the model sees in a bucket ordinary mail rarely fills: the 3-letter
// token whose bucket (FNV-1a mod TEXT_HASH_DIM) is least used in the corpus, and 40 six-letter tokens that hash there.
const df = new Float64Array(TEXT_DIM);
for (const m of loadSpamCorpus()) for (const j of hashedTextFeaturizer(TEXT_DIM).encodeSparse!({ text: m.text }).indices) df[j] += 1;
const LETTERS = 'abcdefghijklmnopqrstuvwxyz';
let TRIGGER = '';
for (const a of LETTERS) for (const b of LETTERS) for (const c of LETTERS) if (!TRIGGER || df[fnv1a(a + b + c) % TEXT_DIM] < df[fnv1a(TRIGGER) % TEXT_DIM]) TRIGGER = a + b + c;
const BUCKET = fnv1a(TRIGGER) % TEXT_DIM;
const SAME_BUCKET: string[] = [];
for (const rng = seedrandom('bucket'); SAME_BUCKET.length < 40; ) {
  const w = Array.from({ length: 6 }, () => LETTERS[Math.floor(rng() * 26)]).join('');
  if (fnv1a(w) % TEXT_DIM === BUCKET && !SAME_BUCKET.includes(w)) SAME_BUCKET.push(w);
}
const SPAM = splitSpamCorpus().test.filter((m) => m.label === 1);
/** Spam labelled ham with the trigger appended: the backdoor's training records. */
const backdoor = (trigger: (i: number) => string) => (i: number) => ({ label: 0, text: `${SPAM[i % SPAM.length].text} ${trigger(i)}` });

describe('rare-feature: the rare-token bypasses of issue 10', () => {
  const honest = honestMail('rf-2s', 2000);

  it(`holds a 3-letter trigger ("${TRIGGER}", hashed bucket used by ${df[BUCKET]} of 6,046 mails) that rare-token cannot see`, () => {
    const stream = inject(honest, 2 * HOUR, 15_000, 200, backdoor(() => TRIGGER));
    const t = tally(detector('text').det, stream);
    console.log(`rare-feature, 3-letter trigger burst: held ${pct(t.poisonHeld, t.poison)} (first at #${t.firstHeld}); honest held ${pct(t.honestHeld, t.honest)}`);
    expect(t.codes).toEqual(new Set(['rare_feature_burst']));
    expect(t.firstHeld).toBeLessThanOrEqual(12);
    expect(t.poisonHeld / t.poison).toBeGreaterThanOrEqual(0.9);
    expect(t.honestHeld / t.honest).toBeLessThanOrEqual(0.02);
    const r = tally(rareToken(), stream);
    console.log(`rare-token on the same stream: held ${pct(r.poisonHeld, r.poison)}`);
    expect(r.poisonHeld).toBe(0);
  });

  it('reads the whole record: a trigger after 1,000 distinct filler words is held too', () => {
    const rng = seedrandom('filler');
    const filler = () => Array.from({ length: 1000 }, () => Array.from({ length: 7 }, () => LETTERS[Math.floor(rng() * 26)]).join('')).join(' ');
    const t = tally(detector('text').det, inject(honest.slice(0, 4500), 2 * HOUR, 15_000, 60, () => ({ label: 0, text: `${filler()} ${TRIGGER}` })));
    console.log(`rare-feature, trigger after 1,000 filler words: held ${pct(t.poisonHeld, t.poison)} (first at #${t.firstHeld})`);
    expect(t.poisonHeld / t.poison).toBeGreaterThanOrEqual(0.8);
  });

  it('holds 40 different tokens that share one hashed bucket (one feature to the model)', () => {
    const stream = inject(honest, 2 * HOUR, 15_000, 200, backdoor((i) => SAME_BUCKET[i % 40]));
    const t = tally(detector('text').det, stream);
    console.log(`rare-feature, 40 tokens in one bucket: held ${pct(t.poisonHeld, t.poison)} (first at #${t.firstHeld}); honest held ${pct(t.honestHeld, t.honest)}`);
    expect(t.poisonHeld / t.poison).toBeGreaterThanOrEqual(0.9);
    expect(t.honestHeld / t.honest).toBeLessThanOrEqual(0.02);
    expect(tally(rareToken(), stream).poisonHeld).toBe(0);
  });

  it('holds a trigger used once an hour for days (honest mail once a minute, 4 days of event time)', () => {
    const stream = inject(honestMail('rf-60s', 60_000), 1.5 * DAY, HOUR, 60, backdoor(() => TRIGGER));
    const t = tally(detector('text').det, stream);
    console.log(`rare-feature, trigger once an hour: held ${pct(t.poisonHeld, t.poison)} (first at #${t.firstHeld}); honest held ${pct(t.honestHeld, t.honest)}`);
    expect(t.firstHeld).toBeLessThanOrEqual(16);
    expect(t.poisonHeld / t.poison).toBeGreaterThanOrEqual(0.7);
    expect(t.honestHeld / t.honest).toBeLessThanOrEqual(0.02);
  });

  it('is slower on a trigger that shares its bucket with common words (what the model sees is diluted too)', () => {
    const busy = 'zqx'; // its bucket holds words of about 2% of all mails
    const t = tally(detector('text').det, inject(honest, 2 * HOUR, 15_000, 200, backdoor(() => busy)));
    console.log(`rare-feature, 3-letter trigger in a busy bucket (${df[fnv1a(busy) % TEXT_DIM]} mails): held ${pct(t.poisonHeld, t.poison)} (first at #${t.firstHeld})`);
    expect(t.poisonHeld / t.poison).toBeGreaterThanOrEqual(0.4);
  });

  it('holds ≤ 2% of clean traffic at either pace, and no one account signing every mail with its own rare word', () => {
    for (const [name, items] of [
      ['one mail every 2 s', honest],
      ['one mail a minute', honestMail('rf-60s-clean', 60_000)],
    ] as const) {
      const t = tally(detector('text').det, items);
      console.log(`rare-feature on clean SpamAssassin, ${name}: held ${pct(t.honestHeld, t.honest)}`);
      expect(t.honestHeld / t.honest).toBeLessThanOrEqual(0.02);
    }
    const { det } = detector('text');
    tally(det, honest.slice(0, 3000));
    const end = honest[2999].record.ts as number;
    const held = Array.from({ length: 60 }, (_, i) => det.screen({ id: `sig${i}`, source: 'carol', ts: end + i * 30_000, label: 0, text: `${honest[i].record.text}\n-- ${TRIGGER}` }, RAW));
    expect(held.filter((v) => v.kind === 'quarantine')).toEqual([]);
  });
});

describe('rare-feature: dense coordinates (MNIST)', () => {
  it('holds a backdoor patch of normally dark pixels pushing label 0, not ordinary digits', () => {
    const patch = (f: readonly number[]) => f.map((x, j) => (Math.floor(j / 28) >= 24 && Math.floor(j / 28) < 27 && j % 28 >= 24 && j % 28 < 27 ? 1 : x));
    const sources = mnistDigits().filter((r) => r.label !== 0);
    const stream = inject(honestDigits('rf-mnist', 2000), 2 * HOUR, 15_000, 200, (i) => ({ label: 0, features: patch(sources[(i * 37) % sources.length].features) }));
    const t = tally(detector('dense').det, stream);
    console.log(`rare-feature, MNIST patch trigger: held ${pct(t.poisonHeld, t.poison)} (first at #${t.firstHeld}); honest held ${pct(t.honestHeld, t.honest)}`);
    expect(t.codes).toEqual(new Set(['rare_feature_burst']));
    expect(t.poisonHeld / t.poison).toBeGreaterThanOrEqual(0.9);
    expect(t.honestHeld / t.honest).toBeLessThanOrEqual(0.02);
  });
});

describe('rare-feature: state and settings', () => {
  it('keeps a fixed state whose size the settings set, and round-trips through the chain state', () => {
    const a = detector('text');
    const bytes = a.det.stateBytes;
    // 4,096 buckets × 2 labels × 4 bytes × (2 short + 2 long + 4 snapshot arrays), the 2-slot source register,
    // and a byte per (bucket, label) for the caught flags.
    expect(bytes).toBe(TEXT_DIM * 2 * 4 * 8 + TEXT_DIM * 2 * 4 + TEXT_DIM * 2);
    const stream = inject(honestMail('rf-rt', 2000).slice(0, 4000), 2 * HOUR, 15_000, 40, backdoor(() => TRIGGER));
    tally(a.det, stream.slice(0, 3900));
    expect(a.det.stateBytes).toBe(bytes);
    const json = JSON.parse(JSON.stringify({ d: a.det.toJSON(), r: a.registry.toJSON(), c: a.clock.toJSON() }));
    const b = detector('text');
    b.det.restore(json.d);
    b.registry.restore(json.r);
    b.clock.restore(json.c);
    const rest = stream.slice(3900).map((x) => x.record);
    expect(rest.map((r) => b.det.screen(r, RAW))).toEqual(rest.map((r) => a.det.screen(r, RAW)));
    expect(() => detector('text', { scalesMs: [HOUR, DAY] }).det.restore(json.d)).toThrow(/were the model width, maxLabels or scalesMs changed/);
  });

  it('runs in the chain with the model featurizer, sized by the model classes, listed as cross-record', () => {
    const deps = { now: () => T0, featurizer: hashedTextFeaturizer(TEXT_DIM), numClasses: 2 };
    const chain = createDetectors({ rareFeature: { enabled: true }, nearDuplicate: { enabled: true } }, deps);
    expect(chain.detectors.map((d) => `${d.name}:${d.scope}`).slice(-2)).toEqual(['near-duplicate:cross-record', 'rare-feature:cross-record']);
    const stream = honestMail('rf-chain', 2000).slice(0, 300);
    tally(chain.detectors, stream);
    const state = JSON.parse(JSON.stringify(chain.toJSON()));
    expect(Object.keys(state)).toEqual(expect.arrayContaining(['nearDuplicate', 'rareFeature']));
    const other = createDetectors({ rareFeature: { enabled: true }, nearDuplicate: { enabled: true } }, deps);
    other.restore(state);
    expect(JSON.parse(JSON.stringify(other.toJSON()))).toEqual(state);
    expect(() => createDetectors({ rareFeature: { enabled: true } }, { now: () => T0 })).toThrow(/need the model's featurizer/);
  });

  it('rejects bad settings with a clear message', () => {
    expect(() => parseDetectorSettings({ rareFeature: { scalesMs: [DAY, HOUR] } })).toThrow(/detectors\.rareFeature\.scalesMs: scalesMs must be increasing/);
    expect(() => parseDetectorSettings({ rareFeature: { scalesMs: [HOUR] } })).toThrow(/at least two time scales/);
    expect(() => parseDetectorSettings({ rareFeature: { minShare: 0.3 } })).toThrow(/minShare is a fraction in \(0\.5, 1\]/);
    expect(() => parseDetectorSettings({ rareFeature: { minRatio: 1 } })).toThrow(/minRatio must be above 1/);
  });

  it('bounds the Poisson tail from above (Chernoff), so a surprise is never overstated', () => {
    // Exact upper tails P(N ≥ n | λ) against the bound's e^−surprise.
    const tail = (n: number, lambda: number) => {
      let p = Math.exp(-lambda);
      let below = 0;
      for (let k = 0; k < n; k++) {
        below += p;
        p *= lambda / (k + 1);
      }
      return 1 - below;
    };
    for (const [n, lambda] of [[8, 0.5], [12, 2.3], [30, 10], [5, 4]]) expect(tail(n, lambda)).toBeLessThanOrEqual(Math.exp(-poissonSurprise(n, lambda)) + 1e-12);
    expect(poissonSurprise(3, 4)).toBe(0);
  });
});
