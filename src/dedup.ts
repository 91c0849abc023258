/**
 * Two guards against training a record twice:
 * - a per-partition offset watermark: Kafka redelivers everything after the last committed offset after a crash
 *   or rebalance; anything at or below the watermark was already handled, inside the checkpoint that holds
 *   this watermark, so it is not counted again;
 * - recently seen record identities: the same record produced twice (a producer retry, a replay) lands at a new
 *   offset; it is counted as skipped with reason "duplicate". A record's identity is its (source, id) — scoped
 *   per source, so one account cannot take another's id first and have the honest record skipped. Kept as
 *   53-bit hashes of the pair (SHA-256 prefix: a false match among 200,000 kept ids has probability ~2e-6),
 *   the ids of the last DEDUP_IDS_KEPT consumed messages (a horizon in messages, whatever their outcome), in the
 *   checkpoint as base64 blocks.
 *
 * For the privacy statement (docs/privacy.md, "what a record is") a re-send inside this horizon is the same
 * record; a re-send after DEDUP_IDS_KEPT more messages is trained again, so that content counts twice (the
 * group-of-two figure covers it).
 */
import { createHash } from 'node:crypto';

export interface DedupState {
  readonly watermarks: Record<string, string>;
  /** base64 of a Float64Array of identity hashes, oldest first (version 2). */
  readonly idHashes?: string;
  /** base64 of a Float64Array: the message count at which each of `idHashes` was remembered. */
  readonly idAt?: string;
  /** Messages counted (the horizon's clock). */
  readonly messages?: number;
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
  /** Identity hash → the message count at which it was remembered (insertion order = age). */
  private readonly ids = new Map<number, number>();
  /**
   * Messages counted so far (every consumed message that is not a redelivery). The horizon is measured in
   * messages, not in remembered ids: counting only the valid records that reach dedup would let one record's
   * presence push another record's id out one message earlier (a privacy review's finding).
   */
  private messages = 0;

  constructor(private readonly maxIds: number) {}

  /** One more consumed message (whatever its outcome): ids older than DEDUP_IDS_KEPT messages are forgotten. */
  countMessage(): void {
    this.messages += 1;
    for (const [h, at] of this.ids) {
      if (at > this.messages - this.maxIds) break;
      this.ids.delete(h);
    }
  }

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
    this.ids.set(h, this.messages);
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
   * Operator-approved re-base after the broker's offsets went backwards (src/ingest/offsets.ts): forget the old
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
    return {
      watermarks,
      idHashes: Buffer.from(Float64Array.from(this.ids.keys()).buffer).toString('base64'),
      idAt: Buffer.from(Float64Array.from(this.ids.values()).buffer).toString('base64'),
      messages: this.messages,
    };
  }

  static fromJSON(state: DedupState | undefined, maxIds: number): Deduplicator {
    const d = new Deduplicator(maxIds);
    if (state) {
      for (const [k, v] of Object.entries(state.watermarks)) d.watermarks.set(k, BigInt(v));
      const hashes = state.idHashes !== undefined ? decodeHashes(state.idHashes) : (state.ids ?? []).map((id) => recordIdentity('', id));
      d.messages = Number.isSafeInteger(state.messages) ? (state.messages as number) : 0;
      // Earlier checkpoints did not say when an id was seen: treat them as seen now (kept one more horizon).
      const at = state.idAt !== undefined ? decodeHashes(state.idAt) : hashes.map(() => d.messages);
      hashes.slice(-Math.max(maxIds, 0)).forEach((h, i, kept) => d.ids.set(h, at[at.length - kept.length + i] ?? d.messages));
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
