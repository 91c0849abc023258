/** pino to stderr (stdout stays free for CLI output), with training payloads redacted from every line. */
import pino, { type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino(
    {
      name: 'tayguard',
      level,
      redact: { paths: ['text', 'features', 'record.text', 'record.features', '*.text', '*.features', 'authorization', 'token'], censor: '[redacted]' },
    },
    pino.destination(2),
  );
}
