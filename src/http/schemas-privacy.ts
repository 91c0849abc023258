/**
 * Schemas of the privacy answers: GET /v1/privacy/budget (src/privacy-status.ts builds it) and GET
 * /v1/privacy/audit (src/audit/auditor.ts). Both public by the release boundary (docs/privacy.md): configuration,
 * the step count and ε, never a record count.
 */
import { z } from 'zod';
import type { BudgetResponse } from '../privacy-status';
import type { AuditResult } from '../audit/auditor';

const isoTime = z.iso.datetime();
const count = z.number().int().nonnegative();
/** JSON has no Infinity: an unbounded ε (or one an accountant could not compute) is sent as null. */
const epsilon = z.number().nullable();

const tprPair = z.strictObject({ '0.001': z.number(), '0.01': z.number() });
export const auditResult = z
  .strictObject({
    method: z.literal('one-run (Steinke, Nasr, Jagielski 2023) with a loss-threshold attack'),
    round: count,
    canaries: count,
    included: count,
    guesses: count,
    correct: count,
    confidence: z.number(),
    epsilonLowerBound: z.number().describe('empirical ε lower bound at `confidence` (one-run audit, Steinke, Nasr & Jagielski 2023)'),
    epsilonAccounted: epsilon,
    delta: z.number(),
    auc: z.number(),
    tprAtFpr: tprPair,
    dpTprBound: tprPair.nullable(),
    exceeds: z.boolean(),
    alarm: z.boolean(),
    completedAt: isoTime,
  })
  .meta({ id: 'AuditResult' });

export const audit = z
  .discriminatedUnion('enabled', [
    z.strictObject({ enabled: z.literal(false), note: z.string() }),
    z.strictObject({
      enabled: z.literal(true),
      alarmRule: z.string(),
      current: z.strictObject({ round: count, canaries: count, admitted: count, toAdmit: count }).nullable(),
      latest: auditResult.nullable(),
      history: z.array(z.strictObject({ round: count, epsilonLowerBound: z.number(), epsilonAccounted: epsilon, exceeds: z.boolean(), alarm: z.boolean(), completedAt: isoTime })),
    }),
  ])
  .meta({ id: 'Audit' });

const mechanism = z.strictObject({
  name: z.literal('dp-sgd'),
  noiseMultiplier: z.number(),
  clipNorm: z.number(),
  adaptiveClip: z.strictObject({ targetQuantile: z.number(), learningRate: z.number(), countNoiseStd: z.number(), gradientNoiseMultiplier: z.number() }).nullable(),
  sampleRate: z.number(),
  window: count,
  steps: count,
  stepEveryMessages: count,
  expectedBatchSize: z.number(),
  maxRecordsPerSource: count.nullable(),
  sampling: z.string(),
  clipping: z
    .strictObject({
      perSource: z.boolean().describe('SOURCE_CLIP: the clipped records of one source in a step are summed and clipped to clipNorm again'),
      influence: z
        .strictObject({ matureDays: z.number(), minWeight: z.number() })
        .nullable()
        .describe('INFLUENCE_*: a record counts max(minWeight, account age / matureDays) of a mature account; null when off'),
      note: z.string(),
    })
    .describe('How a step bounds each record and each account; none of it changes the ε charged'),
});

export const budget = z
  .strictObject({
    unit: z.enum(['record', 'source']),
    adjacency: z.string().nullable(),
    delta: z.number().nullable(),
    accountant: z.enum(['rdp', 'prv']).nullable(),
    epsilon: z.strictObject({ limit: z.number(), spent: z.number(), remaining: z.number(), exhausted: z.boolean() }).nullable().describe('null when training is not private — never a made-up ε'),
    replaceOne: z.strictObject({ epsilon: z.number(), delta: z.number() }).optional(),
    epsilonRdp: epsilon,
    epsilonPrv: epsilon,
    epsilonPrvUnavailable: z.string().nullable().optional(),
    mechanism: z.union([z.literal('none'), mechanism]),
    randomness: z.enum(['crypto', 'seeded']).nullable(),
    screening: z.array(z.strictObject({ stage: z.string(), scope: z.literal('cross-record'), note: z.string() })),
    statement: z.string().describe('the guarantee in words'),
    updatedAt: isoTime.nullable(),
    start: z.discriminatedUnion('from', [
      z.strictObject({ from: z.literal('fresh') }),
      z.strictObject({ from: z.literal('public-pretraining'), publicData: z.strictObject({ file: z.string(), sha256: z.string(), records: count }) }),
      z.strictObject({ from: z.literal('model-path') }),
    ]),
    audit: auditResult.nullable().optional().describe('the last audit round, null when off or none completed'),
  })
  .meta({ id: 'Budget', description: 'What is protected and how much of the budget is spent, as of the last durable checkpoint' });

/** Same fields both ways (readonly-ness aside): a field in the type but not the schema, or the reverse, is an error. */
type DeepReadonly<T> = T extends readonly (infer U)[] ? readonly DeepReadonly<U>[] : T extends object ? { readonly [K in keyof T]: DeepReadonly<T[K]> } : T;
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : never) : never;
type Fits<T, S extends z.ZodType> = Same<DeepReadonly<T>, DeepReadonly<z.output<S>>>;
export const privacyTypesFit = {
  budget: true satisfies Fits<Omit<BudgetResponse, 'audit'>, typeof budget>,
  audit: true satisfies Fits<AuditResult, typeof auditResult>,
};
