/**
 * Admin routes (bearer token ADMIN_TOKEN, compared in constant time): page through the quarantine topic (cursor,
 * filters; src/admin/quarantine-page.ts), release records back into the pipeline (logged, with the operator's note kept), block or unblock a source.
 * Without ADMIN_TOKEN every admin route answers 404 ADMIN_DISABLED. Request and answer schemas: schemas-admin.ts.
 */
import type { NextFunction, Request, Response } from 'express';
import type { z } from 'zod';
import { TayguardError } from '../../core/errors';
import { tokenMatches } from '../admin/release';
import { decodeCursor, type Page, type PageRequest } from '../admin/quarantine-page';
import type { Released } from '../admin/service';
import type { ResponseDef, RouteDef } from './routes';
import { errorBody } from './schemas';
import { LIST_MAX_LIMIT, blockResult, quarantineList, quarantineQuery, releaseBody, releaseResult, releases, sourceParam, sourceParams, who } from './schemas-admin';

export interface ReleaseRecord {
  readonly keys: readonly string[];
  readonly operator: string;
  readonly note: string;
  readonly at: string;
}

export interface AdminView {
  listQuarantine(req: PageRequest): Promise<Page & { released: (key: string) => Released | null }>;
  release(keys: readonly string[], operator: string, note: string): Promise<{ released: string[]; unknown: string[]; truncated?: string[] }>;
  releases(): readonly ReleaseRecord[];
  block(source: string, operator: string, note: string): void;
  unblock(source: string, operator: string, note: string): void;
}

/** One list answer carries at most this many bytes of records (issue 14: one call returned 180 MB). */
const LIST_MAX_BYTES = 8 * 1024 * 1024;
/** One list request reads at most about this much of the quarantine topic (plus one record batch per partition). */
const LIST_SCAN_BYTES = 16 * 1024 * 1024;

function parse<T>(schema: z.ZodType<T>, body: unknown, hint: string): T {
  const r = schema.safeParse(body);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new TayguardError('REQUEST_INVALID', `${i?.path.join('.') || 'body'}: ${i?.message}. ${hint}`);
  }
  return r.data;
}

const error = (description: string): ResponseDef => ({ description, schema: errorBody });
const GUARDED = {
  401: error('UNAUTHORIZED: no or a wrong bearer token'),
  404: error('ADMIN_DISABLED: ADMIN_TOKEN is not set'),
};

export function adminRoutes(admin: AdminView, token: string | undefined): RouteDef[] {
  const guard = (req: Request, _res: Response, next: NextFunction) => {
    if (!token) return next(new TayguardError('ADMIN_DISABLED', 'the admin API is off: set ADMIN_TOKEN to turn it on'));
    if (!tokenMatches(token, req.get('authorization'))) return next(new TayguardError('UNAUTHORIZED', 'send Authorization: Bearer <ADMIN_TOKEN>'));
    next();
  };
  const route = (r: Omit<RouteDef, 'tag' | 'access' | 'handlers'> & { handler: RouteDef['handlers'][number] }): RouteDef => {
    const { handler, ...rest } = r;
    return { ...rest, tag: 'admin', access: 'admin', responses: { ...r.responses, ...GUARDED }, handlers: [guard, handler] };
  };
  return [
    route({
      method: 'get',
      path: '/v1/admin/quarantine',
      summary: 'Page through the quarantine topic, oldest first: everything it retains, with a cursor for the next page',
      description: `Read from the quarantine topic by offset, so no record leaves this list while the topic retains it (its retention.ms / retention.bytes bound it). A page holds up to \`limit\` entries (at most ${LIST_MAX_LIMIT}), at most 8 MB of originals, and reads at most about 16 MB of the topic; a filter applies to what is read, so a narrow one can return few entries with a \`next\` cursor.`,
      request: { query: quarantineQuery },
      responses: {
        200: { description: 'one page of quarantined records', schema: quarantineList },
        400: error('REQUEST_INVALID: a bad limit or an unknown parameter; QUARANTINE_CURSOR_INVALID: a cursor this API did not give'),
        503: error('MODEL_NOT_READY: not connected to Kafka yet; BROKER_UNAVAILABLE: reading the quarantine topic failed'),
      },
      handler: async (req, res) => {
        const query = parse(quarantineQuery, req.query, `Send ?cursor=<next of an earlier answer>&limit=1..${LIST_MAX_LIMIT}&reason=&source=&stage=`);
        const limit = query.limit === undefined ? 100 : Number(query.limit);
        if (!Number.isInteger(limit) || limit < 1 || limit > LIST_MAX_LIMIT) throw new TayguardError('REQUEST_INVALID', `limit must be an integer from 1 to ${LIST_MAX_LIMIT}`);
        // A bad cursor is the client's mistake whether or not Kafka is reachable: say so before anything is read.
        if (query.cursor !== undefined) decodeCursor(query.cursor);
        const page = await admin.listQuarantine({ ...query, limit, maxRecordBytes: LIST_MAX_BYTES, maxScanBytes: LIST_SCAN_BYTES });
        res.json({
          entries: page.entries.map((e) => ({
            key: e.key,
            coordinates: e.coordinates,
            source: e.source,
            reasons: e.reasons,
            at: e.at,
            record: e.value.toString('utf8'),
            released: page.released(e.key),
            ...(e.truncated ? { truncated: e.truncated } : {}),
            ...(e.omitted ? { recordOmitted: e.omitted } : {}),
          })),
          next: page.next,
          tail: page.tail,
          ...(page.cut ? { cut: page.cut } : {}),
          note:
            page.cut === 'records'
              ? `cut at ${LIST_MAX_BYTES} bytes of originals: go on with next, or lower limit`
              : page.cut === 'scan'
                ? `read ${page.scannedBytes} bytes of the quarantine topic without filling the page: go on with next`
                : page.next === null
                  ? 'the end of the quarantine topic for now: ask again with tail for records quarantined since'
                  : 'more on the quarantine topic: go on with next',
        });
      },
    }),
    route({
      method: 'post',
      path: '/v1/admin/quarantine/release',
      summary: 'Release quarantined records back onto the records topic (HMAC-signed; they skip the poisoning screens, never the schema)',
      request: { body: releaseBody },
      responses: {
        200: { description: 'which keys were released, which are unknown (not on the quarantine topic, or not in the cache), which cannot be (truncated originals)', schema: releaseResult },
        400: error('REQUEST_INVALID: a bad body'),
        503: error('MODEL_NOT_READY: not connected to Kafka yet'),
      },
      handler: async (req, res) => {
        const body = parse(releaseBody, req.body, 'Send {"keys":["<coordinates from the list>",…],"operator":"…","note":"why"}');
        res.json(await admin.release(body.keys, body.operator, body.note));
      },
    }),
    route({
      method: 'get',
      path: '/v1/admin/releases',
      summary: 'The releases of this process, with who released what and why',
      responses: { 200: { description: 'releases', schema: releases } },
      handler: (_req, res) => {
        res.json({ releases: admin.releases() });
      },
    }),
    route({
      method: 'post',
      path: '/v1/admin/sources/:source/block',
      summary: 'Block a source: its records are quarantined as source_blocked',
      request: { params: sourceParams, body: who },
      responses: { 200: { description: 'the source is blocked', schema: blockResult }, 400: error('REQUEST_INVALID') },
      handler: (req, res) => {
        const source = parse(sourceParam, req.params.source, 'Block /v1/admin/sources/<source id>/block');
        const body = parse(who, req.body, 'Send {"operator":"…","note":"why"}');
        admin.block(source, body.operator, body.note);
        res.json({ source: req.params.source, blocked: true });
      },
    }),
    route({
      method: 'delete',
      path: '/v1/admin/sources/:source/block',
      summary: 'Unblock a source',
      request: { params: sourceParams, body: who },
      responses: { 200: { description: 'the source is no longer blocked', schema: blockResult }, 400: error('REQUEST_INVALID') },
      handler: (req, res) => {
        const source = parse(sourceParam, req.params.source, 'Unblock /v1/admin/sources/<source id>/block');
        const body = parse(who, req.body ?? {}, 'Send {"operator":"…","note":"why"}');
        admin.unblock(source, body.operator, body.note);
        res.json({ source: req.params.source, blocked: false });
      },
    }),
  ];
}
