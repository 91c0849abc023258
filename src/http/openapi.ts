/**
 * GET /openapi.json: the route table (src/http/routes.ts) as an OpenAPI 3.1 document, generated from the zod
 * schemas the server validates and answers with (@asteasolutions/zod-to-openapi, zod 4 metadata via `.meta`).
 * Built per app, so POST /v1/predict documents this configuration's records (text or FEATURE_DIM features).
 * Operator-only routes carry the `adminToken` security scheme; routes that answer more to the operator list it
 * as optional.
 */
import { OpenAPIRegistry, OpenApiGeneratorV31, type RouteConfig } from '@asteasolutions/zod-to-openapi';
import type { Config } from '../config';
import { openapiPath, type Access, type RouteDef } from './routes';
import { errorBody } from './schemas';

const SCHEME = 'adminToken';

function security(access: Access): RouteConfig['security'] {
  if (access === 'public') return undefined;
  if (access === 'public+operator') return [{}, { [SCHEME]: [] }];
  return [{ [SCHEME]: [] }];
}

const ACCESS_NOTE: Record<Access, string> = {
  public: 'Public.',
  'public+operator': 'Public; the operator (admin token, or OPERATOR_AUTH=open) gets the operator-only part too.',
  operator: 'Operator-only: needs the admin token when OPERATOR_AUTH=token (the default once ADMIN_TOKEN is set).',
  admin: 'Admin API: always needs ADMIN_TOKEN; answers 404 ADMIN_DISABLED when it is not set.',
};

export function openapiDocumentFor(routes: readonly RouteDef[], config: Config): ReturnType<OpenApiGeneratorV31['generateDocument']> {
  const registry = new OpenAPIRegistry();
  registry.registerComponent('securitySchemes', SCHEME, {
    type: 'http',
    scheme: 'bearer',
    description: 'Authorization: Bearer <ADMIN_TOKEN> (compared in constant time). See docs/privacy.md, "the release boundary".',
  });
  for (const r of routes) {
    const responses: RouteConfig['responses'] = {};
    for (const [status, res] of Object.entries(r.responses)) {
      const types = res.contentType === undefined ? ['application/json'] : typeof res.contentType === 'string' ? [res.contentType] : res.contentType;
      responses[status] = res.schema ? { description: res.description, content: Object.fromEntries(types.map((t) => [t, { schema: res.schema }])) } : { description: res.description };
    }
    responses.default = { description: 'an error: a stable code and what to do next', content: { 'application/json': { schema: errorBody } } };
    registry.registerPath({
      method: r.method,
      path: openapiPath(r.path),
      summary: r.summary,
      description: [r.description, ACCESS_NOTE[r.access]].filter(Boolean).join(' '),
      tags: [r.tag],
      ...(security(r.access) ? { security: security(r.access) } : {}),
      request: {
        ...(r.request?.params ? { params: r.request.params } : {}),
        ...(r.request?.query ? { query: r.request.query } : {}),
        ...(r.request?.body ? { body: { required: true, content: { 'application/json': { schema: r.request.body } } } } : {}),
      },
      responses,
    });
  }
  return new OpenApiGeneratorV31(registry.definitions).generateDocument({
    openapi: '3.1.0',
    info: {
      title: 'tayguard sidecar',
      version: '1', // the /v1 API
      description: `Screens a Kafka training stream for poisoning and trains a TensorFlow.js model with differential privacy. This sidecar: ${config.model.kind} model, OPERATOR_AUTH=${config.http.operatorAuth}${config.http.adminToken ? '' : ', admin API off (no ADMIN_TOKEN)'}.`,
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
  });
}
