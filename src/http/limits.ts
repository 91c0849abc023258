/**
 * Serving isolated from training (issue 14): server timeouts, JSON answers for errors Node's HTTP parser
 * raises before express sees the request (431 headers too large, 408 timeout, 400 bad request), 415 for bodies
 * that are not JSON, and a per-client rate limit on POST /v1/predict (rate-limiter-flexible, in memory).
 * Without these, 16 clients asking for 100 predictions each cut training from 5,846 to 100 records in 20 s
 * and 200 stalled request bodies were held open for more than 75 s.
 */
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import type { Config } from '../config';
import { TayguardError } from '../errors';

export function applyServerLimits(server: Server, config: Config): void {
  const t = config.ops.http;
  // headersTimeout bounds slow-loris headers; requestTimeout the whole request (stalled bodies); keepAliveTimeout
  // idle connections. Node checks them every connectionsCheckingInterval (30 s by default): tighten it too.
  server.headersTimeout = t.headersTimeoutMs;
  server.requestTimeout = t.requestTimeoutMs;
  server.keepAliveTimeout = t.keepAliveTimeoutMs;
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => answerClientError(err, socket));
}

/** Node's default answer to a parser error has an empty, non-JSON body; every answer of the API is JSON. */
function answerClientError(err: NodeJS.ErrnoException, socket: Socket): void {
  if (!socket.writable || (err as { code?: string }).code === 'ECONNRESET') {
    socket.destroy();
    return;
  }
  const [status, text, code, message] =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'Request Header Fields Too Large', 'HEADERS_TOO_LARGE', 'request headers are larger than the server accepts (16 KB): send fewer or smaller headers']
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'Request Timeout', 'REQUEST_TIMEOUT', 'the request was not received in time (HTTP_REQUEST_TIMEOUT_MS / HTTP_HEADERS_TIMEOUT_MS): send the whole request promptly']
        : [400, 'Bad Request', 'REQUEST_INVALID', 'malformed HTTP request'];
  const body = JSON.stringify({ error: { code, message } });
  socket.end(`HTTP/1.1 ${status} ${text}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

/** A request with a body must send it as JSON: anything else is 415, not a confusing "missing field" 400. */
export const requireJsonBody: RequestHandler = (req: Request, _res: Response, next: NextFunction) => {
  const hasBody = req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
  if (hasBody && !req.is('application/json')) {
    next(new TayguardError('UNSUPPORTED_MEDIA_TYPE', `request bodies must be JSON: send Content-Type: application/json (got ${req.headers['content-type'] ?? 'none'})`));
    return;
  }
  next();
};

/**
 * Per-client limit on predicted records per second (PREDICT_RATE_LIMIT; the client is the socket's address:
 * behind a proxy, configure Express's trust proxy first). Costs the request's record count, so one client cannot
 * take the event loop from training by sending many large requests. 0 disables it.
 */
export function predictRateLimit(config: Config): RequestHandler {
  const points = config.ops.predictRateLimit;
  if (points === 0) return (_req, _res, next) => next();
  const limiter = new RateLimiterMemory({ points, duration: 1 });
  return (req, res, next) => {
    const records = (req.body as { records?: unknown } | undefined)?.records;
    const cost = Array.isArray(records) ? Math.min(Math.max(records.length, 1), points) : 1;
    limiter.consume(req.ip ?? req.socket.remoteAddress ?? 'unknown', cost).then(
      () => next(),
      (r: unknown) => {
        if (!(r instanceof RateLimiterRes)) return next(r);
        res.set('Retry-After', String(Math.max(1, Math.ceil(r.msBeforeNext / 1000))));
        next(new TayguardError('RATE_LIMITED', `more than ${points} predicted records per second from this client (PREDICT_RATE_LIMIT): retry after ${r.msBeforeNext} ms`, { retriable: true }));
      },
    );
  };
}
