/**
 * The admin quarantine list, paged from the quarantine topic (issue 10 item 5). The topic is the source of truth:
 * everything it retains can be listed and released, however many records came after it (an in-memory ring of the
 * last 5,000 let 5,000 echo records flush every earlier entry from the operator's view).
 *
 * Order: oldest first. Each partition is read in offset order, and partitions are merged by the time the record was
 * quarantined (the message timestamp), so a page is close to the order records were quarantined in.
 * Cursor: the next offset to read in every partition, as opaque base64url JSON. A page ends at `limit` entries,
 * at `maxRecordBytes` of originals in the answer, or once `maxScanBytes` were read from the topic (a filter that
 * matches little then returns fewer entries, or none, with a `next` cursor to go on from).
 */
import { TayguardError } from '../../core/errors';
import { parseEnvelope, type EnvelopeOmission } from '../quarantine/envelope';
import type { FetchedMessage, PartitionRange, TopicReader } from '../quarantine/reader';
import type { QuarantineEntry } from './quarantine-index';

export interface ListedEntry extends QuarantineEntry {
  /** Where the quarantine message is: `<quarantine topic>/<partition>/<offset>`; what a release can always name. */
  readonly coordinates: string;
  readonly omitted?: EnvelopeOmission;
}

export interface PageFilter {
  readonly reason?: string;
  readonly source?: string;
  readonly stage?: string;
}

export interface PageRequest extends PageFilter {
  readonly cursor?: string;
  readonly limit: number;
  readonly maxRecordBytes: number;
  readonly maxScanBytes: number;
}

export interface Page {
  readonly entries: ListedEntry[];
  /** The cursor of the following page; null when this page reached the end of every partition. */
  readonly next: string | null;
  /** Where reading stopped, always: ask with it later for records quarantined since (null `next` included). */
  readonly tail: string;
  /** Why the page ended before the end of the topic with fewer than `limit` entries. */
  readonly cut?: 'records' | 'scan';
  readonly scannedBytes: number;
}

/** One fetch asks for about this much of one partition (a fetch answers whole record batches, so it can be more). */
const FETCH_BYTES = 1024 * 1024;
const CURSOR_MAX_CHARS = 8192;
const BAD_CURSOR = 'send the `next` (or `tail`) value of an earlier answer unchanged, or leave cursor out to start at the oldest record the quarantine topic retains';

export function encodeCursor(positions: ReadonlyMap<number, bigint>): string {
  const o: Record<string, string> = {};
  for (const [p, off] of [...positions].sort((a, b) => a[0] - b[0])) o[p] = off.toString();
  return Buffer.from(JSON.stringify({ v: 1, o }), 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string): Map<number, bigint> {
  const bad = (why: string) => new TayguardError('QUARANTINE_CURSOR_INVALID', `cursor ${why}: ${BAD_CURSOR}`);
  if (cursor.length === 0 || cursor.length > CURSOR_MAX_CHARS || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw bad('is not base64url of at most 8192 characters');
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw bad('is not one this API gave');
  }
  const o = (parsed as { v?: unknown; o?: unknown } | null)?.o;
  if ((parsed as { v?: unknown } | null)?.v !== 1 || typeof o !== 'object' || o === null || Array.isArray(o)) throw bad('is not one this API gave');
  const out = new Map<number, bigint>();
  for (const [p, off] of Object.entries(o as Record<string, unknown>)) {
    if (!/^\d{1,6}$/.test(p) || typeof off !== 'string' || !/^\d{1,19}$/.test(off)) throw bad('is not one this API gave');
    out.set(Number(p), BigInt(off));
  }
  return out;
}

const matches = (e: QuarantineEntry, f: PageFilter) =>
  (f.source === undefined || e.source === f.source) &&
  (f.reason === undefined || e.reasons.some((r) => r.code === f.reason)) &&
  (f.stage === undefined || e.reasons.some((r) => r.stage === f.stage));

/** Where every partition starts: the cursor's offsets, clamped to what retention still holds. */
function startPositions(ranges: readonly PartitionRange[], cursor: string | undefined): Map<number, bigint> {
  const given = cursor === undefined ? new Map<number, bigint>() : decodeCursor(cursor);
  const known = new Set(ranges.map((r) => r.partition));
  for (const [p, off] of given) {
    const r = ranges.find((x) => x.partition === p);
    // Offsets only grow: a cursor past the end, or naming a partition the topic lacks, is from another topic.
    if (!known.has(p) || (r && off > r.high)) throw new TayguardError('QUARANTINE_CURSOR_INVALID', `cursor points past the end of the quarantine topic (partition ${p}): ${BAD_CURSOR}`);
  }
  // Below `low`, retention deleted those records: reading goes on from the oldest one kept.
  return new Map(ranges.map((r) => [r.partition, (given.get(r.partition) ?? r.low) < r.low ? r.low : (given.get(r.partition) ?? r.low)]));
}

export async function readPage(reader: TopicReader, topic: string, req: PageRequest): Promise<Page> {
  const ranges = await reader.partitions();
  const pos = startPositions(ranges, req.cursor);
  const high = new Map(ranges.map((r) => [r.partition, r.high]));
  /** Fetched, not yet taken messages of each partition: `messages[at…]`. */
  const queues = new Map<number, { messages: FetchedMessage[]; at: number }>(ranges.map((r) => [r.partition, { messages: [], at: 0 }]));
  const waiting = (p: number) => {
    const q = queues.get(p);
    return q ? q.messages.length - q.at : 0;
  };
  /** Partitions with nothing more for this request (end reached, or a fetch came back empty: a gap). */
  const drained = new Set<number>();
  const entries: ListedEntry[] = [];
  let scannedBytes = 0;
  let recordBytes = 0;
  let cut: Page['cut'];

  const active = () => ranges.map((r) => r.partition).filter((p) => !drained.has(p) && (pos.get(p) ?? 0n) < (high.get(p) ?? 0n));
  for (;;) {
    if (entries.length >= req.limit) break;
    const empty = active().filter((p) => waiting(p) === 0);
    if (empty.length > 0) {
      if (scannedBytes >= req.maxScanBytes) {
        cut = 'scan';
        break;
      }
      const want = Math.max(1, Math.min(FETCH_BYTES, Math.ceil((req.maxScanBytes - scannedBytes) / empty.length)));
      const fetched = await Promise.all(empty.map((p) => reader.fetch(p, pos.get(p) ?? 0n, want)));
      empty.forEach((p, i) => {
        const got = fetched[i].filter((m) => m.offset < (high.get(p) ?? 0n));
        if (got.length === 0) drained.add(p);
        for (const m of got) scannedBytes += (m.value?.length ?? 0) + (m.key?.length ?? 0);
        queues.set(p, { messages: got, at: 0 });
      });
    }
    // The oldest head among partitions that still have records: a k-way merge by quarantine time.
    let head: FetchedMessage | undefined;
    for (const p of active()) {
      const q = queues.get(p);
      const m = q?.messages[q.at];
      if (m && (!head || m.timestamp < head.timestamp || (m.timestamp === head.timestamp && m.partition < head.partition))) head = m;
    }
    if (!head) break;
    const entry = parseEnvelope(head.value);
    if (entry && matches(entry, req)) {
      if (entries.length > 0 && recordBytes + entry.value.length > req.maxRecordBytes) {
        cut = 'records';
        break;
      }
      recordBytes += entry.value.length;
      entries.push({ ...entry, coordinates: `${topic}/${head.partition}/${head.offset}` });
    }
    const taken = queues.get(head.partition);
    if (taken) taken.at += 1;
    pos.set(head.partition, head.offset + 1n);
  }
  const atEnd = ranges.every((r) => (pos.get(r.partition) ?? 0n) >= r.high);
  const tail = encodeCursor(pos);
  return { entries, next: atEnd ? null : tail, tail, ...(cut && !atEnd ? { cut } : {}), scannedBytes };
}

/** `<topic>/<partition>/<offset>` of a quarantine message, or undefined for any other key. */
export function quarantineCoordinates(topic: string, key: string): { partition: number; offset: bigint } | undefined {
  if (!key.startsWith(`${topic}/`)) return undefined;
  const m = /^(\d{1,6})\/(\d{1,19})$/.exec(key.slice(topic.length + 1));
  return m ? { partition: Number(m[1]), offset: BigInt(m[2]) } : undefined;
}

/** Read the quarantine messages at these coordinates (one fetch serves every wanted offset in the batch it returns). */
export async function readAt(reader: TopicReader, topic: string, keys: readonly string[]): Promise<Map<string, ListedEntry>> {
  const found = new Map<string, ListedEntry>();
  const byPartition = new Map<number, bigint[]>();
  for (const k of keys) {
    const c = quarantineCoordinates(topic, k);
    if (c) byPartition.set(c.partition, [...(byPartition.get(c.partition) ?? []), c.offset]);
  }
  if (byPartition.size === 0) return found;
  const ranges = new Map((await reader.partitions()).map((r) => [r.partition, r]));
  for (const [p, offsets] of byPartition) {
    const r = ranges.get(p);
    const wanted = [...new Set(offsets)].filter((o) => r !== undefined && o >= r.low && o < r.high).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const left = new Set(wanted);
    for (const o of wanted) {
      if (!left.has(o)) continue;
      for (const m of await reader.fetch(p, o, FETCH_BYTES)) {
        if (!left.delete(m.offset)) continue;
        const entry = parseEnvelope(m.value);
        const coordinates = `${topic}/${p}/${m.offset}`;
        if (entry) found.set(coordinates, { ...entry, coordinates });
      }
      left.delete(o);
    }
  }
  return found;
}
