/**
 * A record whose handling threw (featurizing, screening, training) is quarantined with stage "runtime" instead of
 * the error escaping eachBatch: kafkajs does not restart a consumer after a non-retriable error, so one poison
 * pill used to stop consumption for good (issue 14). The reason carries the error's code and message so that a
 * reviewer can tell a bug from bad data; the record is kept on the quarantine topic like any other.
 */
import type { RecordContext } from './pipeline';
import { TayguardError } from './errors';

export const RUNTIME_STAGE = 'runtime';
export const RUNTIME_CODE = 'processing_failed';
const MAX_MESSAGE = 500;

export function runtimeFailure(ctx: RecordContext, error: unknown): void {
  const e = error as Error | undefined;
  const code = TayguardError.is(error) ? `${error.code}: ` : '';
  const message = `${code}${e?.message ?? String(error)}`.slice(0, MAX_MESSAGE);
  ctx.reasons.push({ stage: RUNTIME_STAGE, code: RUNTIME_CODE, message: `handling this record failed: ${message}` });
  ctx.outcome = { kind: 'quarantined' };
}
