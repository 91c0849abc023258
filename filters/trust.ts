/**
 * Source trust registry and event time, shared by the poisoning detectors.
 *
 * - `EventClock` gives every record one replayable time: its `ts` when present, else the injected `now()`,
 *   never earlier than any time already seen (a monotone watermark: a record with an old `ts` cannot slip
 *   into a window that has already been evicted, and replaying the same stream gives the same times).
 * - `SourceRegistry` (source-registry.ts) remembers what is known about each source and derives its trust and
 *   whether it is "new" (sybils are young and have little history, so new sources get stricter budgets).
 *
 * Both are plain data (`toJSON()` / `restore()`) so they can live in a checkpoint.
 */
import { TayguardError } from '../core/errors';
import type { RawMessage, TrainingRecord } from '../core/record';
import type { SourceRegistry } from './source-registry';
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

export { SourceRegistry, STRIKE_CODES, type SourceEntry, type SourceRegistryState, type TrustSettings } from './source-registry';

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
