/**
 * Admin routes (bearer token ADMIN_TOKEN, compared in constant time): list and filter recent quarantined
 * records, release them back into the pipeline (logged, with the operator's note kept), block or unblock a source.
 * Without ADMIN_TOKEN every admin route answers 404 ADMIN_DISABLED.
 */
import { Router, type NextFunction, type Request, type Response } from 'express';
import { z } from 'zod';
import { TayguardError } from '../errors';
import { tokenMatches } from '../admin/release';
import type { QuarantineEntry } from '../admin/quarantine-index';

export interface ReleaseRecord {
  readonly keys: readonly string[];
  readonly operator: string;
  readonly note: string;
  readonly at: string;
}

export interface AdminView {
  listQuarantine(filter: { reason?: string; source?: string; stage?: string; limit?: number; maxBytes?: number }): QuarantineEntry[] & { more?: boolean };
  release(keys: readonly string[], operator: string, note: string): Promise<{ released: string[]; unknown: string[] }>;
  releases(): readonly ReleaseRecord[];
  block(source: string, operator: string, note: string): void;
  unblock(source: string, operator: string, note: string): void;
}

/** One list answer carries at most this many bytes of records (issue 14: one call returned 180 MB). */
const LIST_MAX_BYTES = 8 * 1024 * 1024;
/** The record contract's source rule (filters/schema.ts): 1 to 256 characters. */
const sourceParam = z.string().min(1).max(256, 'a source id is 1 to 256 characters');

const who = z.object({ operator: z.string().min(1).max(200), note: z.string().min(1).max(2000) });
const releaseBody = who.extend({ keys: z.array(z.string().regex(/^.+\/\d+\/\d+$/, 'keys look like topic/partition/offset')).min(1).max(1000) }).strict();

function parse<T>(schema: z.ZodType<T>, body: unknown, hint: string): T {
  const r = schema.safeParse(body);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new TayguardError('REQUEST_INVALID', `${i?.path.join('.') || 'body'}: ${i?.message}. ${hint}`);
  }
  return r.data;
}

export function adminRouter(admin: AdminView, token: string | undefined): Router {
  const router = Router();
  router.use((req: Request, _res: Response, next: NextFunction) => {
    if (!token) return next(new TayguardError('ADMIN_DISABLED', 'the admin API is off: set ADMIN_TOKEN to turn it on'));
    if (!tokenMatches(token, req.get('authorization'))) return next(new TayguardError('UNAUTHORIZED', 'send Authorization: Bearer <ADMIN_TOKEN>'));
    next();
  });

  router.get('/quarantine', (req, res) => {
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
  });

  router.post('/quarantine/release', async (req, res) => {
    const body = parse(releaseBody, req.body, 'Send {"keys":["topic/partition/offset",…],"operator":"…","note":"why"}');
    res.json(await admin.release(body.keys, body.operator, body.note));
  });

  router.get('/releases', (_req, res) => {
    res.json({ releases: admin.releases() });
  });

  router.post('/sources/:source/block', (req, res) => {
    const source = parse(sourceParam, req.params.source, 'Block /v1/admin/sources/<source id>/block');
    const body = parse(who.strict(), req.body, 'Send {"operator":"…","note":"why"}');
    admin.block(source, body.operator, body.note);
    res.json({ source: req.params.source, blocked: true });
  });

  router.delete('/sources/:source/block', (req, res) => {
    const source = parse(sourceParam, req.params.source, 'Unblock /v1/admin/sources/<source id>/block');
    const body = parse(who.strict(), req.body ?? {}, 'Send {"operator":"…","note":"why"}');
    admin.unblock(source, body.operator, body.note);
    res.json({ source: req.params.source, blocked: false });
  });
  return router;
}
