/**
 * Rate caps: how much one source may contribute in a sliding window.
 * - `source_rate_exceeded`: an established source sent more than `maxPerSource` records in the window;
 * - `new_source_rate_exceeded`: a new source (young or with little history, see trust.ts) sent more than
 *   `maxPerNewSource` — sybils are young, so they get the stricter budget;
 * - `source_share_exceeded`: once the window holds at least `shareMinTotal` records, no source may contribute
 *   more than `maxShare` of them.
 * Only records this stage accepts are counted (a flood beyond the cap does not lock the source out forever,
 * it just stays at the cap). The window is `buckets` sub-windows (granularity windowMs / buckets), so memory is
 * O(sources × buckets) whatever the rate. Sources are bounded by count (`maxSources`) and checkpoint bytes
 * (`maxStateBytes`), forgetting the source with the fewest records in its window first (filters/evidence.ts), not
 * the least recent: forgetting a source lets it send its cap again, so the cheapest to forget is the one that sent
 * least, and flushing a flooder's count needs as many sources as the table holds, each sending at least half as much.
 */
import type { RawMessage, TrainingRecord } from '../core/record';
import { corrupt, type EventClock, type SourceRegistry } from './trust';
import { EvidenceIndex, NUMBER_BYTES, jsonBytes } from './evidence';
import { ACCEPT, type Detector, type Reason, type Verdict } from './types';

export interface RateCapSettings {
  readonly windowMs: number;
  readonly buckets: number;
  readonly maxPerSource: number;
  readonly maxPerNewSource: number;
  readonly maxShare: number;
  readonly shareMinTotal: number;
  readonly maxSources: number;
  /** Checkpoint bytes the per-source windows may take (an upper-bound estimate, see evidence.ts). */
  readonly maxStateBytes: number;
}


interface Ring {
  /** Bucket index (floor(t / bucketMs)) of counts[0]'s slot, per slot. */
  idx: number[];
  counts: number[];
}

export interface RateCapState {
  readonly sources: readonly (readonly [string, Ring])[];
  readonly total: Ring;
}

export class RateCaps implements Detector {
  readonly name = 'rate-caps';
  readonly scope = 'cross-record' as const;
  private readonly bucketMs: number;
  private readonly sources = new Map<string, Ring>();
  private readonly order = new EvidenceIndex<string>();
  private readonly keyBytes = new Map<string, number>();
  private bytes = 0;
  private latestBucket = 0;
  private total: Ring;

  constructor(
    readonly settings: RateCapSettings,
    private readonly deps: { readonly clock: EventClock; readonly registry: SourceRegistry },
  ) {
    this.bucketMs = Math.max(1, Math.ceil(settings.windowMs / settings.buckets));
    this.total = this.emptyRing();
  }

  screen(record: TrainingRecord, _raw?: RawMessage): Verdict {
    const s = this.settings;
    const t = this.deps.clock.timeOf(record);
    this.deps.registry.observe(record, t);
    const b = Math.floor(t / this.bucketMs);
    if (b > this.latestBucket) this.latestBucket = b;
    const ring = this.sources.get(record.source) ?? this.emptyRing();
    const mine = this.sum(ring, b) + 1; // including this record
    const total = this.sum(this.total, b) + 1;
    const isNew = this.deps.registry.isNew(record.source, t);
    const minutes = Math.round(s.windowMs / 60_000);
    const reasons: Reason[] = [];
    if (isNew && mine > s.maxPerNewSource) {
      reasons.push({
        stage: this.name,
        code: 'new_source_rate_exceeded',
        message: `new source "${record.source}" sent ${mine} records in ${minutes} min; new sources may send ${s.maxPerNewSource}`,
        score: mine,
        threshold: s.maxPerNewSource,
      });
    } else if (mine > s.maxPerSource) {
      reasons.push({
        stage: this.name,
        code: 'source_rate_exceeded',
        message: `source "${record.source}" sent ${mine} records in ${minutes} min; the cap is ${s.maxPerSource}`,
        score: mine,
        threshold: s.maxPerSource,
      });
    }
    if (total >= s.shareMinTotal && mine / total > s.maxShare) {
      reasons.push({
        stage: this.name,
        code: 'source_share_exceeded',
        message: `source "${record.source}" would be ${(100 * mine / total).toFixed(1)}% of the ${total} records in ${minutes} min; one source may be at most ${(100 * s.maxShare).toFixed(1)}%`,
        score: mine / total,
        threshold: s.maxShare,
      });
    }
    if (reasons.length > 0) return { kind: 'quarantine', reasons };
    this.bump(ring, b);
    this.bump(this.total, b);
    if (!this.sources.has(record.source)) {
      this.sources.set(record.source, ring);
      const bytes = jsonBytes(record.source);
      this.keyBytes.set(record.source, bytes);
      this.bytes += bytes;
    }
    this.order.set(record.source, mine);
    while (this.sources.size > s.maxSources || (this.sources.size > 1 && this.stateBytes > s.maxStateBytes)) {
      this.forget(this.order.victim(record.source) as string);
    }
    return ACCEPT;
  }

  /**
   * Upper bound on one ring's JSON: `buckets` slots, each a bucket index (at most the latest one's digits, or "-1")
   * and a count (a source's is at most `maxPerSource`), with separators and brackets.
   */
  private get ringBytes(): number {
    const digits = (n: number) => String(Math.max(10, Math.floor(n))).length;
    return this.settings.buckets * (digits(this.latestBucket) + digits(this.settings.maxPerSource) + 2) + 32;
  }

  /** Upper bound on the JSON bytes of `toJSON()` (the total ring's counts can be larger: counted at full width). */
  get stateBytes(): number {
    return 64 + this.settings.buckets * 2 * NUMBER_BYTES + this.sources.size * this.ringBytes + this.bytes;
  }

  private forget(source: string): void {
    this.sources.delete(source);
    this.order.delete(source);
    this.bytes -= this.keyBytes.get(source) ?? 0;
    this.keyBytes.delete(source);
  }

  /** Accepted records from `source` in the window ending at `t`. */
  countFor(source: string, t: number): number {
    const ring = this.sources.get(source);
    return ring ? this.sum(ring, Math.floor(t / this.bucketMs)) : 0;
  }

  private emptyRing(): Ring {
    return { idx: new Array<number>(this.settings.buckets).fill(-1), counts: new Array<number>(this.settings.buckets).fill(0) };
  }

  private sum(r: Ring, b: number): number {
    let s = 0;
    for (let i = 0; i < r.idx.length; i++) if (r.idx[i] > b - r.idx.length && r.idx[i] <= b) s += r.counts[i];
    return s;
  }

  private bump(r: Ring, b: number): void {
    const slot = b % r.idx.length;
    if (r.idx[slot] !== b) {
      r.idx[slot] = b;
      r.counts[slot] = 0;
    }
    r.counts[slot] += 1;
  }

  /** Sources in eviction order, so that a restore rebuilds the same order. */
  toJSON(): RateCapState {
    return { sources: [...this.order.keys()].map((k) => { const r = this.sources.get(k) as Ring; return [k, { idx: [...r.idx], counts: [...r.counts] }] as const; }), total: this.total };
  }

  restore(state: RateCapState): void {
    const n = this.settings.buckets;
    const ok = (r: Ring | undefined) => !!r && Array.isArray(r.idx) && Array.isArray(r.counts) && r.idx.length === n && r.counts.length === n;
    if (!state || !Array.isArray(state.sources) || !ok(state.total)) throw corrupt(this.name, `expected rings of ${n} buckets (was the bucket count changed?)`);
    this.sources.clear();
    this.order.clear();
    this.keyBytes.clear();
    this.bytes = 0;
    let latest = -Infinity;
    for (const r of [state.total, ...state.sources.map(([, x]) => x)]) if (ok(r)) for (const i of r.idx) latest = Math.max(latest, i);
    this.latestBucket = Math.max(0, latest);
    for (const [k, r] of state.sources) {
      if (!ok(r)) throw corrupt(this.name, `bad ring for source ${JSON.stringify(k)}`);
      const ring = { idx: [...r.idx], counts: [...r.counts] };
      this.sources.set(k, ring);
      const bytes = jsonBytes(k);
      this.keyBytes.set(k, bytes);
      this.bytes += bytes;
      this.order.set(k, this.sum(ring, latest));
    }
    this.total = { idx: [...state.total.idx], counts: [...state.total.counts] };
    while (this.sources.size > this.settings.maxSources || (this.sources.size > 1 && this.stateBytes > this.settings.maxStateBytes)) {
      this.forget(this.order.victim() as string);
    }
  }
}
