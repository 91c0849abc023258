/**
 * The zod schemas of the HTTP API's requests and answers: the server validates request bodies with them, the
 * OpenAPI document (src/http/openapi.ts) is generated from them, and test/src/http-openapi.test.ts parses every
 * answer of a running server with them. Answers are strict objects: a field the document does not name fails
 * that test. Privacy answers are in schemas-privacy.ts, the admin API's in schemas-admin.ts.
 *
 * The `satisfies`-style checks at the bottom tie these schemas to the TypeScript types the handlers send, so a
 * field added to a type without its schema fails `tsc`.
 */
import { z } from 'zod';
import { ERROR_CODES } from '../../core/errors';
import type { Config } from '../config';
import type { SidecarStatus } from './types';
import type { VersionSummary } from '../checkpoint/versions';
import type { OperatorSample, PublicSample } from '../history';

const isoTime = z.iso.datetime();
const count = z.number().int().nonnegative();
const tally = z.record(z.string(), count);

export const errorBody = z
  .strictObject({ error: z.strictObject({ code: z.enum(ERROR_CODES), message: z.string().describe('what went wrong and what to do next') }) })
  .meta({ id: 'Error', description: 'Every error answer: a stable code (core/errors.ts) and a message saying what to do next' });

export const livez = z.strictObject({ status: z.literal('ok') });

const healthReason = z.strictObject({ code: z.enum(ERROR_CODES), message: z.string() });
export const readyz = z.strictObject({
  status: z.enum(['ready', 'not ready']),
  joined: z.boolean(),
  modelLoaded: z.boolean(),
  stopping: z.boolean(),
  reasons: z.array(healthReason),
});

export const outcomeCounts = z
  .strictObject({ trained: count, quarantined: count, skipped: count, quarantineReasons: tally, quarantineStages: tally, skipReasons: tally })
  .meta({ id: 'OutcomeCounts', description: 'Lifetime outcome totals (operator-only: exact counts are a release outside the DP mechanism)' });

const gateAlert = z.strictObject({ kind: z.literal('rollback'), at: isoTime, message: z.string(), canaryAccuracy: z.number(), restoredAccuracy: z.number() });
const atMessage = z.strictObject({ at: isoTime, message: z.string() });

export const modelDetail = z
  .strictObject({
    records: outcomeCounts,
    gate: z.strictObject({ canaries: count, accepted: count, rejected: count, alerts: z.array(gateAlert).describe('the last 50 rollbacks') }).nullable(),
    lastCheckpointError: atMessage.nullable(),
    checkpointFailures: count,
    consumer: z.strictObject({ running: z.boolean(), crashes: count, lastCrash: atMessage.nullable() }),
    broker: z.strictObject({ lastContactAt: isoTime.nullable(), unreachableForMs: z.number().nullable() }),
    stepRollbacks: count,
    lastPublishRefusal: z.strictObject({ at: isoTime, reason: z.string() }).nullable(),
  })
  .meta({ id: 'ModelDetail', description: 'Operator-only: the sidecar\'s live state' });

export const model = z
  .strictObject({
    version: count.describe('the published (served) model version; 0 before the first'),
    task: z.enum(['text', 'dense']),
    backend: z.string().describe('the tfjs backend in use: wasm, cpu or tensorflow'),
    inputDim: count,
    numClasses: count,
    checkpointSeq: count,
    lastCheckpointAt: isoTime.nullable(),
    detail: modelDetail.optional().describe('present only for the operator (admin token, or OPERATOR_AUTH=open)'),
  })
  .meta({ id: 'Model' });

export const versionSummary = z.strictObject({
  version: count,
  createdAt: isoTime,
  checkpointSeq: count,
  epsilon: z.number().nullable().describe('ε at publication (null when training is not private)'),
  delta: z.number().nullable(),
  accountant: z.string().nullable(),
  weightsSha256: z.string().regex(/^[0-9a-f]{64}$/),
  rolledBack: z.boolean().nullable().describe('a rollback of the update gate returned to this model (null: gate off)'),
  aliases: z.array(z.enum(['stable', 'rollback', 'latest'])),
});
export const versions = z
  .strictObject({ versions: z.array(versionSummary).describe('newest first, at most 50: what MODEL_DIR holds') })
  .meta({ id: 'ModelVersions' });

const publicSample = z.strictObject({ at: isoTime, epsilonSpent: z.number().nullable(), steps: count.nullable(), modelVersion: count, checkpointSeq: count });
const operatorSample = z.strictObject({
  at: isoTime,
  trained: count,
  quarantined: count,
  skipped: count,
  quarantineStages: tally,
  gate: z.strictObject({ accepted: count, rejected: count, rollbacks: count, canaryAccuracy: z.number().nullable() }).nullable(),
});
export const history = z
  .strictObject({
    capacity: count,
    note: z.string(),
    public: z.array(publicSample).describe('the public figures at each checkpoint, oldest first'),
    operator: z.union([z.array(operatorSample), z.strictObject({ hidden: z.string() })]).describe('exact counts at each checkpoint, or why they are hidden'),
  })
  .meta({ id: 'History', description: 'One sample per durable checkpoint of this process, bounded (older samples thinned)' });

/** POST /v1/predict's body for this configuration (the text model takes text, the dense one FEATURE_DIM numbers). */
export function predictRequest(config: Config) {
  const record =
    config.model.kind === 'text'
      ? z.strictObject({ text: z.string().max(config.limits.maxTextChars) })
      : z.strictObject({ features: z.array(z.number().finite()).length(config.model.inputDim) });
  return z.strictObject({ records: z.array(record).min(1).max(config.ops.predictMaxRecords) });
}

export const predictResponse = z.strictObject({
  modelVersion: count.describe('the one version every prediction of this answer came from'),
  predictions: z.array(
    z.strictObject({
      label: count,
      // PREDICT_OUTPUT: exact (probabilities), rounded to PREDICT_PROBABILITY_STEP (coarse), or absent (label).
      probabilities: z.array(z.number()).optional().describe('class probabilities: exact, or rounded with PREDICT_OUTPUT=coarse; absent with PREDICT_OUTPUT=label'),
    }),
  ),
});

export const openapiDocument = z.looseObject({ openapi: z.literal('3.1.0'), info: z.looseObject({ title: z.string(), version: z.string() }), paths: z.record(z.string(), z.unknown()) });

// Compile-time: what the handlers send fits these schemas.
/** Same fields both ways (readonly-ness aside): a field in the type but not the schema, or the reverse, is an error. */
type DeepReadonly<T> = T extends readonly (infer U)[] ? readonly DeepReadonly<U>[] : T extends object ? { readonly [K in keyof T]: DeepReadonly<T[K]> } : T;
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : never) : never;
type Fits<T, S extends z.ZodType> = Same<DeepReadonly<T>, DeepReadonly<z.output<S>>>;
export const typesFitSchemas = {
  counts: true satisfies Fits<SidecarStatus['counts'], typeof outcomeCounts>,
  gateAlert: true satisfies Fits<NonNullable<SidecarStatus['gate']>['alerts'][number], typeof gateAlert>,
  version: true satisfies Fits<VersionSummary, typeof versionSummary>,
  publicSample: true satisfies Fits<PublicSample, typeof publicSample>,
  operatorSample: true satisfies Fits<OperatorSample, typeof operatorSample>,
};
