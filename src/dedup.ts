/**
 * Two guards against training a record twice:
 * - a per-partition offset watermark: Kafka redelivers everything after the last committed offset after a crash
 *   or rebalance; anything at or below the watermark was already handled, inside the checkpoint that holds
 *   this watermark, so it is not counted again;
 * - recently seen record ids: the same record produced twice (a producer retry, a replay) lands at a new offset;
 *   it is counted as skipped with reason "duplicate". Bounded (oldest forgotten first) so memory stays flat.
 */
export interface DedupState {
  readonly watermarks: Record<string, string>;
  readonly ids: string[];
}

export type DedupVerdict = 'new' | 'redelivered' | 'duplicate_id';

const key = (topic: string, partition: number) => `${topic}:${partition}`;

export class Deduplicator {
  private readonly watermarks = new Map<string, bigint>();
  private readonly ids = new Set<string>();

  constructor(private readonly maxIds: number) {}

  /** Has this offset already been handled? (Checked before parsing: a redelivery is not a new outcome.) */
  isRedelivery(topic: string, partition: number, offset: string): boolean {
    const mark = this.watermarks.get(key(topic, partition));
    return mark !== undefined && BigInt(offset) <= mark;
  }

  /** Record that an offset has an outcome. Offsets within a partition arrive in order. */
  markOffset(topic: string, partition: number, offset: string): void {
    this.watermarks.set(key(topic, partition), BigInt(offset));
  }

  /** True when the id is new (and remembers it); false when it was seen. */
  rememberId(id: string): boolean {
    if (this.ids.has(id)) return false;
    if (this.maxIds === 0) return true;
    this.ids.add(id);
    if (this.ids.size > this.maxIds) {
      const oldest = this.ids.values().next().value as string;
      this.ids.delete(oldest);
    }
    return true;
  }

  /**
   * Undo rememberId for a record whose handling failed before it had an outcome: the id must be remembered only
   * with an outcome (issue 14: remembered before a throw, two unique records were later counted as duplicates).
   */
  forgetId(id: string): void {
    this.ids.delete(id);
  }

  /** The watermark of one partition (the last handled offset), if any. */
  watermark(topic: string, partition: number): bigint | undefined {
    return this.watermarks.get(key(topic, partition));
  }

  /**
   * Operator-approved re-base after the broker's offsets went backwards (src/kafka/offsets.ts): forget the old
   * watermark so that the partition's messages from `nextOffset` on are new records, not redeliveries.
   */
  rebase(topic: string, partition: number, nextOffset: bigint): void {
    // A watermark of -1 (next offset 0) is kept rather than deleted: the seek on assignment then starts at 0.
    this.watermarks.set(key(topic, partition), nextOffset - 1n);
  }

  /** Kafka's "next offset to read" for every partition of `topic` seen so far: one past the watermark. */
  nextOffsets(topic: string): { topic: string; partition: number; offset: string }[] {
    const out: { topic: string; partition: number; offset: string }[] = [];
    for (const [k, v] of this.watermarks) {
      const at = k.lastIndexOf(':');
      if (k.slice(0, at) === topic) out.push({ topic, partition: Number(k.slice(at + 1)), offset: (v + 1n).toString() });
    }
    return out.sort((a, b) => a.partition - b.partition);
  }

  toJSON(): DedupState {
    const watermarks: Record<string, string> = {};
    for (const [k, v] of this.watermarks) watermarks[k] = v.toString();
    return { watermarks, ids: [...this.ids] };
  }

  static fromJSON(state: DedupState | undefined, maxIds: number): Deduplicator {
    const d = new Deduplicator(maxIds);
    if (state) {
      for (const [k, v] of Object.entries(state.watermarks)) d.watermarks.set(k, BigInt(v));
      for (const id of state.ids.slice(-Math.max(maxIds, 0))) d.ids.add(id);
    }
    return d;
  }
}
