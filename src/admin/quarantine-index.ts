/**
 * The most recent quarantined records, in memory, for the admin API to list, filter and release. The quarantine
 * topic is the durable record of everything; this index holds the last entries of this process (older ones, and
 * those from before a restart, are on the topic), bounded both by count and by bytes (QUARANTINE_INDEX_BYTES):
 * issue 14 measured 168 quarantined 1 MB messages taking RSS from 201 to 402 MB under a count-only bound.
 */
export interface QuarantineEntry {
  /** topic/partition/offset of the original message: the quarantine message's key. */
  readonly key: string;
  readonly source: string | null;
  readonly reasons: readonly { stage: string; code: string; message: string }[];
  readonly at: string;
  /** The original bytes, to release exactly what arrived (truncated originals cannot be released). */
  readonly value: Buffer;
  readonly messageKey: string | null;
  /** Set when `value` holds only the first bytes of the original (QUARANTINE_RECORD_BYTES). */
  readonly truncated?: { readonly originalBytes: number; readonly keptBytes: number; readonly sha256: string };
  released?: { by: string; note: string; at: string };
}

/** Bytes an entry costs besides its value: key, source, reasons and object overhead (an estimate, on purpose high). */
const entryBytes = (e: QuarantineEntry) =>
  e.value.length + 256 + 2 * (e.key.length + (e.source?.length ?? 0) + (e.messageKey?.length ?? 0)) + e.reasons.reduce((n, r) => n + 64 + 2 * (r.message.length + r.code.length + r.stage.length), 0);

export class QuarantineIndex {
  private readonly entries = new Map<string, QuarantineEntry>();
  private bytesHeld = 0;
  private readonly capacity: number;
  private readonly maxBytes: number;

  constructor(options: number | { capacity?: number; maxBytes?: number } = {}) {
    const o = typeof options === 'number' ? { capacity: options } : options;
    this.capacity = o.capacity ?? 5000;
    this.maxBytes = o.maxBytes ?? 32 * 1024 * 1024;
  }

  add(entry: QuarantineEntry): void {
    this.remove(entry.key);
    const cost = entryBytes(entry);
    // An entry that alone exceeds the budget is not kept (the quarantine topic has it).
    if (cost > this.maxBytes) return;
    this.entries.set(entry.key, entry);
    this.bytesHeld += cost;
    while (this.entries.size > this.capacity || this.bytesHeld > this.maxBytes) this.remove(this.entries.keys().next().value as string);
  }

  private remove(key: string): void {
    const old = this.entries.get(key);
    if (!old) return;
    this.entries.delete(key);
    this.bytesHeld -= entryBytes(old);
  }

  get(key: string): QuarantineEntry | undefined {
    return this.entries.get(key);
  }

  /** Newest first, up to `limit` entries and, when given, `maxBytes` of record bytes (the rest: `more`). */
  list(filter: { reason?: string; source?: string; stage?: string; limit?: number; maxBytes?: number }): QuarantineEntry[] & { more?: boolean } {
    const out: QuarantineEntry[] & { more?: boolean } = [];
    const all = [...this.entries.values()].reverse(); // newest first
    let bytes = 0;
    for (const e of all) {
      if (filter.source !== undefined && e.source !== filter.source) continue;
      if (filter.reason !== undefined && !e.reasons.some((r) => r.code === filter.reason)) continue;
      if (filter.stage !== undefined && !e.reasons.some((r) => r.stage === filter.stage)) continue;
      if (filter.maxBytes !== undefined && out.length > 0 && bytes + e.value.length > filter.maxBytes) {
        out.more = true;
        break;
      }
      bytes += e.value.length;
      out.push(e);
      if (out.length >= (filter.limit ?? 100)) break;
    }
    return out;
  }

  get size(): number {
    return this.entries.size;
  }

  /** Estimated bytes held (what QUARANTINE_INDEX_BYTES bounds). */
  get bytes(): number {
    return this.bytesHeld;
  }
}
