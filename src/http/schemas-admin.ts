/** Schemas of the admin API (src/http/admin.ts): what it validates requests with and what it answers. */
import { z } from 'zod';

const isoTime = z.iso.datetime();

/** The record contract's source rule (filters/schema.ts): 1 to 256 characters. */
export const sourceParam = z.string().min(1).max(256, 'a source id is 1 to 256 characters');
export const sourceParams = z.strictObject({ source: sourceParam.describe('the source id (1 to 256 characters)') });

export const who = z.strictObject({ operator: z.string().min(1).max(200), note: z.string().min(1).max(2000).describe('why: kept in the log') });
export const releaseBody = z.strictObject({
  ...who.shape,
  keys: z
    .array(z.string().regex(/^.+\/\d+\/\d+$/, 'keys look like topic/partition/offset'))
    .min(1)
    .max(1000)
    .describe('`coordinates` from the list (found while the quarantine topic retains them), or original `key`s (found only while this process caches them)'),
});

/** Entries per page of the quarantine list (the answer is also cut at 8 MB of originals). */
export const LIST_MAX_LIMIT = 500;

export const quarantineQuery = z.strictObject({
  cursor: z
    .string()
    .max(8192)
    .optional()
    .describe('where to go on from: the `next` (or `tail`) of an earlier answer, unchanged; leave out to start at the oldest record the quarantine topic retains'),
  limit: z
    .string()
    .regex(/^\d+$/)
    .optional()
    .describe(`entries per page, 1 to ${LIST_MAX_LIMIT} (default 100)`),
  reason: z.string().optional().describe('only records with this reason code'),
  source: z.string().optional().describe('only records of this source'),
  stage: z.string().optional().describe('only records stopped by this stage (schema, echo, toxicity, …)'),
});

const omission = z.strictObject({ why: z.string(), storedBytes: z.number().int(), sha256: z.string() });

export const quarantineList = z
  .strictObject({
    entries: z.array(
      z.strictObject({
        key: z.string().describe('topic/partition/offset of the original message on the records topic'),
        coordinates: z.string().describe('topic/partition/offset of the quarantine message: release by this key works as long as the quarantine topic retains it'),
        source: z.string().nullable(),
        reasons: z.array(z.strictObject({ stage: z.string(), code: z.string(), message: z.string() })),
        at: isoTime,
        record: z.string().describe('the original bytes as UTF-8 (empty when the broker refused the full envelope: see recordOmitted)'),
        released: z.strictObject({ by: z.string(), note: z.string(), at: isoTime }).nullable().describe('released by this process (releases before a restart are in its log, not here)'),
        truncated: z.strictObject({ originalBytes: z.number().int(), keptBytes: z.number().int(), sha256: z.string() }).optional(),
        recordOmitted: omission.optional().describe('the broker refused the full envelope: the original is not on the quarantine topic'),
      }),
    ),
    next: z.string().nullable().describe('the cursor of the following page; null when this page reached the end of the quarantine topic'),
    tail: z.string().describe('where this page stopped reading, always: ask with it later for records quarantined since'),
    cut: z
      .enum(['records', 'scan'])
      .optional()
      .describe('the page ended early: `records` at 8 MB of originals, `scan` after reading 16 MB of the topic (a narrow filter); go on with `next`'),
    note: z.string(),
  })
  .meta({ id: 'QuarantineList' });

export const releaseResult = z.strictObject({ released: z.array(z.string()), unknown: z.array(z.string()), truncated: z.array(z.string()).optional() });

export const releases = z.strictObject({
  releases: z.array(z.strictObject({ keys: z.array(z.string()), operator: z.string(), note: z.string(), at: isoTime })),
});

export const blockResult = z.strictObject({ source: z.string(), blocked: z.boolean() });
