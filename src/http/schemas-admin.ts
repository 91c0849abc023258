/** Schemas of the admin API (src/http/admin.ts): what it validates requests with and what it answers. */
import { z } from 'zod';

const isoTime = z.iso.datetime();

/** The record contract's source rule (filters/schema.ts): 1 to 256 characters. */
export const sourceParam = z.string().min(1).max(256, 'a source id is 1 to 256 characters');
export const sourceParams = z.strictObject({ source: sourceParam.describe('the source id (1 to 256 characters)') });

export const who = z.strictObject({ operator: z.string().min(1).max(200), note: z.string().min(1).max(2000).describe('why: kept in the log') });
export const releaseBody = z.strictObject({
  ...who.shape,
  keys: z.array(z.string().regex(/^.+\/\d+\/\d+$/, 'keys look like topic/partition/offset')).min(1).max(1000),
});

export const quarantineQuery = z.strictObject({
  reason: z.string().optional().describe('only records with this reason code'),
  source: z.string().optional(),
  stage: z.string().optional().describe('only records stopped by this stage (schema, echo, toxicity, …)'),
  limit: z.string().regex(/^\d+$/).optional().describe('1 to 1000 (default 100)'),
});

export const quarantineList = z
  .strictObject({
    entries: z.array(
      z.strictObject({
        key: z.string().describe('topic/partition/offset of the original message'),
        source: z.string().nullable(),
        reasons: z.array(z.strictObject({ stage: z.string(), code: z.string(), message: z.string() })),
        at: isoTime,
        record: z.string().describe('the original bytes as UTF-8'),
        released: z.strictObject({ by: z.string(), note: z.string(), at: isoTime }).nullable(),
        truncated: z.strictObject({ originalBytes: z.number().int(), keptBytes: z.number().int(), sha256: z.string() }).optional(),
      }),
    ),
    more: z.literal(true).optional(),
    note: z.string(),
  })
  .meta({ id: 'QuarantineList' });

export const releaseResult = z.strictObject({ released: z.array(z.string()), unknown: z.array(z.string()), truncated: z.array(z.string()).optional() });

export const releases = z.strictObject({
  releases: z.array(z.strictObject({ keys: z.array(z.string()), operator: z.string(), note: z.string(), at: isoTime })),
});

export const blockResult = z.strictObject({ source: z.string(), blocked: z.boolean() });
