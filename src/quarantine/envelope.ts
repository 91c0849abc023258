/**
 * The quarantine envelope, bounded in bytes (issue 14): a message of 260 KB of control characters used to become
 * a 1.56 MB JSON envelope (each byte escaped as \u00XX), over real Kafka's default 1 MB message.max.bytes, and
 * 1 MB originals were kept whole in memory by the admin index. Now:
 *   - the original is stored as text only when its JSON form is at most 4/3 of its bytes, else as base64
 *     (exactly 4/3), so the `record` field is never more than 4/3 × the stored bytes;
 *   - originals over QUARANTINE_RECORD_BYTES are stored truncated to that many bytes with `recordTruncated`
 *     giving the original size and its sha256 (the full message stays on the records topic at its offset);
 *   - reasons and source are capped, so the rest of the envelope is a bounded header.
 * So an envelope is at most 4/3 × min(original, QUARANTINE_RECORD_BYTES) + a header of a few KB.
 */
import { createHash } from 'node:crypto';
import type { Reason } from '../../filters/types';

export const MAX_REASONS = 16;
export const MAX_REASON_MESSAGE = 500;
export const MAX_SOURCE = 256;

export interface StoredOriginal {
  readonly record: string | { base64: string };
  /** The bytes kept (the whole original unless truncated). */
  readonly kept: Buffer;
  readonly truncated?: { readonly originalBytes: number; readonly keptBytes: number; readonly sha256: string };
}

export function storeOriginal(bytes: Buffer, maxBytes: number): StoredOriginal {
  // Always a copy: kafkajs hands out slices of the whole fetch response, which a kept slice would pin in memory.
  const kept = Buffer.from(bytes.length > maxBytes ? bytes.subarray(0, maxBytes) : bytes);
  const truncated = kept.length < bytes.length ? { originalBytes: bytes.length, keptBytes: kept.length, sha256: createHash('sha256').update(bytes).digest('hex') } : undefined;
  const utf8 = kept.toString('utf8');
  // Text when it round-trips and escaping does not blow it up; base64 otherwise (a truncation can split a UTF-8 sequence).
  const asText = Buffer.from(utf8, 'utf8').equals(kept) && JSON.stringify(utf8).length <= Math.ceil((kept.length * 4) / 3) + 64;
  return { record: asText ? utf8 : { base64: kept.toString('base64') }, kept, ...(truncated ? { truncated } : {}) };
}

export function boundedReasons(reasons: readonly Reason[]): Reason[] {
  return reasons.slice(0, MAX_REASONS).map((r) => (r.message.length > MAX_REASON_MESSAGE ? { ...r, message: `${r.message.slice(0, MAX_REASON_MESSAGE)}…` } : r));
}

export function boundedSource(source: string | null): string | null {
  return source === null || source.length <= MAX_SOURCE ? source : `${source.slice(0, MAX_SOURCE)}…`;
}

/** The smallest envelope that still accounts for a record: no original, only its size and hash. */
export function minimalEnvelope(value: string, why: string): string {
  const parsed = JSON.parse(value) as Record<string, unknown>;
  const original = typeof parsed.record === 'string' ? Buffer.from(parsed.record, 'utf8') : Buffer.from((parsed.record as { base64: string }).base64, 'base64');
  const { record: _omitted, ...rest } = parsed;
  return JSON.stringify({ ...rest, record: null, recordOmitted: { why, storedBytes: original.length, sha256: createHash('sha256').update(original).digest('hex') } });
}
