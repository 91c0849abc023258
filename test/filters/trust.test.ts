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

describe('TrustGate with a backdated timestamp', () => {
  // Red-team clock hijack: a producer's Kafka CreateTime ten years in the past. Past times are accepted (a replay
  // needs them) but cannot move the monotone event clock back, so an account whose first record is backdated is
  // first seen at the clock's time — as new as any other, not ten years old.
  it('does not age an account whose first record is dated years before the clock', () => {
    const registry = new SourceRegistry({ ...DEFAULT_TRUST, newSourceAgeMs: 24 * H, matureAgeMs: 7 * 24 * H });
    const gate = new TrustGate({ registry, clock: new EventClock(() => 0) });
    const T = Date.UTC(2026, 10, 28);
    for (let i = 0; i < 50; i++) gate.screen({ id: `h${i}`, source: `honest${i % 5}`, ts: T - 30 * 24 * H + i * H, label: 0, text: 'x' });
    gate.screen({ id: 'now', source: 'honest0', ts: T, label: 0, text: 'x' });
    const tenYears = 3650 * 24 * H;
    gate.screen({ id: 'old', source: 'hijacker', ts: T - tenYears, label: 0, text: 'x' });
    expect(registry.get('hijacker')?.firstSeen).toBe(T);
    expect(registry.isNew('hijacker', T + H)).toBe(true);
    expect(registry.trust('hijacker', T + H)).toBeLessThan(0.01);
    // The same account with an honest timestamp is no older either: backdating bought nothing.
    expect(registry.trust('honest1', T)).toBeGreaterThan(registry.trust('hijacker', T));
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

  it('trust grows with age and clean history, falls with its own strikes and penalties, not with other quarantines; 0 when blocked', () => {
    const r = new SourceRegistry({ ...DEFAULT_TRUST, matureAgeMs: 10 * H, matureRecords: 10 });
    for (let i = 0; i < 20; i++) r.observe(rec(`r${i}`), i * H);
    const full = r.trust('s', 20 * H);
    expect(full).toBeCloseTo(1);
    expect(r.trust('s', 5 * H)).toBeCloseTo(0.5);
    // A quarantine by a content or cross-record screen: not clean history, but no mark against the source.
    r.noteQuarantine('s', false, 20 * H);
    expect(r.trust('s', 20 * H)).toBeCloseTo(full);
    r.noteQuarantine('s', true, 20 * H); // its own volume: a strike
    expect(r.trust('s', 20 * H)).toBeLessThan(full);
    r.penalise('s', 1, 20 * H);
    expect(r.trust('s', 20 * H)).toBeLessThan(0.5);
    r.block('s');
    expect(r.trust('s', 20 * H)).toBe(0);
  });

  it('strikes and penalties decay with the configured half-life of event time', () => {
    const halfLife = 10 * H;
    const r = new SourceRegistry({ ...DEFAULT_TRUST, matureAgeMs: H, matureRecords: 10, penaltyHalfLifeMs: halfLife });
    for (let i = 0; i < 20; i++) r.observe(rec(`r${i}`), i * H);
    const t = 20 * H;
    r.penalise('s', 3, t);
    expect(r.trust('s', t)).toBeCloseTo(1 / 4);
    expect(r.marks('s', t + halfLife).penalties).toBeCloseTo(1.5);
    expect(r.trust('s', t + halfLife)).toBeCloseTo(1 / 2.5);
    expect(r.trust('s', t + 20 * halfLife)).toBeCloseTo(1, 4);
    // A new penalty adds to what is left of the old one.
    r.penalise('s', 1, t + halfLife);
    expect(r.marks('s', t + halfLife).penalties).toBeCloseTo(2.5);
  });

  it("uses the deployment's sourceMeta instead of first seen here: a 2-year-old verified account is not new", () => {
    const r = new SourceRegistry(DEFAULT_TRUST);
    const t = Date.parse('2026-06-01T00:00:00Z');
    r.observe({ id: '1', source: 'vouched', sourceMeta: { createdAt: '2024-06-01T00:00:00Z', verified: true } }, t);
    r.observe({ id: '1', source: 'stranger' }, t);
    r.observe({ id: '1', source: 'old-unverified', sourceMeta: { createdAt: '2024-06-01T00:00:00Z' } }, t);
    expect(r.isNew('vouched', t)).toBe(false);
    expect(r.isNew('stranger', t)).toBe(true);
    expect(r.isNew('old-unverified', t)).toBe(true); // old, but one record and unverified: still little history
    expect(r.trust('vouched', t)).toBeCloseTo((1 + DEFAULT_TRUST.verifiedRecords) / DEFAULT_TRUST.matureRecords); // one record + the verified credit
    expect(r.trust('stranger', t)).toBe(0); // age 0
    // Later statements replace earlier ones (the deployment can revoke verification); a creation time after the
    // record is clamped to it (an account cannot be younger than what it sent).
    r.observe({ id: '2', source: 'vouched', sourceMeta: { verified: false } }, t);
    expect(r.isNew('vouched', t)).toBe(true);
    r.observe({ id: '2', source: 'stranger', sourceMeta: { createdAt: '2030-01-01T00:00:00Z' } }, t);
    expect(r.get('stranger')?.createdAt).toBe(t);
  });

  it('100,000 one-record accounts do not flush an established account (least evidence evicted, never by recency)', () => {
    const r = new SourceRegistry(DEFAULT_TRUST); // maxSources 100,000
    for (let i = 0; i < 60; i++) r.observe(rec(`h${i}`, 'honest'), i * H);
    const t = 30 * 24 * H;
    const before = r.trust('honest', t);
    expect(before).toBeGreaterThan(0.9);
    for (let i = 0; i < 100_000; i++) r.observe(rec('x', `sybil${i}`), t - 1000 + (i % 1000));
    expect(r.size).toBe(DEFAULT_TRUST.maxSources);
    expect(r.trust('honest', t)).toBe(before);
    expect(r.isNew('honest', t)).toBe(false);
    // What is forgotten is the least evidence: the one-record accounts, oldest first.
    expect(r.evicted).toBe(1);
    expect(r.get('sybil0')).toBeUndefined();
    expect(r.get('sybil99999')).toBeDefined();
  });

  it('evicts a flooding source before a clean one, and stays within its byte budget', () => {
    const r = new SourceRegistry({ ...DEFAULT_TRUST, maxSources: 3 });
    r.observe(rec('1', 'clean'), 0);
    r.observe(rec('1', 'flooder'), 0);
    r.observe(rec('2', 'flooder'), 1);
    r.noteQuarantine('flooder', true, 1);
    r.noteQuarantine('flooder', true, 1);
    r.observe(rec('1', 'third'), 2);
    r.observe(rec('1', 'fourth'), 3); // over maxSources: the flooder (no clean record) goes, not the oldest
    expect(r.get('flooder')).toBeUndefined();
    expect(r.get('clean')).toBeDefined();

    const small = new SourceRegistry({ ...DEFAULT_TRUST, maxStateBytes: 20_000 });
    for (let i = 0; i < 5; i++) small.observe(rec(`e${i}`, 'established'), i);
    for (let i = 0; i < 2_000; i++) small.observe(rec('x', `s${i}-${'y'.repeat(100)}`), 10 + i);
    expect(small.stateBytes).toBeLessThanOrEqual(20_000);
    expect(Buffer.byteLength(JSON.stringify(small.toJSON()))).toBeLessThanOrEqual(small.stateBytes);
    expect(small.get('established')?.seen).toBe(5);
  });

  it('round-trips (same eviction order afterwards) and still reads the older checkpoint format', () => {
    const r = new SourceRegistry({ ...DEFAULT_TRUST, maxSources: 3, maxBlocked: 2 });
    for (const s of ['a', 'b', 'c']) r.observe(rec(s, s), 0);
    r.observe(rec('a2', 'a'), 1); // a has more evidence now
    r.observe({ id: 'v', source: 'c', sourceMeta: { createdAt: '1970-01-01T00:00:00Z', verified: true } }, 1);
    r.penalise('b', 0.5, 1);
    r.block('x');
    r.block('y');
    r.block('z');
    expect(r.isBlocked('x')).toBe(false);
    const copy = new SourceRegistry(r.settings);
    copy.restore(JSON.parse(JSON.stringify(r)));
    expect(copy.toJSON()).toEqual(r.toJSON());
    r.observe(rec('d', 'd'), 2);
    copy.observe(rec('d', 'd'), 2);
    expect(copy.toJSON()).toEqual(r.toJSON());
    expect(r.get('b')).toBeUndefined(); // least evidence (one record, penalised)
    expect(() => copy.restore({} as never)).toThrow(/cannot be restored/);

    const v1 = { sources: [['old', { firstSeen: 5, lastSeen: 9, seen: 7, quarantined: 2, penalties: 1, lastId: 'r7' }]], blocked: ['b'] };
    const fromV1 = new SourceRegistry(DEFAULT_TRUST);
    fromV1.restore(v1 as never);
    expect(fromV1.get('old')).toMatchObject({ firstSeen: 5, seen: 7, quarantined: 2, strikes: 0, penalties: 1, decayedAt: 9 });
    fromV1.observe(rec('r7', 'old'), 10); // the last id counted before the restart is not counted again
    expect(fromV1.get('old')?.seen).toBe(7);
    expect(fromV1.isBlocked('b')).toBe(true);
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
