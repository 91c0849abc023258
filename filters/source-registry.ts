/**
 * Source trust: what tayguard knows about each source (account), shared by the screens and the update gate.
 *
 * Per source: when it was first seen here (or, when the producer says so, when the deployment created the account:
 * `sourceMeta.createdAt`), records seen, records quarantined, whether the deployment verified it, and two decaying
 * marks against it — strikes (its own records broke a per-source rate cap) and penalties (the update gate found an
 * update holding its records harmful, weighted by its share of that update). From these, a trust score in [0, 1]
 * and the "new source" flag the screens give stricter budgets.
 *
 * Design rules (issue 10, "trust the broker and the deployment, not the record"), each answering an attack:
 * - **The deployment's word over first-seen-here.** An account the producer says is two years old and verified is
 *   not "new" just because tayguard has not seen it yet (`sourceMeta`, validated in filters/schema.ts). The producer
 *   must set it from its own account records, never from user input, exactly like `source` (docs/threat-model.md).
 * - **Marks decay over event time** (half-life `penaltyHalfLifeMs`): a source penalised once for sharing a batch with
 *   poison, or for one burst over its cap, recovers instead of carrying the mark forever.
 * - **Trust never falls because of other accounts' behaviour.** Only evidence about the source's own records lowers
 *   it: the per-source rate caps (its own volume) and the gate's evidence-weighted penalty. Quarantines by content
 *   or cross-record screens (echo, toxicity, campaign, rare-token, outliers, label-consistency) do not lower it —
 *   a record can be quarantined because of what others sent (a campaign it reports, a burst it arrives in, a copy
 *   of abusive spam it labels as spam) — they only do not count as clean history, so trust cannot grow from them.
 * - **Bounded by evidence, never by recency** (filters/evidence.ts): the table keeps at most `maxSources` sources
 *   and `maxStateBytes` of checkpoint state, and evicts the least-evidenced source first, so registering many
 *   one-record accounts cannot flush an established one. A forgotten source comes back as new (trust 0): the safe
 *   direction.
 */
import { fnv1a } from '../middleware/featurize';
import type { SourceMeta, TrainingRecord } from '../core/record';
import { TayguardError } from '../core/errors';
import { EvidenceIndex, NUMBER_BYTES, jsonBytes } from './evidence';

export interface TrustSettings {
  /** Sources remembered at most (the least-evidenced forgotten first, see evidence.ts). */
  readonly maxSources: number;
  /** Blocked sources remembered at most (oldest block forgotten first). */
  readonly maxBlocked: number;
  /** A source whose account (or, without `sourceMeta.createdAt`, first record here) is younger than this is new. */
  readonly newSourceAgeMs: number;
  /** A source with fewer records than this is new, whatever its age — unless the deployment verified it. */
  readonly newSourceMinRecords: number;
  /** Age at which the age part of trust reaches 1. */
  readonly matureAgeMs: number;
  /** Clean records at which the history part of trust reaches 1. */
  readonly matureRecords: number;
  /** Strikes and penalties halve every this much event time. */
  readonly penaltyHalfLifeMs: number;
  /** Clean records a `sourceMeta.verified` flag counts for in the history part of trust (and in eviction). */
  readonly verifiedRecords: number;
  /** Checkpoint bytes the registry may hold (sources and blocked list; an upper-bound estimate, see evidence.ts). */
  readonly maxStateBytes: number;
}

export interface SourceEntry {
  firstSeen: number;
  lastSeen: number;
  /** Records seen (each record id counted once). */
  seen: number;
  /** Records quarantined by any screen: not clean history. */
  quarantined: number;
  /** Own-behaviour quarantines (per-source rate caps), decayed to `decayedAt`. */
  strikes: number;
  /** The update gate's evidence against the source, decayed to `decayedAt`. */
  penalties: number;
  decayedAt: number;
  /** The account's creation time as the deployment stated it (epoch ms, at most the time it was stated). */
  createdAt?: number;
  verified: boolean;
  /** FNV-1a of the last record id counted (idempotence per record, whichever screen observes it first). */
  lastKey: number;
}

/** [source, firstSeen, lastSeen, seen, quarantined, strikes, penalties, decayedAt, lastKey, createdAt | null, verified 0/1] */
type Row = readonly [string, number, number, number, number, number, number, number, number, number | null, 0 | 1];
const ROW_FIELDS = 10;

export interface SourceRegistryState {
  readonly version?: 2;
  /** Version 2: rows in eviction order. Version 1 (older checkpoints): [source, entry object] pairs, still read. */
  readonly sources: readonly Row[] | readonly (readonly [string, Partial<SourceEntry> & { lastId?: string }])[];
  readonly blocked: readonly string[];
}

/** The quarantine codes that are the source's own doing (its own volume), and so count as strikes. */
export const STRIKE_CODES: ReadonlySet<string> = new Set(['source_rate_exceeded', 'new_source_rate_exceeded']);

export class SourceRegistry {
  private readonly sources = new Map<string, SourceEntry>();
  private readonly bytesOf = new Map<string, number>();
  private readonly order = new EvidenceIndex<string>();
  private readonly blocked = new Set<string>();
  private sourceBytes = 0;
  private blockedBytes = 0;
  /** Latest event time seen: the time of penalties and quarantines noted without one. */
  private latest = 0;
  /** Sources forgotten to stay within the bounds (a metric). */
  evicted = 0;

  constructor(readonly settings: TrustSettings) {}

  /**
   * Count a record for its source (idempotent per record id, so every detector may call it) and return the entry.
   * The entry reflects the record itself: a first record gives `seen = 1`, `firstSeen = t`. The record's
   * `sourceMeta`, when present, is the deployment's latest word on the account and replaces what it said before.
   */
  observe(record: Pick<TrainingRecord, 'id' | 'source' | 'sourceMeta'>, t: number): SourceEntry {
    if (t > this.latest) this.latest = t;
    const key = fnv1a(record.id);
    let e = this.sources.get(record.source);
    if (e && e.lastKey === key) return e;
    if (e) {
      e.seen += 1;
      e.lastSeen = Math.max(e.lastSeen, t);
      e.lastKey = key;
    } else {
      e = { firstSeen: t, lastSeen: t, seen: 1, quarantined: 0, strikes: 0, penalties: 0, decayedAt: t, verified: false, lastKey: key };
      this.sources.set(record.source, e);
      const bytes = jsonBytes(record.source) + ROW_FIELDS * NUMBER_BYTES + 2;
      this.bytesOf.set(record.source, bytes);
      this.sourceBytes += bytes;
    }
    const meta = record.sourceMeta;
    if (meta) {
      if (meta.createdAt !== undefined) {
        const at = Date.parse(meta.createdAt);
        if (Number.isFinite(at)) e.createdAt = Math.min(at, t); // an account cannot be younger than its record
      }
      if (meta.verified !== undefined) e.verified = meta.verified;
    }
    this.reindex(record.source, e);
    this.enforce(record.source);
    return e;
  }

  get(source: string): Readonly<SourceEntry> | undefined {
    return this.sources.get(source);
  }

  /** Young (by the deployment's account age when given, else by first record here) or with little history. Unknown sources are new. */
  isNew(source: string, t: number): boolean {
    const e = this.sources.get(source);
    if (!e) return true;
    const since = e.createdAt ?? e.firstSeen;
    return t - since < this.settings.newSourceAgeMs || (!e.verified && e.seen < this.settings.newSourceMinRecords);
  }

  /**
   * Trust in [0, 1]: min(age / matureAge, credit / matureRecords) × (credit / (credit + strikes))² / (1 + penalties),
   * where credit = clean records (+ `verifiedRecords` when verified), age runs from the account's stated creation
   * (or first record here), and strikes and penalties are decayed to `t`. 0 for blocked or unknown sources.
   */
  trust(source: string, t: number): number {
    if (this.blocked.has(source)) return 0;
    const e = this.sources.get(source);
    if (!e) return 0;
    const s = this.settings;
    const credit = Math.max(0, e.seen - e.quarantined) + (e.verified ? s.verifiedRecords : 0);
    if (credit === 0) return 0;
    const age = Math.min(1, Math.max(0, t - (e.createdAt ?? e.firstSeen)) / s.matureAgeMs);
    const history = Math.min(1, credit / s.matureRecords);
    const f = this.decayFactor(e, t);
    const share = credit / (credit + e.strikes * f);
    return (Math.min(age, history) * share * share) / (1 + e.penalties * f);
  }

  /** Strikes and penalties of a source as of event time `t` (decayed). */
  marks(source: string, t = this.latest): { strikes: number; penalties: number } {
    const e = this.sources.get(source);
    if (!e) return { strikes: 0, penalties: 0 };
    const f = this.decayFactor(e, t);
    return { strikes: e.strikes * f, penalties: e.penalties * f };
  }

  /** A screen quarantined one of this source's records; `strike` when the reason was the source's own volume (STRIKE_CODES). */
  noteQuarantine(source: string, strike = false, t = this.latest): void {
    const e = this.sources.get(source);
    if (!e) return;
    e.quarantined += 1;
    if (strike) {
      this.decay(e, t);
      e.strikes += 1;
    }
    this.reindex(source, e);
  }

  /**
   * Lower a source's trust by `weight` (the update gate: the source's share of the records in an update it undid).
   * Decays with `penaltyHalfLifeMs` from event time `t` (default: the latest event time seen).
   */
  penalise(source: string, weight = 1, t = this.latest): void {
    const e = this.sources.get(source);
    if (!e || !(weight > 0)) return;
    this.decay(e, t);
    e.penalties += weight;
    this.reindex(source, e);
  }

  block(source: string): void {
    if (this.blocked.delete(source)) this.blockedBytes -= jsonBytes(source);
    this.blocked.add(source);
    this.blockedBytes += jsonBytes(source);
    while (this.blocked.size > this.settings.maxBlocked) {
      const first = this.blocked.values().next().value as string;
      this.blocked.delete(first);
      this.blockedBytes -= jsonBytes(first);
    }
    this.enforce();
  }

  unblock(source: string): void {
    if (this.blocked.delete(source)) this.blockedBytes -= jsonBytes(source);
  }

  isBlocked(source: string): boolean {
    return this.blocked.has(source);
  }

  get size(): number {
    return this.sources.size;
  }

  /** Upper bound on the JSON bytes of `toJSON()` (what the checkpoint holds for the registry). */
  get stateBytes(): number {
    return 64 + this.sourceBytes + this.blockedBytes;
  }

  private decayFactor(e: SourceEntry, t: number): number {
    return Math.pow(0.5, Math.max(0, t - e.decayedAt) / this.settings.penaltyHalfLifeMs);
  }

  private decay(e: SourceEntry, t: number): void {
    if (t <= e.decayedAt) return;
    const f = this.decayFactor(e, t);
    e.strikes *= f;
    e.penalties *= f;
    e.decayedAt = t;
  }

  /** Evidence behind a source (its eviction priority): clean history, less its marks as of their last update. */
  private evidence(e: SourceEntry): number {
    const credit = Math.max(0, e.seen - e.quarantined) + (e.verified ? this.settings.verifiedRecords : 0);
    return credit / (1 + e.strikes + e.penalties);
  }

  private reindex(source: string, e: SourceEntry): void {
    this.order.set(source, this.evidence(e));
  }

  /** Forget the least-evidenced sources until within `maxSources` and `maxStateBytes`, never `keep` while another is left. */
  private enforce(keep?: string): void {
    const s = this.settings;
    while (this.sources.size > s.maxSources || (this.sources.size > 0 && this.stateBytes > s.maxStateBytes)) {
      const victim = this.order.victim(keep) ?? keep;
      if (victim === undefined) return;
      this.forget(victim);
    }
  }

  private forget(source: string): void {
    this.sources.delete(source);
    this.order.delete(source);
    this.sourceBytes -= this.bytesOf.get(source) ?? 0;
    this.bytesOf.delete(source);
    this.evicted += 1;
  }

  toJSON(): SourceRegistryState {
    const rows: Row[] = [];
    // Eviction order (lowest tier first, oldest first within it): restoring in this order rebuilds the same order.
    for (const source of this.order.keys()) {
      const e = this.sources.get(source) as SourceEntry;
      rows.push([source, e.firstSeen, e.lastSeen, e.seen, e.quarantined, e.strikes, e.penalties, e.decayedAt, e.lastKey, e.createdAt ?? null, e.verified ? 1 : 0]);
    }
    return { version: 2, sources: rows, blocked: [...this.blocked] };
  }

  restore(state: SourceRegistryState): void {
    if (!state || !Array.isArray(state.sources) || !Array.isArray(state.blocked)) {
      throw corruptRegistry('expected { sources: [...], blocked: [...] }');
    }
    this.sources.clear();
    this.bytesOf.clear();
    this.order.clear();
    this.blocked.clear();
    this.sourceBytes = 0;
    this.blockedBytes = 0;
    this.latest = 0;
    const num = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);
    for (const row of state.sources as readonly unknown[]) {
      if (!Array.isArray(row) || typeof row[0] !== 'string') throw corruptRegistry(`bad source entry ${JSON.stringify(row)?.slice(0, 80)}`);
      const source = row[0];
      let e: SourceEntry;
      if (row.length === ROW_FIELDS + 1) {
        const [, firstSeen, lastSeen, seen, quarantined, strikes, penalties, decayedAt, lastKey, createdAt, verified] = row as unknown as Row;
        if (![firstSeen, lastSeen, seen, quarantined, strikes, penalties, decayedAt, lastKey].every(num) || (createdAt !== null && !num(createdAt))) {
          throw corruptRegistry(`bad source entry ${JSON.stringify(source)}`);
        }
        e = { firstSeen, lastSeen, seen, quarantined, strikes, penalties, decayedAt, lastKey, verified: verified === 1, ...(createdAt !== null ? { createdAt } : {}) };
      } else {
        // Version 1: { firstSeen, lastSeen, seen, quarantined, penalties, lastId }. Its quarantines came from every
        // screen, so none is known to be a strike; its penalties decay from the source's last record.
        const v = row[1] as Partial<SourceEntry> & { lastId?: string };
        if (!num(v?.firstSeen) || !num(v.seen)) throw corruptRegistry(`bad source entry ${JSON.stringify(source)}`);
        const lastSeen = num(v.lastSeen) ? v.lastSeen : v.firstSeen;
        e = {
          firstSeen: v.firstSeen,
          lastSeen,
          seen: v.seen,
          quarantined: num(v.quarantined) ? v.quarantined : 0,
          strikes: 0,
          penalties: num(v.penalties) ? v.penalties : 0,
          decayedAt: lastSeen,
          lastKey: typeof v.lastId === 'string' ? fnv1a(v.lastId) : 0,
          verified: false,
        };
      }
      this.sources.set(source, e);
      const bytes = jsonBytes(source) + ROW_FIELDS * NUMBER_BYTES + 2;
      this.bytesOf.set(source, bytes);
      this.sourceBytes += bytes;
      this.latest = Math.max(this.latest, e.lastSeen);
      this.reindex(source, e);
    }
    for (const b of state.blocked) {
      const s = String(b);
      if (!this.blocked.has(s)) this.blockedBytes += jsonBytes(s);
      this.blocked.add(s);
    }
    // Settings may have shrunk since the checkpoint: apply today's bounds.
    this.enforce();
  }
}

function corruptRegistry(detail: string): TayguardError {
  return new TayguardError('CHECKPOINT_CORRUPT', `detector state "trust" cannot be restored: ${detail}`);
}

export type { SourceMeta };
