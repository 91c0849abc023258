/**
 * Rate caps: how much one source may contribute in a sliding window.
 * - `source_rate_exceeded`: an established source sent more than `maxPerSource` records in the window;
 * - `new_source_rate_exceeded`: a new source (young or with little history, see trust.ts) sent more than
 *   `maxPerNewSource` — sybils are young, so they get the stricter budget;
 * - `source_share_exceeded`: once the window holds at least `shareMinTotal` records, no source may contribute
 *   more than `maxShare` of them.
 * Only records this stage accepts are counted (a flood beyond the cap does not lock the source out forever,
 * it just stays at the cap). The window is `buckets` sub-windows (granularity windowMs / buckets), so memory is
 * O(sources × buckets) whatever the rate; sources are bounded by LRU (`maxSources`).
 */
import type { RawMessage, TrainingRecord } from '../core/record';
import { corrupt, type EventClock, type SourceRegistry } from './trust';
import { ACCEPT, type Detector, type Reason, type Verdict } from './types';

export interface RateCapSettings {
  readonly windowMs: number;
  readonly buckets: number;
  readonly maxPerSource: number;
  readonly maxPerNewSource: number;
  readonly maxShare: number;
  readonly shareMinTotal: number;
  readonly maxSources: number;
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
    this.sources.delete(record.source);
    this.sources.set(record.source, ring);
    while (this.sources.size > s.maxSources) this.sources.delete(this.sources.keys().next().value as string);
    return ACCEPT;
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

  toJSON(): RateCapState {
    return { sources: [...this.sources].map(([k, r]) => [k, { idx: [...r.idx], counts: [...r.counts] }] as const), total: this.total };
  }

  restore(state: RateCapState): void {
    const n = this.settings.buckets;
    const ok = (r: Ring | undefined) => !!r && Array.isArray(r.idx) && Array.isArray(r.counts) && r.idx.length === n && r.counts.length === n;
    if (!state || !Array.isArray(state.sources) || !ok(state.total)) throw corrupt(this.name, `expected rings of ${n} buckets (was the bucket count changed?)`);
    this.sources.clear();
    for (const [k, r] of state.sources) {
      if (!ok(r)) throw corrupt(this.name, `bad ring for source ${JSON.stringify(k)}`);
      this.sources.set(k, { idx: [...r.idx], counts: [...r.counts] });
    }
    this.total = { idx: [...state.total.idx], counts: [...state.total.counts] };
  }
}
