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
import type { RawMessage } from '../../core/record';
import type { Reason } from '../../filters/types';
import type { QuarantineEntry } from '../admin/quarantine-index';

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

/**
 * The quarantine message for one record and the entry the admin cache keeps. The message's key is the original's
 * coordinates (topic/partition/offset); the envelope carries the original message key too, so that a release read
 * back from the topic (src/admin/quarantine-page.ts) goes out with the key it arrived with.
 */
export function quarantineEnvelope(
  raw: RawMessage,
  reasonsIn: readonly Reason[],
  source: string | null,
  at: string,
  maxStoredRecordBytes: number,
): { message: { key: string; value: string }; entry: QuarantineEntry } {
  const stored = storeOriginal(raw.value ?? Buffer.alloc(0), maxStoredRecordBytes);
  const reasons = boundedReasons(reasonsIn);
  const messageKey = raw.key === null ? null : boundedSource(raw.key.toString('utf8'));
  const value = {
    record: stored.record,
    reasons,
    topic: raw.topic,
    partition: raw.partition,
    offset: raw.offset,
    source: boundedSource(source),
    at,
    messageKey,
    ...(stored.truncated ? { recordTruncated: stored.truncated } : {}),
  };
  const key = `${raw.topic}/${raw.partition}/${raw.offset}`;
  const entry: QuarantineEntry = { key, source: value.source, reasons, at, value: stored.kept, messageKey, ...(stored.truncated ? { truncated: stored.truncated } : {}) };
  return { message: { key, value: JSON.stringify(value) }, entry };
}

export interface EnvelopeOmission {
  readonly why: string;
  readonly storedBytes: number;
  readonly sha256: string;
}

/**
 * An entry back from a quarantine message's value; undefined when it is not an envelope tayguard wrote (the topic
 * is the operator's, anything may be on it). `omitted`: a minimal envelope, whose original is not on the topic.
 */
export function parseEnvelope(value: Buffer | null): (QuarantineEntry & { omitted?: EnvelopeOmission }) | undefined {
  if (value === null) return undefined;
  let e: Record<string, unknown>;
  try {
    e = JSON.parse(value.toString('utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (typeof e !== 'object' || e === null || typeof e.topic !== 'string' || typeof e.partition !== 'number' || typeof e.offset !== 'string' || !Array.isArray(e.reasons)) return undefined;
  const record = e.record;
  const bytes =
    typeof record === 'string'
      ? Buffer.from(record, 'utf8')
      : record !== null && typeof record === 'object' && typeof (record as { base64?: unknown }).base64 === 'string'
        ? Buffer.from((record as { base64: string }).base64, 'base64')
        : Buffer.alloc(0);
  const str = (v: unknown) => (typeof v === 'string' ? v : null);
  const reasons = (e.reasons as unknown[])
    .filter((r): r is Record<string, unknown> => typeof r === 'object' && r !== null)
    .map((r) => ({ stage: String(r.stage ?? ''), code: String(r.code ?? ''), message: String(r.message ?? '') }));
  return {
    key: `${e.topic}/${e.partition}/${e.offset}`,
    source: str(e.source),
    reasons,
    at: str(e.at) ?? new Date(0).toISOString(),
    value: bytes,
    messageKey: str(e.messageKey),
    ...(e.recordTruncated ? { truncated: e.recordTruncated as QuarantineEntry['truncated'] & object } : {}),
    ...(e.recordOmitted ? { omitted: e.recordOmitted as EnvelopeOmission } : {}),
  };
}
