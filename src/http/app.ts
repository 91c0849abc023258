/**
 * HTTP API (express + helmet). /livez never touches Kafka; /readyz reports consumer + model; everything else
 * reads the sidecar's in-memory state. Routes are documented in README "HTTP API".
 */
import express from 'express';
import helmet from 'helmet';
import type { Config } from '../config';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';
import type { SidecarStatus } from '../sidecar';
import type { Payload } from '../../middleware/featurize';
import { errorHandler } from './errors';
import { adminRouter, type AdminView } from './admin';
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

  app.get('/metrics', async (_req, res) => {
    res.set('Content-Type', sidecar.metrics.registry.contentType);
    res.send(await sidecar.metrics.registry.metrics());
  });

  app.get('/v1/model', (_req, res) => {
    const s = sidecar.status();
    res.json({
      version: s.modelVersion,
      task: config.model.kind,
      backend: s.backend,
      inputDim: s.inputDim,
      numClasses: config.model.numClasses,
      checkpointSeq: s.checkpointSeq,
      lastCheckpointAt: s.lastCheckpointAt,
      records: s.counts,
      gate: s.gate,
      lastCheckpointError: s.health.lastCheckpointError,
      checkpointFailures: s.health.checkpointFailures,
      consumer: s.health.consumer,
      broker: s.health.broker,
      stepRollbacks: s.health.stepRollbacks,
      lastPublishRefusal: s.health.lastPublishRefusal,
    });
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
