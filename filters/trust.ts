/**
 * Source trust registry and event time, shared by the poisoning detectors.
 *
 * - `EventClock` gives every record one replayable time: its `ts` when present, else the injected `now()`,
 *   never earlier than any time already seen (a monotone watermark: a record with an old `ts` cannot slip
 *   into a window that has already been evicted, and replaying the same stream gives the same times).
 * - `SourceRegistry` remembers, per source: first seen, records seen, records quarantined, penalties, and
 *   derives a trust score in [0, 1]. Sybil accounts are young and have little history, so "new" sources get
 *   stricter budgets from the detectors. Bounded: least recently seen sources are forgotten first (a forgotten
 *   source comes back as new, i.e. the safe direction); blocked sources live in their own bounded list.
 *
 * Both are plain data (`toJSON()` / `restore()`) so they can live in a checkpoint.
 */
import { TayguardError } from '../core/errors';
import type { RawMessage, TrainingRecord } from '../core/record';
import { ACCEPT, type Detector, type Verdict } from './types';

export type Clock = () => number;

export interface EventClockState {
  readonly watermark: number | null;
}

export class EventClock {
  private watermark = -Infinity;

  /** `now` is used only for records without `ts`; inject a fixed or replayed clock in tests and replays. */
  constructor(private readonly now: Clock) {}

  /** Event time of a record (idempotent: asking twice for the same record gives the same answer). */
  timeOf(record: Pick<TrainingRecord, 'ts'>): number {
    const t = record.ts ?? this.now();
    if (Number.isFinite(t) && t > this.watermark) this.watermark = t;
    return Number.isFinite(this.watermark) ? this.watermark : 0;
  }

  toJSON(): EventClockState {
    return { watermark: Number.isFinite(this.watermark) ? this.watermark : null };
  }

  restore(state: EventClockState): void {
    const w = state?.watermark;
    if (w !== null && typeof w !== 'number') throw corrupt('clock', 'watermark must be a number or null');
    this.watermark = w ?? -Infinity;
  }
}

export interface TrustSettings {
  /** Sources remembered at most (least recently seen forgotten first). */
  readonly maxSources: number;
  /** Blocked sources remembered at most (oldest block forgotten first). */
  readonly maxBlocked: number;
  /** A source first seen less than this long ago is new. */
  readonly newSourceAgeMs: number;
  /** A source with fewer records than this is new, whatever its age. */
  readonly newSourceMinRecords: number;
  /** Age at which the age part of trust reaches 1. */
  readonly matureAgeMs: number;
  /** Clean records at which the history part of trust reaches 1. */
  readonly matureRecords: number;
}


export interface SourceEntry {
  firstSeen: number;
  lastSeen: number;
  /** Records seen (each record id counted once). */
  seen: number;
  quarantined: number;
  penalties: number;
  lastId: string;
}

export interface SourceRegistryState {
  readonly sources: readonly (readonly [string, SourceEntry])[];
  readonly blocked: readonly string[];
}

export class SourceRegistry {
  private readonly sources = new Map<string, SourceEntry>();
  private readonly blocked = new Set<string>();

  constructor(readonly settings: TrustSettings) {}

  /**
   * Count a record for its source (idempotent per record id, so every detector may call it) and return the entry.
   * The entry reflects the record itself: a first record gives `seen = 1`, `firstSeen = t`.
   */
  observe(record: Pick<TrainingRecord, 'id' | 'source'>, t: number): SourceEntry {
    let e = this.sources.get(record.source);
    if (e) {
      this.sources.delete(record.source); // LRU: move to the end
      this.sources.set(record.source, e);
      if (e.lastId === record.id) return e;
      e.seen += 1;
      e.lastSeen = Math.max(e.lastSeen, t);
      e.lastId = record.id;
      return e;
    }
    e = { firstSeen: t, lastSeen: t, seen: 1, quarantined: 0, penalties: 0, lastId: record.id };
    this.sources.set(record.source, e);
    while (this.sources.size > this.settings.maxSources) {
      this.sources.delete(this.sources.keys().next().value as string);
    }
    return e;
  }

  get(source: string): Readonly<SourceEntry> | undefined {
    return this.sources.get(source);
  }

  /** Young or with little history: the detectors give such sources stricter budgets. Unknown sources are new. */
  isNew(source: string, t: number): boolean {
    const e = this.sources.get(source);
    if (!e) return true;
    return t - e.firstSeen < this.settings.newSourceAgeMs || e.seen < this.settings.newSourceMinRecords;
  }

  /**
   * Trust in [0, 1]: min(age / matureAge, cleanRecords / matureRecords) × cleanShare² / (1 + penalties);
   * 0 for blocked or unknown sources.
   */
  trust(source: string, t: number): number {
    if (this.blocked.has(source)) return 0;
    const e = this.sources.get(source);
    if (!e || e.seen === 0) return 0;
    const s = this.settings;
    const clean = Math.max(0, e.seen - e.quarantined);
    const age = Math.min(1, Math.max(0, t - e.firstSeen) / s.matureAgeMs);
    const history = Math.min(1, clean / s.matureRecords);
    const share = clean / e.seen;
    return (Math.min(age, history) * share * share) / (1 + e.penalties);
  }

  /** A detector quarantined one of this source's records. */
  noteQuarantine(source: string): void {
    const e = this.sources.get(source);
    if (e) e.quarantined += 1;
  }

  /** Lower a source's trust (e.g. the update gate found its records harmful). */
  penalise(source: string, weight = 1): void {
    const e = this.sources.get(source);
    if (e) e.penalties += weight;
  }

  block(source: string): void {
    this.blocked.delete(source);
    this.blocked.add(source);
    while (this.blocked.size > this.settings.maxBlocked) this.blocked.delete(this.blocked.values().next().value as string);
  }

  unblock(source: string): void {
    this.blocked.delete(source);
  }

  isBlocked(source: string): boolean {
    return this.blocked.has(source);
  }

  get size(): number {
    return this.sources.size;
  }

  toJSON(): SourceRegistryState {
    return { sources: [...this.sources].map(([k, v]) => [k, { ...v }] as const), blocked: [...this.blocked] };
  }

  restore(state: SourceRegistryState): void {
    if (!state || !Array.isArray(state.sources) || !Array.isArray(state.blocked)) {
      throw corrupt('trust', 'expected { sources: [...], blocked: [...] }');
    }
    this.sources.clear();
    this.blocked.clear();
    for (const [k, v] of state.sources) {
      if (typeof k !== 'string' || typeof v?.firstSeen !== 'number' || typeof v.seen !== 'number') {
        throw corrupt('trust', `bad source entry ${JSON.stringify(k)}`);
      }
      this.sources.set(k, { ...v });
    }
    for (const b of state.blocked) this.blocked.add(String(b));
  }
}

/**
 * The first poisoning stage: counts the record for its source and quarantines blocked sources
 * (code `source_blocked`). Blocking is an operator or update-gate decision, so it is record-scoped here
 * only in the sense that it looks up one source; it is declared cross-record because the registry is shared state.
 */
export class TrustGate implements Detector {
  readonly name = 'trust';
  readonly scope = 'cross-record' as const;

  constructor(private readonly deps: { readonly registry: SourceRegistry; readonly clock: EventClock }) {}

  screen(record: TrainingRecord, _raw?: RawMessage): Verdict {
    const t = this.deps.clock.timeOf(record);
    this.deps.registry.observe(record, t);
    if (!this.deps.registry.isBlocked(record.source)) return ACCEPT;
    return {
      kind: 'quarantine',
      reasons: [{ stage: this.name, code: 'source_blocked', message: `source "${record.source}" is blocked by an operator or the update gate`, score: 1, threshold: 1 }],
    };
  }
}

export function corrupt(what: string, detail: string): TayguardError {
  return new TayguardError('CHECKPOINT_CORRUPT', `detector state "${what}" cannot be restored: ${detail}`);
}

/** Typed arrays as base64 in checkpoints (compact, exact). */
export function encodeArray(a: Float32Array | Uint32Array): string {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
}

export function decodeF32(s: string): Float32Array {
  const b = Buffer.from(s, 'base64');
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

export function decodeU32(s: string): Uint32Array {
  const b = Buffer.from(s, 'base64');
  return new Uint32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}
