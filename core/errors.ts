/**
 * One root error with a stable `code` (docs/architecture.md "Errors", after kafkajs and @platformatic/kafka).
 * Call sites branch on `code`, never on message text; HTTP maps codes to statuses in src/http/errors.ts.
 */
export const ERROR_CODES = [
  'CONFIG_INVALID',
  'RECORD_INVALID',
  'CHECKPOINT_FAILED',
  'CHECKPOINT_CORRUPT',
  'MODEL_INVALID',
  'MODEL_NOT_READY',
  'REQUEST_INVALID',
  'NOT_FOUND',
  'UNAUTHORIZED',
  'ADMIN_DISABLED',
  'BUDGET_EXHAUSTED',
  'BROKER_UNAVAILABLE',
  'SIDECAR_UNREACHABLE',
  'ARGUMENT_INVALID',
  'INTERNAL',
  // Issue 14: failures that stop nothing silently. Each names what the operator does next in its message.
  'PAYLOAD_TOO_LARGE',
  'UNSUPPORTED_MEDIA_TYPE',
  'HEADERS_TOO_LARGE',
  'REQUEST_TIMEOUT',
  'RATE_LIMITED',
  'MODEL_UNHEALTHY',
  'STEP_FAILED',
  'OFFSETS_RESET',
  'CONSUMER_STOPPED',
  'QUARANTINE_FLUSH_FAILED',
  'SHUTDOWN_INCOMPLETE',
  'MODEL_VERSION_EXISTS',
  // Issue 10 item 5: the admin quarantine list pages the quarantine topic with a cursor.
  'QUARANTINE_CURSOR_INVALID',
  // Issue 10 item 5: the checkpoint's worst case (start-up) or an encoded checkpoint exceeds CHECKPOINT_MAX_BYTES.
  'CHECKPOINT_TOO_LARGE',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

const BRAND = Symbol.for('tayguard.error');

export class TayguardError extends Error {
  readonly code: ErrorCode;
  readonly retriable: boolean;
  readonly [BRAND] = true;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; retriable?: boolean } = {}) {
    super(message, { cause: options.cause });
    this.name = 'TayguardError';
    this.code = code;
    this.retriable = options.retriable ?? false;
  }

  /** Brand check that survives duplicate copies of the package (instanceof does not). */
  static is(value: unknown): value is TayguardError {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
  }
}

export const hasCode = (value: unknown, code: ErrorCode): boolean => TayguardError.is(value) && value.code === code;
