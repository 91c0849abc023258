/**
 * POST /v1/predict, evaluated in bounded chunks that yield to the event loop between them, so that a large request
 * neither blocks /livez nor the consumer's heartbeats and training (issue 14: 1,000-record requests made /livez
 * take up to 4.9 s). Every answered label is in 0 … NUM_CLASSES-1 (middleware/probe.ts).
 *
 * PREDICT_OUTPUT decides how much of the served model's output a client sees: `probabilities` (the default),
 * `coarse` (each probability rounded to the nearest multiple of PREDICT_PROBABILITY_STEP) or `label` (the argmax
 * only). Coarsening takes away the fine signal a hill-climbing client reads progress from; it does not stop a
 * surrogate trained from labels, and the published model versions are public anyway (README "What an attacker can
 * and cannot learn" says why probabilities stay the default). The label is always the argmax of the exact
 * probabilities, so it is the same in every mode.
 */
import { setImmediate as yieldTurn } from 'node:timers/promises';
import type { Request, Response } from 'express';
import type { Config } from '../config';
import type { Payload } from '../../middleware/featurize';
import { TayguardError } from '../../core/errors';
import { labelOf } from '../../middleware/probe';
import { predictRequest } from './schemas';
import { readPart } from '../../filters/schema';

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
    // Read as training reads them: a text's first TEXT_READ_CHARS characters (filters/schema.ts readPart).
    const records = (parsed.data.records as Payload[]).map((r) => (r.text === undefined ? r : { ...r, text: readPart(r.text, config.limits.textReadChars) }));
    for (let attempt = 0; ; attempt++) {
      const { version, rows } = await predictChunked(sidecar, records);
      // A checkpoint between two chunks publishes a new version: answer from one version only.
      if (version === undefined) {
        if (attempt < MAX_VERSION_RETRIES) continue;
        throw new TayguardError('MODEL_NOT_READY', 'the model changed during the request; retry', { retriable: true });
      }
      if (res.destroyed) return;
      res.json({ modelVersion: version, predictions: rows.map((p) => answer(p, config)) });
      return;
    }
  };
}

/** One prediction as PREDICT_OUTPUT says. */
export function answer(p: number[], config: Pick<Config, 'model' | 'http'>): { label: number; probabilities?: number[] } {
  const label = labelOf(p, config.model.numClasses);
  const { mode, step } = config.http.predictOutput;
  if (mode === 'label') return { label };
  if (mode === 'coarse') return { label, probabilities: p.map((x) => roundTo(x, step)) };
  return { label, probabilities: p };
}

/** x rounded to the nearest multiple of `step`, printed without binary noise (0.30000000000000004 → 0.3). */
export function roundTo(x: number, step: number): number {
  const decimals = Math.min(12, Math.max(0, -Math.floor(Math.log10(step)) + 2));
  return Number((Math.round(x / step) * step).toFixed(decimals));
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
