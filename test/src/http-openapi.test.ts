/**
 * GET /openapi.json against the server itself: (1) the routes express actually mounted (its router stack) are
 * exactly the documented ones, and (2) every documented route, called on a running sidecar (no broker), answers
 * with a documented status and a body its documented zod schema parses — success and error answers alike.
 */
import { mkdtempSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadConfig, type Config } from '../../src/config';
import { createLogger } from '../../src/logger';
import { createSidecar, type Sidecar } from '../../src/sidecar';
import { createApp, routeTable } from '../../src/http/app';
import { openapiPath, type RouteDef } from '../../src/http/routes';
import { openapiDocument } from '../../src/http/schemas';
import { ASSETS } from '../../src/http/ui';

const TOKEN = 'openapi-test-admin-token-0123';
const auth = { authorization: `Bearer ${TOKEN}` };
const json = { 'content-type': 'application/json' };

interface Call {
  readonly what: string;
  readonly path: string;
  readonly init?: RequestInit;
  /** Repeat the call until this status comes (a rate limit), at most 20 times. */
  readonly until?: number;
  readonly status: number;
  /** Which sidecar: the one with ADMIN_TOKEN (default) or the one without. */
  readonly on?: 'withToken' | 'withoutToken';
}

const operation = (r: Pick<RouteDef, 'method' | 'path'>) => `${r.method.toUpperCase()} ${openapiPath(r.path)}`;

/** What each documented operation is called with here, and the status each call must answer. */
const CALLS: Record<string, readonly Call[]> = {
  'GET /': [{ what: 'redirect to the page', path: '/', status: 302 }],
  'GET /ui': [{ what: 'redirect to /ui/', path: '/ui', status: 302 }],
  'GET /ui/': [{ what: 'the page', path: '/ui/', status: 200 }],
  'GET /ui/{asset}': [...ASSETS.map((a) => ({ what: a, path: `/ui/${a}`, status: 200 })), { what: 'a file that is not the page\'s', path: '/ui/secret.js', status: 404 }],
  'GET /livez': [{ what: 'live', path: '/livez', status: 200 }],
  'GET /readyz': [{ what: 'not ready without a broker', path: '/readyz', status: 503 }],
  'GET /metrics': [
    { what: 'without the token', path: '/metrics', status: 401 },
    { what: 'with the token', path: '/metrics', init: { headers: auth }, status: 200 },
  ],
  'GET /v1/model': [
    { what: 'public', path: '/v1/model', status: 200 },
    { what: 'operator', path: '/v1/model', init: { headers: auth }, status: 200 },
  ],
  'GET /v1/model/versions': [{ what: 'none yet', path: '/v1/model/versions', status: 200 }],
  'POST /v1/predict': [
    { what: 'two texts', path: '/v1/predict', init: { method: 'POST', headers: json, body: JSON.stringify({ records: [{ text: 'free money' }, { text: 'lunch at noon' }] }) }, status: 200 },
    { what: 'features for a text model', path: '/v1/predict', init: { method: 'POST', headers: json, body: JSON.stringify({ records: [{ features: [1, 2] }] }) }, status: 400 },
    { what: 'a text body', path: '/v1/predict', init: { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'free money' }, status: 415 },
    { what: 'a body over HTTP_BODY_LIMIT', path: '/v1/predict', init: { method: 'POST', headers: json, body: JSON.stringify({ records: [{ text: 'x'.repeat(5000) }] }) }, status: 413 },
    {
      what: 'more records per second than PREDICT_RATE_LIMIT',
      path: '/v1/predict',
      init: { method: 'POST', headers: json, body: JSON.stringify({ records: Array.from({ length: 10 }, () => ({ text: 'again' })) }) },
      until: 429,
      status: 429,
    },
  ],
  'GET /v1/privacy/budget': [{ what: 'the budget', path: '/v1/privacy/budget', status: 200 }],
  'GET /v1/privacy/audit': [{ what: 'audit off', path: '/v1/privacy/audit', status: 200 }],
  'GET /v1/history': [
    { what: 'public half', path: '/v1/history', status: 200 },
    { what: 'both halves', path: '/v1/history', init: { headers: auth }, status: 200 },
  ],
  'GET /openapi.json': [{ what: 'the document', path: '/openapi.json', status: 200 }],
  'GET /v1/admin/quarantine': [
    { what: 'not connected to Kafka', path: '/v1/admin/quarantine?stage=echo&limit=5', init: { headers: auth }, status: 503 },
    { what: 'a bad limit', path: '/v1/admin/quarantine?limit=0', init: { headers: auth }, status: 400 },
    { what: 'a bad cursor', path: '/v1/admin/quarantine?cursor=not-one', init: { headers: auth }, status: 400 },
    { what: 'without the token', path: '/v1/admin/quarantine', status: 401 },
    { what: 'admin API off', path: '/v1/admin/quarantine', init: { headers: auth }, status: 404, on: 'withoutToken' },
  ],
  'POST /v1/admin/quarantine/release': [
    {
      what: 'not connected to Kafka',
      path: '/v1/admin/quarantine/release',
      init: { method: 'POST', headers: { ...auth, ...json }, body: JSON.stringify({ keys: ['t/0/1'], operator: 'ops', note: 'false positive' }) },
      status: 503,
    },
    { what: 'no note', path: '/v1/admin/quarantine/release', init: { method: 'POST', headers: { ...auth, ...json }, body: JSON.stringify({ keys: ['t/0/1'], operator: 'ops' }) }, status: 400 },
    { what: 'without the token', path: '/v1/admin/quarantine/release', init: { method: 'POST', headers: json, body: '{}' }, status: 401 },
    { what: 'admin API off', path: '/v1/admin/quarantine/release', init: { method: 'POST', headers: json, body: '{}' }, status: 404, on: 'withoutToken' },
  ],
  'GET /v1/admin/releases': [
    { what: 'none yet', path: '/v1/admin/releases', init: { headers: auth }, status: 200 },
    { what: 'without the token', path: '/v1/admin/releases', status: 401 },
    { what: 'admin API off', path: '/v1/admin/releases', status: 404, on: 'withoutToken' },
  ],
  'POST /v1/admin/sources/{source}/block': [
    { what: 'block', path: '/v1/admin/sources/sybil-1/block', init: { method: 'POST', headers: { ...auth, ...json }, body: JSON.stringify({ operator: 'ops', note: 'flood' }) }, status: 200 },
    { what: 'a source id too long', path: `/v1/admin/sources/${'s'.repeat(257)}/block`, init: { method: 'POST', headers: { ...auth, ...json }, body: JSON.stringify({ operator: 'ops', note: 'x' }) }, status: 400 },
    { what: 'without the token', path: '/v1/admin/sources/sybil-1/block', init: { method: 'POST' }, status: 401 },
    { what: 'admin API off', path: '/v1/admin/sources/sybil-1/block', init: { method: 'POST' }, status: 404, on: 'withoutToken' },
  ],
  'DELETE /v1/admin/sources/{source}/block': [
    { what: 'unblock', path: '/v1/admin/sources/sybil-1/block', init: { method: 'DELETE', headers: { ...auth, ...json }, body: JSON.stringify({ operator: 'ops', note: 'calm again' }) }, status: 200 },
    { what: 'no operator', path: '/v1/admin/sources/sybil-1/block', init: { method: 'DELETE', headers: { ...auth, ...json }, body: JSON.stringify({ note: 'x' }) }, status: 400 },
    { what: 'without the token', path: '/v1/admin/sources/sybil-1/block', init: { method: 'DELETE' }, status: 401 },
    { what: 'admin API off', path: '/v1/admin/sources/sybil-1/block', init: { method: 'DELETE' }, status: 404, on: 'withoutToken' },
  ],
};

/**
 * Documented statuses this no-broker setup cannot produce, and where they are exercised instead. Kept short on
 * purpose: each needs a joined consumer or a model that is still loading.
 */
const ELSEWHERE: Record<string, string> = {
  'GET /readyz 200': 'needs a joined consumer: test/integration/status-page.test.ts parses it with the same schema',
  'POST /v1/predict 503': 'MODEL_NOT_READY while the model loads: createSidecar loads it before listening',
  'POST /v1/admin/quarantine/release 200': 'needs Kafka: test/integration/admin.test.ts',
  'GET /v1/admin/quarantine 200': 'reads the quarantine topic: test/integration/quarantine-list.test.ts',
};

describe('OpenAPI 3.1 document of every route', () => {
  let withToken: Sidecar;
  let withoutToken: Sidecar;
  let config: Config;
  let routes: RouteDef[];
  const base = (s: Sidecar) => `http://127.0.0.1:${s.port}`;

  beforeAll(async () => {
    const env = { KAFKA_BROKERS: '127.0.0.1:1', PORT: '0', HOST: '127.0.0.1', TEXT_HASH_DIM: '256', HTTP_BODY_LIMIT: '2kb', PREDICT_RATE_LIMIT: '25', PREDICT_MAX_RECORDS: '20' };
    config = loadConfig({ ...env, CHECKPOINT_DIR: mkdtempSync(path.join(os.tmpdir(), 'tg-openapi-')), ADMIN_TOKEN: TOKEN });
    withToken = await createSidecar(config, createLogger('silent'));
    await withToken.listen();
    withoutToken = await createSidecar(loadConfig({ ...env, CHECKPOINT_DIR: mkdtempSync(path.join(os.tmpdir(), 'tg-openapi-off-')) }), createLogger('silent'));
    await withoutToken.listen();
    routes = routeTable(withToken, config);
  });
  afterAll(async () => {
    await withToken?.stop();
    await withoutToken?.stop();
  });

  it('documents exactly the routes express mounted (its router stack), and mounts nothing else', async () => {
    const app = createApp(withToken, config, createLogger('silent'));
    const stack = (app as unknown as { router: { stack: { route?: { path: string; methods: Record<string, boolean> }; handle: { stack?: unknown } }[] } }).router.stack;
    // No nested routers: every route is a top-level route layer, so this walk sees all of them.
    expect(stack.filter((l) => !l.route && l.handle.stack !== undefined)).toEqual([]);
    const mounted = stack.flatMap((l) => (l.route ? Object.keys(l.route.methods).map((m) => `${m.toUpperCase()} ${openapiPath(l.route!.path)}`) : []));
    const doc = openapiDocument.parse(await (await fetch(`${base(withToken)}/openapi.json`)).json()) as { paths: Record<string, Record<string, unknown>> };
    const documented = Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`));
    expect([...mounted].sort()).toEqual([...documented].sort());
    expect(new Set(mounted).size).toBe(mounted.length);
    expect(documented.sort()).toEqual(routes.map(operation).sort());
    expect(mounted.length).toBeGreaterThanOrEqual(18);
  });

  it('is OpenAPI 3.1 with the admin token as a bearer scheme on every operator-only route', async () => {
    const doc = (await (await fetch(`${base(withToken)}/openapi.json`)).json()) as any;
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.components.securitySchemes.adminToken).toMatchObject({ type: 'http', scheme: 'bearer' });
    for (const r of routes) {
      const op = doc.paths[openapiPath(r.path)][r.method];
      if (r.access === 'public') expect(op.security).toBeUndefined();
      else if (r.access === 'public+operator') expect(op.security).toEqual([{}, { adminToken: [] }]);
      else expect({ route: operation(r), security: op.security }).toEqual({ route: operation(r), security: [{ adminToken: [] }] });
      expect(op.responses.default.content['application/json'].schema).toEqual({ $ref: '#/components/schemas/Error' });
    }
    // POST /v1/predict documents this configuration's records: text, at most MAX_TEXT_CHARS.
    const predict = doc.paths['/v1/predict'].post.requestBody.content['application/json'].schema;
    expect(predict.properties.records.items).toMatchObject({ properties: { text: { type: 'string', maxLength: config.limits.maxTextChars } }, additionalProperties: false });
    expect(predict.properties.records.maxItems).toBe(config.ops.predictMaxRecords);
    expect(doc.paths['/v1/admin/sources/{source}/block'].post.parameters).toEqual([expect.objectContaining({ in: 'path', name: 'source', required: true })]);
    expect(doc.paths['/v1/admin/quarantine'].get.parameters.map((p: { name: string }) => p.name).sort()).toEqual(['cursor', 'limit', 'reason', 'source', 'stage']);
  });

  it('has a call for every documented operation, and every documented status is called (or said where it is)', () => {
    const ops = routes.map(operation);
    expect(ops.filter((o) => !CALLS[o])).toEqual([]);
    expect(Object.keys(CALLS).filter((o) => !ops.includes(o))).toEqual([]);
    const uncalled = routes.flatMap((r) =>
      Object.keys(r.responses)
        .map((s) => `${operation(r)} ${s}`)
        .filter((key) => !CALLS[operation(r)].some((c) => key.endsWith(` ${c.status}`)) && !ELSEWHERE[key]),
    );
    expect(uncalled).toEqual([]);
  });

  it('answers every call with a documented status and a body the documented zod schema parses', async () => {
    const failures: string[] = [];
    for (const r of routes) {
      for (const call of CALLS[operation(r)]) {
        const sidecar = call.on === 'withoutToken' ? withoutToken : withToken;
        let res = await fetch(base(sidecar) + call.path, { redirect: 'manual', ...call.init });
        for (let i = 0; call.until !== undefined && res.status !== call.until && i < 20; i++) {
          await res.arrayBuffer();
          res = await fetch(base(sidecar) + call.path, { redirect: 'manual', ...call.init });
        }
        const label = `${operation(r)} (${call.what}): ${res.status}`;
        const documented = r.responses[res.status];
        if (res.status !== call.status || !documented) {
          failures.push(`${label}, expected ${call.status}${documented ? '' : ' — status not documented'}: ${await res.text()}`);
          continue;
        }
        const contentType = res.headers.get('content-type') ?? '';
        const text = await res.text();
        if (!documented.schema) {
          if (res.status === 302) expect(res.headers.get('location')).toBe('ui/');
          continue;
        }
        const types = documented.contentType === undefined ? ['application/json'] : typeof documented.contentType === 'string' ? [documented.contentType] : documented.contentType;
        if (!types.some((t) => contentType.startsWith(t))) failures.push(`${label}: content-type ${contentType}, documented ${types.join(' or ')}`);
        const body = contentType.startsWith('application/json') ? JSON.parse(text) : text;
        const parsed = documented.schema.safeParse(body);
        if (!parsed.success) failures.push(`${label}: body does not match the documented schema: ${parsed.error.message.slice(0, 600)}`);
      }
    }
    expect(failures).toEqual([]);
  });

  it('gives the operator more than the public on the public+operator routes (the release boundary)', async () => {
    const get = async (p: string, headers?: Record<string, string>) => (await fetch(base(withToken) + p, { headers })).json() as Promise<any>;
    expect((await get('/v1/model')).detail).toBeUndefined();
    expect((await get('/v1/model', auth)).detail.records).toMatchObject({ trained: 0 });
    expect((await get('/v1/history')).operator).toEqual({ hidden: expect.stringMatching(/ADMIN_TOKEN/) });
    expect(Array.isArray((await get('/v1/history', auth)).operator)).toBe(true);
  });
});
