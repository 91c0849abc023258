/** The one place that maps error codes to HTTP statuses. Bodies are always {"error":{"code","message"}}. */
import type { ErrorRequestHandler } from 'express';
import { TayguardError, type ErrorCode } from '../../core/errors';
import type { Logger } from '../logger';

const STATUS: Partial<Record<ErrorCode, number>> = {
  REQUEST_INVALID: 400,
  QUARANTINE_CURSOR_INVALID: 400,
  RECORD_INVALID: 400,
  ARGUMENT_INVALID: 400,
  NOT_FOUND: 404,
  UNAUTHORIZED: 401,
  ADMIN_DISABLED: 404,
  BUDGET_EXHAUSTED: 409,
  MODEL_NOT_READY: 503,
  BROKER_UNAVAILABLE: 503,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  HEADERS_TOO_LARGE: 431,
  REQUEST_TIMEOUT: 408,
  RATE_LIMITED: 429,
  MODEL_UNHEALTHY: 503,
};

export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err, _req, res, _next) => {
    // body-parser errors carry a status and a type (entity.too.large, entity.parse.failed).
    const e = err as { status?: number; type?: string; message?: string };
    if (!TayguardError.is(err) && typeof e.status === 'number' && e.status >= 400 && e.status < 500) {
      // 415: body-parser refuses a charset or content encoding it cannot decode; that is not a malformed body.
      const code: ErrorCode = e.type === 'entity.too.large' ? 'PAYLOAD_TOO_LARGE' : e.status === 415 ? 'UNSUPPORTED_MEDIA_TYPE' : 'REQUEST_INVALID';
      const message =
        code === 'PAYLOAD_TOO_LARGE'
          ? 'request body is larger than HTTP_BODY_LIMIT'
          : code === 'UNSUPPORTED_MEDIA_TYPE'
            ? `unsupported body encoding: ${e.message}; send UTF-8 JSON without Content-Encoding`
            : `malformed request body: ${e.message}`;
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
