/**
 * Admin routes (bearer token ADMIN_TOKEN, compared in constant time): list and filter recent quarantined
 * records, release them back into the pipeline (logged, with the operator's note kept), block or unblock a source.
 * Without ADMIN_TOKEN every admin route answers 404 ADMIN_DISABLED. Request and answer schemas: schemas-admin.ts.
 */
import type { NextFunction, Request, Response } from 'express';
import type { z } from 'zod';
import { TayguardError } from '../../core/errors';
import { tokenMatches } from '../admin/release';
import type { QuarantineEntry } from '../admin/quarantine-index';
import type { ResponseDef, RouteDef } from './routes';
import { errorBody } from './schemas';
import { blockResult, quarantineList, quarantineQuery, releaseBody, releaseResult, releases, sourceParam, sourceParams, who } from './schemas-admin';

export interface ReleaseRecord {
  readonly keys: readonly string[];
  readonly operator: string;
  readonly note: string;
  readonly at: string;
}

export interface AdminView {
  listQuarantine(filter: { reason?: string; source?: string; stage?: string; limit?: number; maxBytes?: number }): QuarantineEntry[] & { more?: boolean };
  release(keys: readonly string[], operator: string, note: string): Promise<{ released: string[]; unknown: string[]; truncated?: string[] }>;
  releases(): readonly ReleaseRecord[];
  block(source: string, operator: string, note: string): void;
  unblock(source: string, operator: string, note: string): void;
}

/** One list answer carries at most this many bytes of records (issue 14: one call returned 180 MB). */
const LIST_MAX_BYTES = 8 * 1024 * 1024;

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
      summary: 'The most recent quarantined records of this process, newest first',
      request: { query: quarantineQuery },
      responses: { 200: { description: 'quarantined records (the quarantine topic holds all of them)', schema: quarantineList }, 400: error('REQUEST_INVALID: a bad limit') },
      handler: (req, res) => {
        const q = (k: string) => (typeof req.query[k] === 'string' ? (req.query[k] as string) : undefined);
        const limit = q('limit') === undefined ? 100 : Number(q('limit'));
        if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new TayguardError('REQUEST_INVALID', 'limit must be an integer from 1 to 1000');
        const entries = admin.listQuarantine({ reason: q('reason'), source: q('source'), stage: q('stage'), limit, maxBytes: LIST_MAX_BYTES });
        res.json({
          entries: entries.map((e) => ({
            key: e.key,
            source: e.source,
            reasons: e.reasons,
            at: e.at,
            record: e.value.toString('utf8'),
            released: e.released ?? null,
            ...(e.truncated ? { truncated: e.truncated } : {}),
          })),
          ...(entries.more ? { more: true } : {}),
          note: entries.more
            ? `the most recent quarantined records of this process, cut at ${LIST_MAX_BYTES} bytes of records: lower limit or filter; the quarantine topic holds all of them`
            : 'the most recent quarantined records of this process; the quarantine topic holds all of them',
        });
      },
    }),
    route({
      method: 'post',
      path: '/v1/admin/quarantine/release',
      summary: 'Release quarantined records back onto the records topic (HMAC-signed; they skip the poisoning screens, never the schema)',
      request: { body: releaseBody },
      responses: {
        200: { description: 'which keys were released and which are unknown to this process', schema: releaseResult },
        400: error('REQUEST_INVALID: a bad body'),
        503: error('MODEL_NOT_READY: not connected to Kafka yet'),
      },
      handler: async (req, res) => {
        const body = parse(releaseBody, req.body, 'Send {"keys":["topic/partition/offset",…],"operator":"…","note":"why"}');
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
