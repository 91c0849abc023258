import { RateCaps } from '../../filters/rate-caps';
import { EventClock, SourceRegistry } from '../../filters/trust';
import { splitSpamCorpus, shuffled } from '../../src/data/spam';
import type { TrainingRecord } from '../../core/record';
import seedrandom from 'seedrandom';
import { DEFAULT_RATE_CAPS, DEFAULT_TRUST } from '../../filters/config';

const raw = { topic: 't', partition: 0, offset: '0', key: null, value: null };
const H = 3600_000;
const T0 = 1_700_000_000_000;

function setup(over: Partial<typeof DEFAULT_RATE_CAPS> = {}) {
  const registry = new SourceRegistry({ ...DEFAULT_TRUST, newSourceAgeMs: 24 * H, newSourceMinRecords: 5 });
  const clock = new EventClock(() => T0);
  const caps = new RateCaps({ ...DEFAULT_RATE_CAPS, maxPerSource: 100, maxPerNewSource: 10, windowMs: H, ...over }, { registry, clock });
  return { registry, clock, caps };
}

let n = 0;
const rec = (source: string, ts: number, label = 0): TrainingRecord => ({ id: `r${n++}`, source, ts, label, text: 'hello there' });

describe('rate-caps', () => {
  it('gives a new source (a sybil) the stricter budget per window', () => {
    const { caps } = setup();
    const verdicts = Array.from({ length: 30 }, (_, i) => caps.screen(rec('sybil', T0 + i * 1000), raw));
    expect(verdicts.filter((v) => v.kind === 'accept')).toHaveLength(10);
    const q = verdicts[10];
    expect(q).toMatchObject({ kind: 'quarantine', reasons: [{ stage: 'rate-caps', code: 'new_source_rate_exceeded', score: 11, threshold: 10 }] });
    if (q.kind === 'quarantine') expect(q.reasons[0].message).toMatch(/new source "sybil" sent 11 records in 60 min/);
    // The window slides: an hour later the budget is back.
    expect(caps.screen(rec('sybil', T0 + 2 * H), raw).kind).toBe('accept');
  });

  it('caps an established source at maxPerSource', () => {
    const { caps } = setup();
    for (let i = 0; i < 6; i++) caps.screen(rec('old', T0 + i), raw); // history…
    const later = T0 + 48 * H; // …and age
    const v = Array.from({ length: 150 }, (_, i) => caps.screen(rec('old', later + i * 1000), raw));
    expect(v.filter((x) => x.kind === 'accept')).toHaveLength(100);
    expect(v[100]).toMatchObject({ kind: 'quarantine', reasons: [{ code: 'source_rate_exceeded', threshold: 100 }] });
  });

  it('caps one source\'s share of the window', () => {
    const { caps } = setup({ maxPerSource: 1000, maxPerNewSource: 1000, maxShare: 0.2, shareMinTotal: 100 });
    let t = T0;
    for (let i = 0; i < 200; i++) caps.screen(rec(`u${i % 50}`, t++), raw);
    const v = Array.from({ length: 100 }, () => caps.screen(rec('loud', t++), raw));
    const acc = v.filter((x) => x.kind === 'accept').length;
    expect(acc).toBeLessThanOrEqual(51); // 51/251 ≈ 0.2
    expect(v[99]).toMatchObject({ kind: 'quarantine', reasons: [{ code: 'source_share_exceeded', threshold: 0.2 }] });
  });

  it('passes clean SpamAssassin traffic (300 users, one mail every 2 s)', () => {
    const { caps } = setup({ ...DEFAULT_RATE_CAPS });
    const rng = seedrandom('rate-clean');
    const mails = shuffled(splitSpamCorpus().train, 'rate');
    let flagged = 0;
    mails.forEach((m, i) => {
      if (caps.screen({ id: m.id, source: `user${Math.floor(rng() * 300)}`, ts: T0 + i * 2000, label: m.label, text: m.text }, raw).kind !== 'accept') flagged++;
    });
    console.log(`rate-caps false positives on clean traffic: ${flagged}/${mails.length} = ${((100 * flagged) / mails.length).toFixed(2)}%`);
    expect(flagged / mails.length).toBeLessThanOrEqual(0.01);
  });

  it('round-trips its state and rejects a state with another bucket count', () => {
    const a = setup();
    for (let i = 0; i < 8; i++) a.caps.screen(rec('s', T0 + i), raw);
    const b = setup();
    b.registry.restore(JSON.parse(JSON.stringify(a.registry)));
    b.clock.restore(a.clock.toJSON());
    b.caps.restore(JSON.parse(JSON.stringify(a.caps)));
    expect(b.caps.countFor('s', T0 + 10)).toBe(8);
    const va = Array.from({ length: 5 }, (_, i) => a.caps.screen(rec('s', T0 + 100 + i), raw).kind);
    const vb = Array.from({ length: 5 }, (_, i) => b.caps.screen({ ...rec('s', T0 + 100 + i), id: `b${i}` }, raw).kind);
    expect(vb).toEqual(va);
    expect(() => setup({ buckets: 6 }).caps.restore(a.caps.toJSON())).toThrow(/bucket count/);
  });
});
