/**
 * HTTP API (express + helmet). /livez never touches Kafka; /readyz reports consumer + model; everything else
 * reads the sidecar's in-memory state. Every route is a RouteDef (src/http/routes.ts): the same table mounts the
 * handlers and becomes GET /openapi.json; README "HTTP API" lists them.
 *
 * The release boundary (docs/privacy.md, "what is public"): the PUBLIC surface — predictions, the published
 * model versions, ε and its limit — depends on the data only through the DP mechanism and only as of the last
 * checkpoint. Everything that counts records, times steps or shows the gate's live state is OPERATOR-ONLY:
 * /metrics, the `detail` of GET /v1/model, the operator half of GET /v1/history and the admin API, behind
 * ADMIN_TOKEN when OPERATOR_AUTH=token.
 */
import express, { type Request } from 'express';
import helmet from 'helmet';
import { z } from 'zod';
import type { Config } from '../config';
import type { Logger } from '../logger';
import { TayguardError } from '../../core/errors';
import { errorHandler } from './errors';
import { adminRoutes } from './admin';
import type { SidecarView } from './types';
import { tokenMatches } from '../admin/release';
import { predictRateLimit, requireJsonBody } from './limits';
import { predictHandler } from './predict';
import { mountRoutes, type ResponseDef, type RouteDef } from './routes';
import { errorBody, history, livez, model, openapiDocument, predictRequest, predictResponse, readyz, versions } from './schemas';
import { audit, budget } from './schemas-privacy';
import { uiRoutes } from './ui';
import { openapiDocumentFor } from './openapi';
import { listVersions } from '../checkpoint/versions';

const error = (description: string): ResponseDef => ({ description, schema: errorBody });

export function createApp(sidecar: SidecarView, config: Config, logger: Logger): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(helmet());
  app.use(requireJsonBody);
  app.use(express.json({ limit: config.http.bodyLimit }));
  mountRoutes(app, routeTable(sidecar, config));
  app.use((req, res) => {
    res.status(404).json({ error: { code: 'NOT_FOUND', message: `no route ${req.method} ${req.path}; see GET /openapi.json` } });
  });
  app.use(errorHandler(logger));
  return app;
}

/** Every route of the app, with its schemas: createApp mounts exactly these, GET /openapi.json documents them. */
export function routeTable(sidecar: SidecarView, config: Config): RouteDef[] {
  const { adminToken, operatorAuth } = config.http;
  /** Whether this request may see the operator surface. */
  const isOperator = (req: Request): boolean => operatorAuth === 'open' || (adminToken !== undefined && tokenMatches(adminToken, req.get('authorization')));
  const hidden = 'operator-only (OPERATOR_AUTH=token): send Authorization: Bearer <ADMIN_TOKEN>';

  const routes: RouteDef[] = [
    {
      method: 'get',
      path: '/livez',
      summary: 'The process is up (never touches Kafka)',
      tag: 'health',
      access: 'public',
      responses: { 200: { description: 'up', schema: livez } },
      handlers: [(_req, res) => res.json({ status: 'ok' })],
    },
    {
      method: 'get',
      path: '/readyz',
      summary: 'Ready: the consumer has joined, the model is loaded and no health check fails',
      tag: 'health',
      access: 'public',
      responses: { 200: { description: 'ready', schema: readyz }, 503: { description: 'not ready, with the failing checks and what to do', schema: readyz } },
      handlers: [
        (_req, res) => {
          const s = sidecar.status();
          res.status(s.ready ? 200 : 503).json({ status: s.ready ? 'ready' : 'not ready', joined: s.joined, modelLoaded: s.modelLoaded, stopping: s.stopping, reasons: s.health.reasons });
        },
      ],
    },
    {
      method: 'get',
      path: '/metrics',
      summary: 'Prometheus metrics (operator-only)',
      tag: 'operator',
      access: 'operator',
      responses: { 200: { description: 'Prometheus text format', schema: z.string(), contentType: 'text/plain' }, 401: error('UNAUTHORIZED: OPERATOR_AUTH=token and no or a wrong token') },
      handlers: [
        async (req, res) => {
          if (!isOperator(req)) throw new TayguardError('UNAUTHORIZED', '/metrics is operator-only (OPERATOR_AUTH=token): send Authorization: Bearer <ADMIN_TOKEN>');
          res.set('Content-Type', sidecar.metrics.registry.contentType);
          res.send(await sidecar.metrics.registry.metrics());
        },
      ],
    },
    {
      method: 'get',
      path: '/v1/model',
      summary: 'The published model; to the operator also the live detail',
      tag: 'model',
      access: 'public+operator',
      responses: { 200: { description: 'the published model (with `detail` for the operator)', schema: model } },
      handlers: [
        (req, res) => {
          const s = sidecar.status();
          const published = {
            version: s.modelVersion,
            task: config.model.kind,
            backend: s.backend,
            inputDim: s.inputDim,
            numClasses: config.model.numClasses,
            checkpointSeq: s.checkpointSeq,
            lastCheckpointAt: s.lastCheckpointAt,
          };
          // Exact outcome counts, the gate's live state and the health detail are releases of the data outside the DP
          // mechanism (a rolled-back step or a refused publish says something about the records): operator-only.
          const detail = {
            records: s.counts,
            gate: s.gate,
            lastCheckpointError: s.health.lastCheckpointError,
            checkpointFailures: s.health.checkpointFailures,
            consumer: s.health.consumer,
            broker: s.health.broker,
            stepRollbacks: s.health.stepRollbacks,
            lastPublishRefusal: s.health.lastPublishRefusal,
          };
          res.json(isOperator(req) ? { ...published, detail } : published);
        },
      ],
    },
    {
      method: 'get',
      path: '/v1/model/versions',
      summary: 'The published versions in MODEL_DIR with the ε each was published under, newest first',
      tag: 'model',
      access: 'public',
      responses: { 200: { description: 'versions (public: a version carries ε, never a record count)', schema: versions } },
      handlers: [async (_req, res) => res.json({ versions: await listVersions(config.checkpoint.modelDir) })],
    },
    {
      method: 'post',
      path: '/v1/predict',
      summary: 'Predict with the published model',
      tag: 'model',
      access: 'public',
      request: { body: predictRequest(config) },
      responses: {
        200: { description: 'one prediction per record, all from one model version', schema: predictResponse },
        400: error('REQUEST_INVALID: the body does not match this model'),
        413: error('PAYLOAD_TOO_LARGE: larger than HTTP_BODY_LIMIT'),
        415: error('UNSUPPORTED_MEDIA_TYPE: not JSON'),
        429: error('RATE_LIMITED: more than PREDICT_RATE_LIMIT records per second from this client (Retry-After)'),
        503: error('MODEL_NOT_READY'),
      },
      handlers: [predictRateLimit(config), predictHandler(sidecar, config)],
    },
    {
      method: 'get',
      path: '/v1/privacy/budget',
      summary: 'The privacy guarantee and the budget spent, as of the last durable checkpoint',
      tag: 'privacy',
      access: 'public',
      responses: { 200: { description: 'the budget (no record counts)', schema: budget } },
      handlers: [(_req, res) => res.json(sidecar.budget())],
    },
    {
      method: 'get',
      path: '/v1/privacy/audit',
      summary: 'The continuous membership-inference audit: its empirical ε lower bound beside the accountant\'s ε',
      tag: 'privacy',
      access: 'public',
      responses: { 200: { description: 'the audit, or why it is off', schema: audit } },
      handlers: [(_req, res) => res.json(sidecar.audit())],
    },
    {
      method: 'get',
      path: '/v1/history',
      summary: 'The figures at each checkpoint of this process, for the status page\'s charts',
      description: 'Public: ε, steps and the model version as the public endpoints showed them. Operator: exact counts and the update gate.',
      tag: 'status page',
      access: 'public+operator',
      responses: { 200: { description: 'the history; the operator half is replaced by why it is hidden', schema: history } },
      handlers: [
        (req, res) => {
          const h = sidecar.history();
          res.json({
            capacity: h.capacity,
            note: `one sample per durable checkpoint of this process, kept in memory (at most ${h.capacity}; older samples are thinned, a restart starts afresh)`,
            public: h.publicSamples(),
            operator: isOperator(req) ? h.operatorSamples() : { hidden },
          });
        },
      ],
    },
    ...uiRoutes(),
    ...adminRoutes(sidecar.admin, config.http.adminToken),
  ];
  let document: unknown;
  routes.push({
    method: 'get',
    path: '/openapi.json',
    summary: 'This document: OpenAPI 3.1, generated from the zod schemas the server validates and answers with',
    tag: 'meta',
    access: 'public',
    responses: { 200: { description: 'OpenAPI 3.1', schema: openapiDocument } },
    handlers: [(_req, res) => res.json((document ??= openapiDocumentFor(routes, config)))],
  });
  return routes;
}
