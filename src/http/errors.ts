/** The one place that maps error codes to HTTP statuses. Bodies are always {"error":{"code","message"}}. */
import type { ErrorRequestHandler } from 'express';
import { TayguardError, type ErrorCode } from '../errors';
import type { Logger } from '../logger';

const STATUS: Partial<Record<ErrorCode, number>> = {
  REQUEST_INVALID: 400,
  RECORD_INVALID: 400,
  ARGUMENT_INVALID: 400,
  NOT_FOUND: 404,
  UNAUTHORIZED: 401,
  ADMIN_DISABLED: 404,
  BUDGET_EXHAUSTED: 409,
  MODEL_NOT_READY: 503,
  BROKER_UNAVAILABLE: 503,
};

export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err, _req, res, _next) => {
    // body-parser errors carry a status and a type (entity.too.large, entity.parse.failed).
    const e = err as { status?: number; type?: string; message?: string };
    if (!TayguardError.is(err) && typeof e.status === 'number' && e.status >= 400 && e.status < 500) {
      const code = e.type === 'entity.too.large' ? 'PAYLOAD_TOO_LARGE' : 'REQUEST_INVALID';
      const message = e.type === 'entity.too.large' ? 'request body is larger than HTTP_BODY_LIMIT' : `malformed request body: ${e.message}`;
      res.status(e.status).json({ error: { code, message } });
      return;
    }
    if (TayguardError.is(err)) {
      res.status(STATUS[err.code] ?? 500).json({ error: { code: err.code, message: err.message } });
      return;
    }
    logger.error({ err }, 'unhandled error in HTTP handler');
    res.status(500).json({ error: { code: 'INTERNAL', message: 'internal error; see the sidecar log' } });
  };
}
