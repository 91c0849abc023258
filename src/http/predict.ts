/**
 * POST /v1/predict, evaluated in bounded chunks that yield to the event loop between them, so that a large request
 * neither blocks /livez nor the consumer's heartbeats and training (issue 14: 1,000-record requests made /livez
 * take up to 4.9 s). Every answered label is in 0 … NUM_CLASSES-1 (middleware/probe.ts).
 */
import { setImmediate as yieldTurn } from 'node:timers/promises';
import type { Request, Response } from 'express';
import type { Config } from '../config';
import type { Payload } from '../../middleware/featurize';
import { TayguardError } from '../../core/errors';
import { labelOf } from '../../middleware/probe';
import { predictRequest } from './schemas';

/** Records predicted per event-loop turn: a few ms for the 2^14 text model on one core. */
export const PREDICT_CHUNK = 16;

/**
 * One chunk per event-loop turn across ALL requests: each chunk waits for the previous one's turn to end. With a
 * per-request yield only, 16 concurrent requests would each run a chunk in the same turn and /livez (and the
 * consumer's heartbeats) would wait for all of them.
 */
let tail: Promise<void> = Promise.resolve();
function nextTurn(): Promise<void> {
  const mine = tail.then(() => yieldTurn());
  tail = mine.then(
    () => undefined,
    () => undefined,
  );
  return mine.then(() => undefined);
}
const MAX_VERSION_RETRIES = 3;

export interface Predictor {
  predict(payloads: readonly Payload[]): { modelVersion: number; probabilities: number[][] };
}

export function predictHandler(sidecar: Predictor, config: Config) {
  const schema = predictRequest(config);
  const max = config.ops.predictMaxRecords;
  return async (req: Request, res: Response): Promise<void> => {
    const parsed = schema.safeParse(req.body);
    if (!parsed.success) {
      const first = parsed.error.issues[0];
      const field = first ? `${first.path.join('.') || 'body'}: ${first.message}` : 'invalid body';
      throw new TayguardError('REQUEST_INVALID', `${field}. Send {"records":[{"${config.model.kind === 'text' ? 'text' : 'features'}": …}]} with 1 to ${max} records (PREDICT_MAX_RECORDS)`);
    }
    const records = parsed.data.records as Payload[];
    for (let attempt = 0; ; attempt++) {
      const { version, rows } = await predictChunked(sidecar, records);
      // A checkpoint between two chunks publishes a new version: answer from one version only.
      if (version === undefined) {
        if (attempt < MAX_VERSION_RETRIES) continue;
        throw new TayguardError('MODEL_NOT_READY', 'the model changed during the request; retry', { retriable: true });
      }
      if (res.destroyed) return;
      res.json({ modelVersion: version, predictions: rows.map((p) => ({ label: labelOf(p, config.model.numClasses), probabilities: p })) });
      return;
    }
  };
}

async function predictChunked(sidecar: Predictor, records: readonly Payload[]): Promise<{ version: number | undefined; rows: number[][] }> {
  const rows: number[][] = [];
  let version: number | undefined;
  for (let i = 0; i < records.length; i += PREDICT_CHUNK) {
    await nextTurn();
    const out = sidecar.predict(records.slice(i, i + PREDICT_CHUNK));
    if (version !== undefined && out.modelVersion !== version) return { version: undefined, rows };
    version = out.modelVersion;
    rows.push(...out.probabilities);
  }
  return { version, rows };
}
