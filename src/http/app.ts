/**
 * HTTP API (express + helmet). /livez never touches Kafka; /readyz reports consumer + model; everything else
 * reads the sidecar's in-memory state. Routes are documented in README "HTTP API".
 *
 * The release boundary (docs/privacy.md, "what is public"): the PUBLIC surface — predictions, the published
 * model version, ε and its limit — depends on the data only through the DP mechanism and only as of the last
 * checkpoint. Everything that counts records, times steps or shows the gate's live state is OPERATOR-ONLY:
 * /metrics, the `detail` of GET /v1/model and the admin API, behind ADMIN_TOKEN when OPERATOR_AUTH=token.
 */
import express, { type Request } from 'express';
import helmet from 'helmet';
import type { Config } from '../config';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';
import type { SidecarStatus } from '../sidecar';
import type { Payload } from '../../middleware/featurize';
import { TayguardError } from '../errors';
import { errorHandler } from './errors';
import { adminRouter, type AdminView } from './admin';
import { tokenMatches } from '../admin/release';
import { predictRateLimit, requireJsonBody } from './limits';
import { predictHandler } from './predict';

/** What the HTTP layer needs from the sidecar; tests can pass a real Sidecar that has only run init(). */
export interface SidecarView {
  readonly admin: AdminView;
  readonly metrics: Metrics;
  status(): SidecarStatus;
  predict(payloads: readonly Payload[]): { modelVersion: number; probabilities: number[][] };
  budget(): unknown;
  audit(): unknown;
}

export function createApp(sidecar: SidecarView, config: Config, logger: Logger): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(helmet());
  app.use(requireJsonBody);
  app.use(express.json({ limit: config.http.bodyLimit }));

  app.get('/livez', (_req, res) => {
    res.json({ status: 'ok' });
  });

  app.get('/readyz', (_req, res) => {
    const s = sidecar.status();
    res.status(s.ready ? 200 : 503).json({ status: s.ready ? 'ready' : 'not ready', joined: s.joined, modelLoaded: s.modelLoaded, stopping: s.stopping, reasons: s.health.reasons });
  });

  const { adminToken, operatorAuth } = config.http;
  /** Whether this request may see the operator surface. */
  const isOperator = (req: Request): boolean => operatorAuth === 'open' || (adminToken !== undefined && tokenMatches(adminToken, req.get('authorization')));

  app.get('/metrics', async (req, res) => {
    if (!isOperator(req)) throw new TayguardError('UNAUTHORIZED', '/metrics is operator-only (OPERATOR_AUTH=token): send Authorization: Bearer <ADMIN_TOKEN>');
    res.set('Content-Type', sidecar.metrics.registry.contentType);
    res.send(await sidecar.metrics.registry.metrics());
  });

  app.get('/v1/model', (req, res) => {
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
  });

  app.post('/v1/predict', predictRateLimit(config), predictHandler(sidecar, config));

  app.get('/v1/privacy/budget', (_req, res) => {
    res.json(sidecar.budget());
  });

  app.get('/v1/privacy/audit', (_req, res) => {
    res.json(sidecar.audit());
  });

  app.use('/v1/admin', adminRouter(sidecar.admin, config.http.adminToken));

  app.use((req, res) => {
    res.status(404).json({ error: { code: 'NOT_FOUND', message: `no route ${req.method} ${req.path}; see README "HTTP API"` } });
  });
  app.use(errorHandler(logger));
  return app;
}
