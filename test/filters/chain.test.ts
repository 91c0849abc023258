import { createDetectors, parseDetectorSettings } from '../../filters/config';
import { textFeaturize } from '../../filters/outliers';
import { hashedTextFeaturizer } from '../../middleware/featurize';
import { splitSpamCorpus, shuffled } from '../../src/data/spam';
import type { Detector, Verdict } from '../../filters/types';
import type { TrainingRecord } from '../../core/record';
import { TayguardError } from '../../core/errors';
import seedrandom from 'seedrandom';
import { RAW, runChain } from '../helpers/screen-chain';

const raw = RAW;
const run = runChain;
const T0 = 1_700_000_000_000;

const DIM = 1024;
const deps = () => ({ now: () => T0, featurize: textFeaturize(hashedTextFeaturizer(DIM)), featureDim: DIM });

describe('detector settings', () => {
  it('fills every default', () => {
    const s = parseDetectorSettings({});
    expect(s.rateCaps).toMatchObject({ enabled: true, windowMs: 3600_000, maxPerSource: 200, maxPerNewSource: 20 });
    expect(s.campaign.burst.minNewSources).toBe(30);
    expect(s.echo.patterns.length).toBeGreaterThan(3);
  });

  it.each([
    [{ rateCaps: { maxPerNewSource: 50, maxPerSource: 10 } }, /rateCaps.maxPerNewSource: maxPerNewSource must not exceed maxPerSource/],
    [{ rateCaps: { maxShare: 1.5 } }, /rateCaps.maxShare: maxShare is a fraction in \(0, 1\]/],
    [{ echo: { patterns: ['repeat (after'] } }, /echo.patterns.0: not a valid regular expression: "repeat \(after"/],
    [{ campaign: { bands: 100, rows: 10 } }, /campaign.rows: bands × rows/],
    [{ campaign: { burst: { minShare: 0 } } }, /campaign.burst.minShare/],
    [{ outliers: { quantile: 1 } }, /outliers.quantile: a quantile between 0.5 and 1/],
    [{ toxicity: { blocklist: ['  '] } }, /toxicity.blocklist.0: blocklist entries must not be empty/],
    [{ rateCaps: { windwMs: 5 } }, /rateCaps: Unrecognized key: "windwMs"/],
  ])('rejects %j with a clear message', (input, msg) => {
    expect(() => parseDetectorSettings(input)).toThrow(msg);
    try {
      parseDetectorSettings(input);
    } catch (e) {
      expect(TayguardError.is(e) && e.code).toBe('CONFIG_INVALID');
    }
  });

  it('refuses a stage switched on without its dependency', () => {
    expect(() => createDetectors({ outliers: { enabled: true } }, { now: () => 0 })).toThrow(/no featurize dependency/);
    expect(() => createDetectors({ labelConsistency: { enabled: true } }, { now: () => 0 })).toThrow(/no predict\/modelSeen/);
  });
});

describe('createDetectors', () => {
  it('builds the chain in order with stable names and honest scopes', () => {
    const chain = createDetectors({}, deps());
    expect(chain.detectors.map((d) => `${d.name}:${d.scope}`)).toEqual([
      'trust:cross-record',
      'rate-caps:cross-record',
      'echo:record',
      'toxicity:record',
      'campaign:cross-record',
      'outliers:cross-record',
    ]);
  });

  it('stops a Tay-style flood: 100 new sources posting the same toxic "repeat after me" text with flipped labels', () => {
    const chain = createDetectors({}, deps());
    for (const [i, m] of shuffled(splitSpamCorpus().test, 'warm').slice(0, 300).entries()) {
      run(chain.detectors, { id: m.id, source: `user${i % 60}`, ts: T0 + i * 2000, label: m.label, text: m.text });
    }
    const t = T0 + 700_000;
    const v = Array.from({ length: 100 }, (_, i) =>
      run(chain.detectors, { id: `tay${i}`, source: `troll${i}`, ts: t + i * 500, label: 0, text: 'repeat after me: fuck those niggers, hitler was right' }),
    );
    expect(v.filter((x) => x.kind === 'quarantine')).toHaveLength(100);
    // Without the trigger phrase and the slurs, the near-duplicate campaign and the label burst take over.
    const rng = seedrandom('tay2');
    const base = 'the election was stolen and the media is lying to you about the results share this before they delete it';
    const w = () => base.split(' ').map((x) => (rng() < 0.05 ? 'really' : x)).join(' ');
    const v2 = Array.from({ length: 100 }, (_, i) => run(chain.detectors, { id: `b${i}`, source: `bot${i}`, ts: t + 60_000 + i * 500, label: 0, text: w() }));
    const q2 = v2.filter((x) => x.kind === 'quarantine');
    console.log(`Tay flood: 100/100 caught; near-duplicate campaign without trigger words: ${q2.length}/100 caught`);
    expect(q2.length).toBeGreaterThanOrEqual(90);
    expect(chain.registry.trust('troll0', t + 100_000)).toBe(0);
    expect(chain.registry.get('troll0')?.quarantined).toBe(1);
  });

  it('round-trips the whole chain state (same verdicts afterwards)', () => {
    const a = createDetectors({}, deps());
    const mails = shuffled(splitSpamCorpus().test, 'chain-rt');
    mails.slice(0, 200).forEach((m, i) => run(a.detectors, { id: m.id, source: `u${i % 20}`, ts: T0 + i * 1000, label: m.label, text: m.text }));
    const b = createDetectors({}, deps());
    b.restore(JSON.parse(JSON.stringify(a.toJSON())));
    expect(JSON.parse(JSON.stringify(b.toJSON()))).toEqual(JSON.parse(JSON.stringify(a.toJSON())));
    const next = mails.slice(200, 260).map((m, i) => ({ id: m.id, source: `u${i % 25}`, label: m.label, text: m.text })); // no ts: the injected clock
    expect(next.map((r) => run(b.detectors, r))).toEqual(next.map((r) => run(a.detectors, r)));
    expect(() => b.restore({ version: 2 } as never)).toThrow(/unknown state version/);
  });
});
