/**
 * Settings of the defences against an attacker who has read the code (issue 10): the witness's trusted data
 * (filters/witness.ts, src/witness.ts), the classes whose label marks content as bad (echo, toxicity and the
 * witness judge the label's direction) and what POST /v1/predict reveals. Kept apart from src/config.ts like
 * config-ops.ts: config.ts spreads `witnessShape` into its schema and reads the helpers below.
 */
import { z } from 'zod';

const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max);
const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

export const PREDICT_OUTPUTS = ['probabilities', 'coarse', 'label'] as const;
export type PredictOutput = (typeof PREDICT_OUTPUTS)[number];

export const witnessShape = {
  /** JSONL of public or consented labelled records (the `tayguard pretrain --public` format) the witness trains on. */
  WITNESS_DATA: z.string().min(1).optional(),
  /** A model from `tayguard pretrain` to start the witness from (never the MODEL_PATH the sidecar serves). */
  WITNESS_MODEL_PATH: z.string().min(1).optional(),
  /** Train the witness on the update gate's trusted canaries (CANARY_FILE) too. */
  WITNESS_CANARIES: bool.default(true),
  // 6: on SpamAssassin (1,000 trusted mails, lr 15) 3 passes gave a less accurate witness (95.6% vs 97.2% held out) that caught fewer padded mails.
  WITNESS_EPOCHS: int(1, 1000).default(6),
  /**
   * Classes whose label says "this content is bad" (comma-separated, or `none`). Unset: `1` when NUM_CLASSES=2
   * (the usual convention of a binary detector: 1 = spam, toxic, fraud), none otherwise.
   */
  ABUSE_LABELS: z
    .string()
    .transform((v) => (v.trim() === 'none' ? [] : v.split(',').map((x) => x.trim()).filter(Boolean)))
    .pipe(z.array(z.string().regex(/^\d+$/, 'each label is a class number (0, 1, …), or ABUSE_LABELS=none')).transform((a) => a.map(Number)))
    .optional(),
  /** probabilities (default) | coarse (rounded to PREDICT_PROBABILITY_STEP) | label (argmax only). */
  PREDICT_OUTPUT: z.enum(PREDICT_OUTPUTS, { error: `one of ${PREDICT_OUTPUTS.join(', ')}` }).default('probabilities'),
  PREDICT_PROBABILITY_STEP: z.coerce.number().gt(0, 'PREDICT_PROBABILITY_STEP is a step in (0, 0.5], e.g. 0.1').max(0.5, 'PREDICT_PROBABILITY_STEP is a step in (0, 0.5], e.g. 0.1').default(0.1),
};

type WitnessInput = z.infer<z.ZodObject<typeof witnessShape>>;

/** Where the witness's trusted data comes from; null when none is configured (the witness screen is then off). */
export interface WitnessConfig {
  readonly dataFile?: string;
  readonly modelPath?: string;
  /** The update gate's canaries (CANARY_FILE), when WITNESS_CANARIES is on. */
  readonly canaryFile?: string;
  readonly epochs: number;
  /**
   * SCREENS names `witness` explicitly: too little trusted data then stops start-up. When the witness is only on by
   * default, too little data turns it off with a warning (an old CANARY_FILE of 40 records must not stop a sidecar).
   */
  readonly required: boolean;
}

export function witnessConfig(c: WitnessInput, canaryFile: string | undefined, screensNamed: readonly string[] | undefined): WitnessConfig | null {
  const canaries = c.WITNESS_CANARIES ? canaryFile : undefined;
  if (c.WITNESS_DATA === undefined && c.WITNESS_MODEL_PATH === undefined && canaries === undefined) return null;
  return {
    ...(c.WITNESS_DATA !== undefined ? { dataFile: c.WITNESS_DATA } : {}),
    ...(c.WITNESS_MODEL_PATH !== undefined ? { modelPath: c.WITNESS_MODEL_PATH } : {}),
    ...(canaries !== undefined ? { canaryFile: canaries } : {}),
    epochs: c.WITNESS_EPOCHS,
    required: screensNamed?.includes('witness') ?? false,
  };
}

export function abuseLabels(c: WitnessInput, numClasses: number): number[] {
  return c.ABUSE_LABELS ?? (numClasses === 2 ? [1] : []);
}

/** Why and how to turn the witness on, for `tayguard config check` and the start-up log. */
export const WITNESS_OFF =
  'no trusted data is configured, so the witness screen is off and label flips are judged by no model the attacker cannot query: set WITNESS_DATA to a JSONL file of public or consented labelled records (the `tayguard pretrain --public` format) and/or CANARY_FILE (the update gate\'s trusted canaries), or WITNESS_MODEL_PATH to a `tayguard pretrain` output; it is then part of the default SCREENS';

/** Rules between these settings and the rest (one line per problem). */
export function witnessProblems(c: WitnessInput, o: { numClasses: number; modelPath?: string; screens: readonly string[]; witness: WitnessConfig | null }): string[] {
  const problems: string[] = [];
  for (const l of c.ABUSE_LABELS ?? []) {
    if (l >= o.numClasses) problems.push(`ABUSE_LABELS: ${l} is not a class (NUM_CLASSES=${o.numClasses}: classes 0 to ${o.numClasses - 1}), or ABUSE_LABELS=none`);
  }
  if (o.screens.includes('witness') && o.witness === null) problems.push(`SCREENS: witness needs trusted data: ${WITNESS_OFF.slice(WITNESS_OFF.indexOf('set '))}`);
  if (c.WITNESS_MODEL_PATH !== undefined && o.modelPath !== undefined && c.WITNESS_MODEL_PATH === o.modelPath) {
    problems.push('WITNESS_MODEL_PATH: it is MODEL_PATH, the model /v1/predict serves (as version 0): a witness the attacker can query is an oracle. Pretrain a separate witness (tayguard pretrain --public … --out witness/) or use WITNESS_DATA');
  }
  return problems;
}
