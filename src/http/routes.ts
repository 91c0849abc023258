/**
 * The one route table: every route the app answers is a RouteDef, and the same list both mounts the handlers
 * (mountRoutes) and becomes the OpenAPI document (src/http/openapi.ts) — so "every route is documented" holds by
 * construction; test/src/http-openapi.test.ts still checks express's own router stack against the document.
 */
import type { Express, RequestHandler } from 'express';
import type { z } from 'zod';

/**
 * Who may call a route (docs/privacy.md, "the release boundary"):
 *  - public: anyone;
 *  - public+operator: anyone, and the operator (admin token, or OPERATOR_AUTH=open) gets more in the same answer;
 *  - operator: the operator surface — needs the admin token when OPERATOR_AUTH=token;
 *  - admin: always needs ADMIN_TOKEN (the admin API is off without it).
 */
export type Access = 'public' | 'public+operator' | 'operator' | 'admin';

export interface ResponseDef {
  readonly description: string;
  /** The body's schema; absent for a body-less answer (a redirect). */
  readonly schema?: z.ZodType;
  /** Default application/json. */
  readonly contentType?: string | readonly string[];
}

export interface RouteDef {
  readonly method: 'get' | 'post' | 'delete';
  /** Express syntax (`/v1/admin/sources/:source/block`); the document writes `{source}`. */
  readonly path: string;
  readonly summary: string;
  readonly description?: string;
  readonly tag: 'health' | 'model' | 'privacy' | 'operator' | 'admin' | 'status page' | 'meta';
  readonly access: Access;
  readonly request?: { readonly body?: z.ZodType; readonly query?: z.ZodObject; readonly params?: z.ZodObject };
  /** Every status the route answers with on purpose; anything else is an Error body (`default` in the document). */
  readonly responses: Readonly<Record<number, ResponseDef>>;
  readonly handlers: readonly RequestHandler[];
}

/** `/v1/admin/sources/:source/block` → `/v1/admin/sources/{source}/block`. */
export const openapiPath = (expressPath: string): string => expressPath.replace(/:([A-Za-z_]\w*)/g, '{$1}');

export function mountRoutes(app: Express, routes: readonly RouteDef[]): void {
  for (const r of routes) app[r.method](r.path, ...r.handlers);
}
