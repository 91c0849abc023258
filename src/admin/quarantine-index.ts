/**
 * A cache of this process's most recent quarantined records, by original key (topic/partition/offset of the
 * record), so that a release naming that key needs no read from Kafka. It is never the source of truth: the admin
 * list pages the quarantine topic (src/admin/quarantine-page.ts), and a release by quarantine coordinates reads the
 * topic. Bounded both by count and by bytes (QUARANTINE_INDEX_BYTES): issue 14 measured 168 quarantined 1 MB
 * messages taking RSS from 201 to 402 MB under a count-only bound.
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

  get size(): number {
    return this.entries.size;
  }

  /** Estimated bytes held (what QUARANTINE_INDEX_BYTES bounds). */
  get bytes(): number {
    return this.bytesHeld;
  }
}
