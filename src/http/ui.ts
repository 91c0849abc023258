/**
 * The status page: static files shipped in src/http/static (copied to dist/src/http/static by `npm run build`),
 * served at /ui/ — no CDN, no build step, plain SVG drawn by the page's own modules. The page reads the JSON API
 * (/readyz, /v1/model, /v1/model/versions, /v1/history, /v1/privacy/budget, /v1/privacy/audit) and sends the admin
 * token only when the person typed one in (kept in sessionStorage).
 *
 * Content-Security-Policy stays on (helmet's defaults), tightened for the page: scripts and styles only from
 * this origin, as files (no inline script or style). One default is dropped: upgrade-insecure-requests, which
 * makes a browser fetch this page's own scripts over https — the sidecar serves plain HTTP, so with it the page
 * would load without its scripts whenever it is opened by a non-localhost http address.
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import type { Request, RequestHandler, Response } from 'express';
import helmet from 'helmet';
import { z } from 'zod';
import { TayguardError } from '../../core/errors';
import type { RouteDef } from './routes';
import { errorBody } from './schemas';

export const STATIC_DIR = path.join(__dirname, 'static');

/** The page's files and nothing else: a name not listed here is a 404, never a path on disk. */
export const ASSETS = ['app.js', 'chart.js', 'panels.js', 'statement.js', 'style.css'] as const;

const pageCsp = helmet.contentSecurityPolicy({
  useDefaults: true,
  directives: { 'style-src': ["'self'"], 'connect-src': ["'self'"], 'frame-ancestors': ["'none'"], 'upgrade-insecure-requests': null },
});

function send(file: string, res: Response): void {
  if (!existsSync(path.join(STATIC_DIR, file))) {
    throw new TayguardError('NOT_FOUND', `the status page's ${file} is missing from this build: src/http/static is copied to dist/src/http/static by \`npm run build\``);
  }
  res.set('Cache-Control', 'no-cache');
  res.sendFile(file, { root: STATIC_DIR, dotfiles: 'deny' });
}

const html = z.string().describe('the status page (HTML)');
const redirect = (description: string) => ({ description });
/** Both /ui and /ui/ reach each handler (express routes ignore a trailing slash): each keeps to its own. */
const slashed = (req: Request) => req.path.endsWith('/');

export function uiRoutes(): RouteDef[] {
  const csp: RequestHandler = pageCsp;
  return [
    {
      method: 'get',
      path: '/',
      summary: 'Redirects to the status page',
      tag: 'status page',
      access: 'public',
      responses: { 302: redirect('Location: ui/') },
      handlers: [(_req, res) => res.redirect(302, 'ui/')],
    },
    {
      method: 'get',
      path: '/ui',
      summary: 'Redirects to /ui/ (so that the page\'s relative addresses resolve under /ui/)',
      tag: 'status page',
      access: 'public',
      responses: { 302: redirect('Location: ui/') },
      handlers: [(req, res, next) => (slashed(req) ? next() : res.redirect(302, 'ui/'))],
    },
    {
      method: 'get',
      path: '/ui/',
      summary: 'The status page: ε against its limit and the audit, records and quarantine over time, the update gate, model versions, the privacy statement',
      description: 'Public figures are shown to anyone; the operator-only panels are fetched with the admin token typed into the page.',
      tag: 'status page',
      access: 'public',
      responses: { 200: { description: 'HTML', schema: html, contentType: 'text/html' } },
      handlers: [csp, (req, res, next) => (slashed(req) ? send('index.html', res) : next())],
    },
    {
      method: 'get',
      path: '/ui/:asset',
      summary: 'The status page\'s scripts and style sheet',
      tag: 'status page',
      access: 'public',
      request: { params: z.strictObject({ asset: z.enum(ASSETS) }) },
      responses: {
        200: { description: 'a JavaScript module or the style sheet', schema: z.string(), contentType: ['text/javascript', 'text/css'] },
        404: { description: 'NOT_FOUND: not one of the page\'s files', schema: errorBody },
      },
      handlers: [
        csp,
        (req, res) => {
          const asset = ASSETS.find((a) => a === req.params.asset);
          if (!asset) throw new TayguardError('NOT_FOUND', `no file ${req.params.asset} in the status page; see GET /openapi.json`);
          send(asset, res);
        },
      ],
    },
  ];
}
