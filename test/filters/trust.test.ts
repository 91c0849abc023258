import { EventClock, SourceRegistry, TrustGate } from '../../filters/trust';
import { P2Quantile } from '../../filters/quantile';
import seedrandom from 'seedrandom';
import { DEFAULT_TRUST } from '../../filters/config';

const H = 3600_000;

describe('EventClock', () => {
  it('uses ts, falls back to the injected clock, and never goes backwards', () => {
    let now = 500;
    const c = new EventClock(() => now);
    expect(c.timeOf({})).toBe(500);
    expect(c.timeOf({ ts: 1000 })).toBe(1000);
    expect(c.timeOf({ ts: 700 })).toBe(1000); // an old ts cannot land in an evicted window
    now = 2000;
    expect(c.timeOf({})).toBe(2000);
    const d = new EventClock(() => 0);
    d.restore(JSON.parse(JSON.stringify(c.toJSON())));
    expect(d.timeOf({ ts: 1 })).toBe(2000);
  });
});

describe('SourceRegistry', () => {
  const rec = (id: string, source = 's') => ({ id, source });

  it('tracks first seen, counts each record id once, and ages sources out of "new"', () => {
    const r = new SourceRegistry({ ...DEFAULT_TRUST, newSourceAgeMs: H, newSourceMinRecords: 3 });
    r.observe(rec('a'), 0);
    r.observe(rec('a'), 0); // a second detector observing the same record
    expect(r.get('s')).toMatchObject({ firstSeen: 0, seen: 1 });
    r.observe(rec('b'), 10);
    r.observe(rec('c'), 20);
    expect(r.isNew('s', 30)).toBe(true); // young
    expect(r.isNew('s', 2 * H)).toBe(false);
    expect(r.isNew('unknown', 2 * H)).toBe(true);
  });

  it('trust grows with age and clean history, falls with quarantines and penalties, is 0 when blocked', () => {
    const r = new SourceRegistry({ ...DEFAULT_TRUST, matureAgeMs: 10 * H, matureRecords: 10 });
    for (let i = 0; i < 20; i++) r.observe(rec(`r${i}`), i * H);
    const full = r.trust('s', 20 * H);
    expect(full).toBeCloseTo(1);
    expect(r.trust('s', 5 * H)).toBeCloseTo(0.5);
    r.noteQuarantine('s');
    expect(r.trust('s', 20 * H)).toBeLessThan(full);
    r.penalise('s');
    expect(r.trust('s', 20 * H)).toBeLessThan(0.5);
    r.block('s');
    expect(r.trust('s', 20 * H)).toBe(0);
  });

  it('is bounded (least recently seen forgotten first) and round-trips', () => {
    const r = new SourceRegistry({ ...DEFAULT_TRUST, maxSources: 3, maxBlocked: 2 });
    for (const s of ['a', 'b', 'c']) r.observe(rec(s, s), 0);
    r.observe(rec('a2', 'a'), 1); // a is now most recent
    r.observe(rec('d', 'd'), 2);
    expect(r.get('b')).toBeUndefined();
    expect(r.size).toBe(3);
    r.block('x');
    r.block('y');
    r.block('z');
    expect(r.isBlocked('x')).toBe(false);
    const copy = new SourceRegistry(r.settings);
    copy.restore(JSON.parse(JSON.stringify(r)));
    expect(copy.toJSON()).toEqual(r.toJSON());
    expect(() => copy.restore({} as never)).toThrow(/cannot be restored/);
  });

  it('TrustGate quarantines blocked sources with a reason', () => {
    const registry = new SourceRegistry(DEFAULT_TRUST);
    const gate = new TrustGate({ registry, clock: new EventClock(() => 0) });
    const raw = { topic: 't', partition: 0, offset: '0', key: null, value: null };
    expect(gate.screen({ id: '1', source: 'evil', label: 0, text: 'x' }, raw).kind).toBe('accept');
    registry.block('evil');
    const v = gate.screen({ id: '2', source: 'evil', label: 0, text: 'x' }, raw);
    expect(v).toMatchObject({ kind: 'quarantine', reasons: [{ stage: 'trust', code: 'source_blocked', score: 1, threshold: 1 }] });
  });
});

describe('P2Quantile', () => {
  it('tracks the 0.99 quantile of a stream within a few percent and round-trips', () => {
    const rng = seedrandom('p2');
    const q = new P2Quantile(0.99);
    const xs: number[] = [];
    for (let i = 0; i < 20000; i++) {
      const x = -Math.log(1 - rng()); // exponential(1): q99 = ln 100 ≈ 4.605
      xs.push(x);
      q.add(x);
    }
    expect(q.value()).toBeGreaterThan(4.3);
    expect(q.value()).toBeLessThan(4.9);
    const r = P2Quantile.restore(JSON.parse(JSON.stringify(q)));
    r.add(1);
    q.add(1);
    expect(r.value()).toBe(q.value());
  });

  it('is exact-ish for the first values and rejects a bad p', () => {
    const q = new P2Quantile(0.5);
    expect(q.value()).toBeNaN();
    [3, 1, 2].forEach((x) => q.add(x));
    expect(q.value()).toBe(2);
    expect(() => new P2Quantile(1)).toThrow(/quantile/);
  });
});
