/**
 * The most recent quarantined records, in memory, for the admin API to list, filter and release. The quarantine
 * topic is the durable record of everything; this index holds the last `capacity` entries of this process
 * (older ones, and those from before a restart, are on the topic).
 */
export interface QuarantineEntry {
  /** topic/partition/offset of the original message: the quarantine message's key. */
  readonly key: string;
  readonly source: string | null;
  readonly reasons: readonly { stage: string; code: string; message: string }[];
  readonly at: string;
  /** The original bytes, to release exactly what arrived. */
  readonly value: Buffer;
  readonly messageKey: string | null;
  released?: { by: string; note: string; at: string };
}

export class QuarantineIndex {
  private readonly entries = new Map<string, QuarantineEntry>();

  constructor(private readonly capacity = 5000) {}

  add(entry: QuarantineEntry): void {
    this.entries.delete(entry.key);
    this.entries.set(entry.key, entry);
    while (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value as string);
  }

  get(key: string): QuarantineEntry | undefined {
    return this.entries.get(key);
  }

  list(filter: { reason?: string; source?: string; stage?: string; limit?: number }): QuarantineEntry[] {
    const out: QuarantineEntry[] = [];
    const all = [...this.entries.values()].reverse(); // newest first
    for (const e of all) {
      if (filter.source !== undefined && e.source !== filter.source) continue;
      if (filter.reason !== undefined && !e.reasons.some((r) => r.code === filter.reason)) continue;
      if (filter.stage !== undefined && !e.reasons.some((r) => r.stage === filter.stage)) continue;
      out.push(e);
      if (out.length >= (filter.limit ?? 100)) break;
    }
    return out;
  }

  get size(): number {
    return this.entries.size;
  }
}
