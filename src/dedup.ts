/**
 * Two guards against training a record twice:
 * - a per-partition offset watermark: Kafka redelivers everything after the last committed offset after a crash
 *   or rebalance; anything at or below the watermark was already handled, inside the checkpoint that holds
 *   this watermark, so it is not counted again;
 * - recently seen record identities: the same record produced twice (a producer retry, a replay) lands at a new
 *   offset; it is counted as skipped with reason "duplicate". A record's identity is its (source, id) — scoped
 *   per source, so one account cannot take another's id first and have the honest record skipped. Kept as
 *   53-bit hashes of the pair (SHA-256 prefix: a false match among 200,000 kept ids has probability ~2e-6),
 *   the last DEDUP_IDS_KEPT of them, oldest forgotten first, in the checkpoint as one base64 block.
 *
 * For the privacy statement (docs/privacy.md, "what a record is") a re-send inside this horizon is the same
 * record; a re-send after DEDUP_IDS_KEPT newer identities is trained again, so that content counts twice (the
 * group-of-two figure covers it).
 */
import { createHash } from 'node:crypto';

export interface DedupState {
  readonly watermarks: Record<string, string>;
  /** base64 of a Float64Array of identity hashes, oldest first (version 2). */
  readonly idHashes?: string;
  /** Version 1: raw ids, not scoped per source (read once, hashed with an empty source). */
  readonly ids?: string[];
}

/** 53-bit identity hash of (source, id), exact as a JS number. */
export function recordIdentity(source: string, id: string): number {
  const d = createHash('sha256').update(source).update('\u0000').update(id).digest();
  return d.readUIntBE(0, 6) * 32 + (d[6] >>> 3);
}

export type DedupVerdict = 'new' | 'redelivered' | 'duplicate_id';

const key = (topic: string, partition: number) => `${topic}:${partition}`;

export class Deduplicator {
  private readonly watermarks = new Map<string, bigint>();
  private readonly ids = new Set<number>();

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

  /** True when the record (source, id) is new (and remembers it); false when it was seen. */
  rememberId(source: string, id: string): boolean {
    const h = recordIdentity(source, id);
    if (this.ids.has(h)) return false;
    if (this.maxIds === 0) return true;
    this.ids.add(h);
    if (this.ids.size > this.maxIds) {
      const oldest = this.ids.values().next().value as number;
      this.ids.delete(oldest);
    }
    return true;
  }

  /**
   * Undo rememberId for a record whose handling failed before it had an outcome: the id must be remembered only
   * with an outcome (issue 14: remembered before a throw, two unique records were later counted as duplicates).
   */
  forgetId(source: string, id: string): void {
    this.ids.delete(recordIdentity(source, id));
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
    return { watermarks, idHashes: Buffer.from(Float64Array.from(this.ids).buffer).toString('base64') };
  }

  static fromJSON(state: DedupState | undefined, maxIds: number): Deduplicator {
    const d = new Deduplicator(maxIds);
    if (state) {
      for (const [k, v] of Object.entries(state.watermarks)) d.watermarks.set(k, BigInt(v));
      const hashes = state.idHashes !== undefined ? decodeHashes(state.idHashes) : (state.ids ?? []).map((id) => recordIdentity('', id));
      for (const h of hashes.slice(-Math.max(maxIds, 0))) d.ids.add(h);
    }
    return d;
  }
}

function decodeHashes(b64: string): number[] {
  const bytes = Buffer.from(b64, 'base64');
  const aligned = new Uint8Array(bytes.length - (bytes.length % 8));
  aligned.set(bytes.subarray(0, aligned.length));
  return Array.from(new Float64Array(aligned.buffer));
}
