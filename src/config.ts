/**
 * Configuration from the environment (lightship style): optional input merged with defaults into a readonly
 * config, relationships between settings checked, and one clear line per problem when it fails.
 */
import { z } from 'zod';
import { TayguardError } from '../core/errors';
import { prvEpsilon, rdpEpsilon } from '../privacy/accountants';
import { sourceSampleRate } from '../privacy/budget';
import { adminTokenSchema, opsConfig, opsProblems, opsShape, type OpsConfig } from './config-ops';
import { abuseLabels, witnessConfig, witnessProblems, witnessShape, type PredictOutput, type WitnessConfig } from './config-witness';

const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max);
const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

/** Poisoning screens that SCREENS may enable (filters/); the schema stage always runs first. */
export const SCREEN_NAMES = ['rate-caps', 'echo', 'toxicity', 'witness', 'campaign', 'rare-token', 'near-duplicate', 'rare-feature', 'outliers', 'label-consistency', 'gradient'] as const;
export type ScreenName = (typeof SCREEN_NAMES)[number];

/** Each key is the environment variable that sets it; the README's table documents the same list. */
export const configSchema = z.object({
  KAFKA_BROKERS: z
    .string({ error: 'required: comma-separated host:port list of Kafka brokers (for a local broker: npm run broker)' })
    .min(1)
    .transform((s) => s.split(',').map((b) => b.trim()).filter(Boolean))
    .pipe(z.array(z.string().regex(/^[^:\s]+:\d{1,5}$/, 'each broker must be host:port')).min(1)),
  KAFKA_CLIENT_ID: z.string().min(1).default('tayguard'),
  TOPIC_PREFIX: z.string().regex(/^[A-Za-z0-9._-]{1,200}$/, 'letters, digits, ".", "_" and "-" only').default('tayguard'),
  GROUP_ID: z.string().min(1).default('tayguard'),
  KAFKA_SESSION_TIMEOUT_MS: int(6000, 300000).default(30000),
  PORT: int(0, 65535).default(8080),
  HOST: z.string().min(1).default('0.0.0.0'),
  CHECKPOINT_DIR: z.string().min(1).default('.tayguard/checkpoints'),
  MODEL_DIR: z.string().min(1).optional(),
  CHECKPOINT_EVERY_RECORDS: int(1).default(2000),
  CHECKPOINT_INTERVAL_MS: int(100).default(5000),
  CHECKPOINTS_KEPT: int(1, 1000).default(3),
  /** Published model versions kept in MODEL_DIR (besides those an alias points to). */
  MODEL_VERSIONS_KEPT: int(1, 100_000).default(5),
  QUIET_STEP_INTERVAL_MS: int(0, 86_400_000).default(1000),
  MODEL: z.enum(['text', 'dense']).default('text'),
  MODEL_PATH: z.string().min(1).optional(),
  NUM_CLASSES: int(2, 100000).default(2),
  FEATURE_DIM: int(1, 10_000_000).optional(),
  /** 2^12: as accurate as 2^14 under DP once windows finish, and the DP step is several times cheaper (docs/privacy.md, "How the defaults were chosen"). */
  TEXT_HASH_DIM: int(16, 1 << 22).default(1 << 12),
  HIDDEN_UNITS: int(0, 100000).default(0),
  BATCH_SIZE: int(1, 100000).default(64),
  LEARNING_RATE: z.coerce.number().positive().max(100).optional(),
  AVERAGE_DECAY: z.coerce.number().min(0, 'AVERAGE_DECAY must be in [0, 1): 0 serves the last iterate').lt(1, 'AVERAGE_DECAY must be below 1 (0.9 averages about the last 10 steps)').default(0.95),
  MAX_TEXT_CHARS: int(1).default(20000),
  /**
   * Characters of a text that training, every screen and predictions read (the rest is cut at ingest and counted):
   * 4,000, so a maximal record costs a linear screen under 5× the median mail (the red-team DoS target: at 20,000
   * characters toxicity cost 11×, at 6,000 6.8× — `npm run bench:redteam -- --quick --only dos`), while no
   * SpamAssassin mail as tayguard loads it (src/data/spam.ts) is longer than 3,000.
   */
  TEXT_READ_CHARS: int(1).default(4000),
  MAX_MESSAGE_BYTES: int(64).default(256 * 1024),
  DEDUP_IDS_KEPT: int(0).default(200000),
  HTTP_BODY_LIMIT: z.string().regex(/^\d+(b|kb|mb)$/i, 'like 1mb or 100kb').default('1mb'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  SEED: z.string().min(1).optional(),
  SCREENS: z
    .string()
    .transform((v) => (v.trim() === 'none' ? [] : v.split(',').map((x) => x.trim()).filter(Boolean)))
    .pipe(z.array(z.enum(SCREEN_NAMES, { error: `each screen must be one of ${SCREEN_NAMES.join(', ')} (or SCREENS=none)` })))
    .default(['echo', 'toxicity']),
  SCREENS_CONFIG: z
    .string()
    .transform((v, ctx) => {
      try {
        return JSON.parse(v) as Record<string, unknown>;
      } catch {
        ctx.addIssue({ code: 'custom', message: 'must be a JSON object of detector settings (see README "Poisoning screens")' });
        return z.NEVER;
      }
    })
    .optional(),
  /** Checkpoint bytes all screens' state may take, shared among the stateful ones (src/screens.ts); unset: each stage's default. */
  SCREEN_STATE_BYTES: int(1 << 20, 512 * 1024 * 1024).optional(),
  ADMIN_TOKEN: adminTokenSchema.optional(),
  OPERATOR_AUTH: z.enum(['token', 'open']).optional(),
  CANARY_FILE: z.string().min(1).optional(),
  AUDIT_CANARIES: int(0, 100000).default(0),
  AUDIT_EVERY_RECORDS: int(1, 100000).default(10),
  GATE_LOSS_TOLERANCE: z.coerce.number().min(0).default(0.1),
  GATE_ACCURACY_TOLERANCE: z.coerce.number().min(0).max(1).default(0.05),
  ROLLBACK_ACCURACY_DROP: z.coerce.number().gt(0).max(1).default(0.05),
  ROLLBACK_AFTER_JUDGEMENTS: int(1, 1000).optional(),
  /** The earlier name of ROLLBACK_AFTER_JUDGEMENTS (rollback was judged at checkpoints then); still read. */
  ROLLBACK_AFTER_CHECKPOINTS: int(1, 1000).optional(),
  GATE_NOISE_QUANTILE: z.coerce.number().gt(0.5).max(1).default(0.95),
  ROLLBACK_NOISE_Z: z.coerce.number().min(0).max(20).default(5),
  ROLLBACK_EVERY_STEPS: int(1, 100000).default(8),
  DP_ENABLED: bool.default(true),
  EPSILON_LIMIT: z.coerce.number().positive().max(1000).default(8),
  DELTA: z.coerce.number().gt(0).lt(1).default(1e-6),
  PRIVACY_UNIT: z.enum(['record', 'source']).default('record'),
  /** PRIVACY_UNIT=record: clip each source's sum of clipped records per step to C too (docs/privacy.md "Per-source influence"). */
  SOURCE_CLIP: z.enum(['on', 'off']).default('on'),
  /**
   * Influence by account age (train/influence.ts): a record's clipped gradient counts max(w_min, age/A) of a mature
   * account's, A = INFLUENCE_MATURE_DAYS. 30 days: the "new account" horizon abuse systems commonly use (an account
   * under a month old is new), long enough that mass-created accounts are not aged by the time a campaign runs, short
   * enough that an honest new user reaches full weight within a month. w_min = 0.1: a brand-new account pulls a tenth
   * as hard; INFLUENCE_MIN_WEIGHT=1 turns the weighting off. Acts only on records with sourceMeta.createdAt.
   */
  INFLUENCE_MATURE_DAYS: z.coerce.number().positive().max(3650).default(30),
  INFLUENCE_MIN_WEIGHT: z.coerce.number().min(0).max(1).default(0.1),
  /** σ = 2.24 with q = 0.2 and W = 50: ε = 3.73 by RDP (δ = 1e-6), the same as the old q = 0.05, σ = 1 — four times the batch at the same privacy. */
  NOISE_MULTIPLIER: z.coerce.number().positive().max(1000).default(2.24),
  CLIP_NORM: z.coerce.number().positive().max(1e6).default(1.0),
  ADAPTIVE_CLIP: bool.default(false),
  CLIP_TARGET_QUANTILE: z.coerce.number().gt(0).lt(1).default(0.5),
  CLIP_LEARNING_RATE: z.coerce.number().positive().max(10).default(0.2),
  CLIP_COUNT_NOISE: z.coerce.number().positive().optional(),
  SAMPLE_RATE: z.coerce.number().gt(0).max(1).default(0.2),
  WINDOW_STEPS: int(1, 100000).default(50),
  STEP_EVERY_RECORDS: int(1, 100000).optional(),
  SOURCE_MAX_RECORDS: int(1, 100000).default(4),
  /** Unset: PRV for a new ledger, the checkpoint's accountant for an existing one. */
  ACCOUNTANT: z.enum(['rdp', 'prv']).optional(),
  DP_SEED: z.string().min(1).optional(),
  FROM_BEGINNING: bool.default(true),
  ...opsShape,
  ...witnessShape,
});

type Parsed = z.infer<typeof configSchema>;

export interface Config {
  readonly kafka: { readonly brokers: readonly string[]; readonly clientId: string; readonly groupId: string; readonly fromBeginning: boolean; readonly sessionTimeoutMs: number };
  /** `models` announces each published version (name, path, sha256, ε, time). */
  readonly topics: { readonly records: string; readonly quarantine: string; readonly models: string };
  readonly http: {
    readonly port: number;
    readonly host: string;
    readonly bodyLimit: string;
    readonly adminToken?: string;
    /**
     * 'token': the operator surface (/metrics, the detail of GET /v1/model, the operator half of GET /v1/history, the admin API) needs the admin
     * token; 'open': only the admin API does. Default 'token' when ADMIN_TOKEN is set (docs/privacy.md,
     * "what is public").
     */
    readonly operatorAuth: 'token' | 'open';
    /** What POST /v1/predict returns (PREDICT_OUTPUT; README "What an attacker can and cannot learn"). */
    readonly predictOutput: { readonly mode: PredictOutput; readonly step: number };
  };
  readonly checkpoint: {
    readonly dir: string;
    readonly modelDir: string;
    readonly everyRecords: number;
    readonly intervalMs: number;
    readonly kept: number;
    readonly versionsKept: number;
    /** On a quiet stream, one DP step per this many ms while any message is inside its window; 0 = never. */
    readonly quietStepIntervalMs: number;
  };
  readonly model: {
    readonly kind: 'text' | 'dense';
    readonly path?: string;
    readonly numClasses: number;
    /** Input width: FEATURE_DIM for dense, TEXT_HASH_DIM for text. */
    readonly inputDim: number;
    readonly hiddenUnits: number;
  };
  readonly training: {
    readonly batchSize: number;
    readonly learningRate: number;
    readonly seed?: string;
    /** Serve and publish an exponential moving average of the weights with this decay; 0 = the last iterate. */
    readonly averageDecay: number;
  };
  readonly limits: {
    readonly maxTextChars: number;
    /** The first this many characters of a text are read (min of TEXT_READ_CHARS and MAX_TEXT_CHARS). */
    readonly textReadChars: number;
    readonly maxMessageBytes: number;
    readonly dedupIdsKept: number;
  };
  /**
   * Enabled poisoning screens, in SCREENS order, and their settings (filters/config.ts schema). Unset SCREENS is
   * `echo,toxicity`, plus `witness` when trusted data is configured. `abuseLabels` (ABUSE_LABELS): the classes
   * whose label says the content is bad, which echo and toxicity let pass.
   */
  readonly screens: { readonly enabled: readonly ScreenName[]; readonly settings: Record<string, unknown>; readonly abuseLabels: readonly number[]; readonly stateBytes?: number };
  /** The witness's trusted data (src/witness.ts); null when none is configured (the witness screen is off). */
  readonly witness: WitnessConfig | null;
  /** The update gate; null without CANARY_FILE (no trusted canary set, nothing to gate on). */
  readonly gate: {
    readonly canaryFile: string;
    readonly lossTolerance: number;
    readonly accuracyTolerance: number;
    readonly rollbackDrop: number;
    readonly rollbackAfter: number;
    readonly noiseQuantile: number;
    readonly rollbackNoiseZ: number;
    readonly judgeEverySteps: number;
  } | null;
  /** The continuous membership-inference audit; null when AUDIT_CANARIES=0. */
  readonly audit: { readonly canaries: number; readonly every: number } | null;
  /** null when DP_ENABLED=false: training is then plain SGD and the budget status says mechanism "none". */
  readonly privacy: {
    readonly epsilonLimit: number;
    readonly delta: number;
    readonly unit: 'record' | 'source';
    /** SOURCE_CLIP: nested per-source clipping under PRIVACY_UNIT=record (train/privatize.ts). */
    readonly sourceClip: boolean;
    /** INFLUENCE_*: per-record weight from the account's age (train/influence.ts); null when INFLUENCE_MIN_WEIGHT=1. */
    readonly influence: { readonly matureMs: number; readonly minWeight: number } | null;
    readonly noiseMultiplier: number;
    readonly clipNorm: number;
    /** Andrew et al. 2021: the clip norm follows a quantile of the norms; null = fixed CLIP_NORM. */
    readonly adaptiveClip: { readonly targetQuantile: number; readonly learningRate: number; readonly countNoiseStd: number } | null;
    readonly sampleRate: number;
    readonly window: number;
    readonly stepEveryRecords: number;
    readonly maxRecordsPerSource: number;
    /**
     * Decides with this accountant; undefined = PRV for a new ledger (tighter: 3.21 vs RDP's 3.73 at the
     * defaults), or the accountant a checkpoint's ledger was kept with.
     */
    readonly accountant?: 'rdp' | 'prv';
    readonly seed?: string;
  } | null;
  readonly logLevel: Parsed['LOG_LEVEL'];
  /** Guards, budgets and limits (src/config-ops.ts). */
  readonly ops: OpsConfig;
}

export type Env = Record<string, string | undefined>;

/**
 * Learning rates chosen by `npm run bench:utility -- --tune` on validation splits carved from the training data
 * (tuning seeds only; docs/privacy.md, "How the defaults were chosen"). Linear models on L2-normalised hashed text
 * want large steps (15 plain, once its loss stopped saturating; 10 under DP with the smaller steps S = 32 of the
 * third round, where 15 was as accurate but less fresh); dense pixels want 5 under DP
 * (the noisy average of clipped gradients is small) and 0.5 without; models with hidden layers keep 0.5 (not tuned).
 */
export function defaultLearningRate(model: 'text' | 'dense', hiddenUnits: number, dp: boolean): number {
  if (hiddenUnits > 0) return 0.5;
  if (model === 'text') return dp ? 10 : 15;
  return dp ? 5 : 0.5;
}

/**
 * S, the messages between DP steps, when STEP_EVERY_RECORDS is unset. Chosen like the learning rates (third
 * tuning round, docs/privacy.md): for hashed text, S = 32 makes the model about twice as fresh (a record's first
 * expected use comes after S/q messages, the served average's time constant is S/(1 − d) messages) at the same ε
 * and within half a point of S = 64's steady accuracy; dense pixels lost 1.3 points at 32, so they keep BATCH_SIZE.
 */
export function defaultStepEvery(model: 'text' | 'dense', hiddenUnits: number, batchSize: number): number {
  return model === 'text' && hiddenUnits === 0 ? 32 : batchSize;
}

function problems(error: z.ZodError): string[] {
  return error.issues.map((i) => `${i.path.join('.') || '(config)'}: ${i.message}`);
}

/** Parse and check the environment; throws CONFIG_INVALID listing every problem, one per line. */
export function loadConfig(env: Env = process.env): Config {
  const input: Env = {};
  for (const key of Object.keys(configSchema.shape)) {
    const value = env[key];
    if (value !== undefined && value !== '') input[key] = value;
  }
  const result = configSchema.safeParse(input);
  // Rules between settings are checked on the raw input too, so one run reports every problem at once.
  const issues = result.success ? [] : problems(result.error);
  if (input.MODEL === 'dense' && input.FEATURE_DIM === undefined && input.MODEL_PATH === undefined) {
    issues.push('FEATURE_DIM: required when MODEL=dense (the length of every record\'s "features" array)');
  }
  if (!result.success) throw configError(issues);
  const c = result.data;
  if (c.ROLLBACK_AFTER_JUDGEMENTS !== undefined && c.ROLLBACK_AFTER_CHECKPOINTS !== undefined && c.ROLLBACK_AFTER_JUDGEMENTS !== c.ROLLBACK_AFTER_CHECKPOINTS) {
    issues.push(`ROLLBACK_AFTER_CHECKPOINTS (${c.ROLLBACK_AFTER_CHECKPOINTS}) is the old name of ROLLBACK_AFTER_JUDGEMENTS (${c.ROLLBACK_AFTER_JUDGEMENTS}): set only ROLLBACK_AFTER_JUDGEMENTS`);
  }
  if (c.OPERATOR_AUTH === 'token' && c.ADMIN_TOKEN === undefined) {
    issues.push('OPERATOR_AUTH: "token" needs ADMIN_TOKEN (at least 16 characters, e.g. openssl rand -hex 24)');
  }
  if (c.CHECKPOINT_EVERY_RECORDS < c.BATCH_SIZE) {
    issues.push(`CHECKPOINT_EVERY_RECORDS (${c.CHECKPOINT_EVERY_RECORDS}) must be at least BATCH_SIZE (${c.BATCH_SIZE})`);
  }
  if (c.DP_ENABLED) {
    // A record is exposed to exactly WINDOW_STEPS steps (privacy/sampler.ts); a source with up to k records in
    // the window joins a step with probability 1-(1-q)^k. If one window alone passes the limit, no record (or
    // no source) could ever be trained on — say so now, with the settings that fix it.
    const source = c.PRIVACY_UNIT === 'source';
    const rate = source ? sourceSampleRate(c.SAMPLE_RATE, c.SOURCE_MAX_RECORDS) : c.SAMPLE_RATE;
    const window = [{ sampleRate: rate, noiseMultiplier: c.NOISE_MULTIPLIER, steps: c.WINDOW_STEPS }];
    // The decision accountant's figure (PRV unless ACCOUNTANT=rdp or source mode; RDP where PRV's grid is too large).
    let eps = rdpEpsilon(window, c.DELTA).epsilon;
    if (source && c.ACCOUNTANT === 'prv') {
      issues.push('ACCOUNTANT: PRIVACY_UNIT=source decides with RDP (the per-source filter of Feldman & Zrnic 2021 is proven for RDP): unset ACCOUNTANT or set it to rdp');
    }
    if (c.ACCOUNTANT !== 'rdp' && !source) {
      try {
        eps = prvEpsilon(window, c.DELTA).epsilon;
      } catch {
        // keep the RDP bound
      }
    }
    if (eps > c.EPSILON_LIMIT) {
      issues.push(
        `EPSILON_LIMIT (${c.EPSILON_LIMIT}) is below the ε of one ${source ? 'source' : 'record'}'s window (${eps.toFixed(3)} with SAMPLE_RATE=${c.SAMPLE_RATE}${source ? `, SOURCE_MAX_RECORDS=${c.SOURCE_MAX_RECORDS}` : ''}, NOISE_MULTIPLIER=${c.NOISE_MULTIPLIER}, WINDOW_STEPS=${c.WINDOW_STEPS}, DELTA=${c.DELTA}): raise NOISE_MULTIPLIER (npx tayguard noise --target-epsilon ${c.EPSILON_LIMIT} --sample-rate ${Number(rate.toPrecision(6))} --steps ${c.WINDOW_STEPS} --delta ${c.DELTA} --accountant ${c.ACCOUNTANT ?? (source ? 'rdp' : 'prv')}) or lower SAMPLE_RATE/WINDOW_STEPS`,
      );
    }
  }
  // Adaptive clipping releases a noisy count of unclipped examples; its noise σ_b must satisfy 2σ_b > σ so that
  // the gradient's noise can be raised to keep the whole step at σ (Andrew et al. 2021). Default σ_b = batch/20.
  const stepEvery = c.STEP_EVERY_RECORDS ?? defaultStepEvery(c.MODEL, c.HIDDEN_UNITS, c.BATCH_SIZE);
  const expectedBatch = c.SAMPLE_RATE * c.WINDOW_STEPS * stepEvery;
  const countNoise = c.CLIP_COUNT_NOISE ?? expectedBatch / 20;
  if (c.DP_ENABLED && c.ADAPTIVE_CLIP && !(2 * countNoise > c.NOISE_MULTIPLIER)) {
    issues.push(`CLIP_COUNT_NOISE (${countNoise}) must exceed NOISE_MULTIPLIER/2 (${c.NOISE_MULTIPLIER / 2}) for adaptive clipping to fit in the same budget`);
  }
  issues.push(...opsProblems(c));
  const witness = witnessConfig(c, c.CANARY_FILE, input.SCREENS === undefined ? undefined : c.SCREENS);
  // With trusted data the witness is part of the default screens (it judges text and dense records alike).
  const screens: ScreenName[] = input.SCREENS === undefined && witness !== null ? [...c.SCREENS, 'witness'] : c.SCREENS;
  issues.push(...witnessProblems(c, { numClasses: c.NUM_CLASSES, modelPath: c.MODEL_PATH, screens, witness }));
  if (issues.length > 0) throw configError(issues);
  const prefix = c.TOPIC_PREFIX;
  return Object.freeze({
    kafka: { brokers: c.KAFKA_BROKERS, clientId: c.KAFKA_CLIENT_ID, groupId: c.GROUP_ID, fromBeginning: c.FROM_BEGINNING, sessionTimeoutMs: c.KAFKA_SESSION_TIMEOUT_MS },
    topics: { records: `${prefix}.records`, quarantine: `${prefix}.quarantine`, models: `${prefix}.models` },
    http: { port: c.PORT, host: c.HOST, bodyLimit: c.HTTP_BODY_LIMIT, adminToken: c.ADMIN_TOKEN, operatorAuth: c.OPERATOR_AUTH ?? (c.ADMIN_TOKEN ? 'token' : 'open'), predictOutput: { mode: c.PREDICT_OUTPUT, step: c.PREDICT_PROBABILITY_STEP } },
    checkpoint: {
      dir: c.CHECKPOINT_DIR,
      modelDir: c.MODEL_DIR ?? `${c.CHECKPOINT_DIR.replace(/\/+$/, '')}/models`,
      everyRecords: c.CHECKPOINT_EVERY_RECORDS,
      intervalMs: c.CHECKPOINT_INTERVAL_MS,
      quietStepIntervalMs: c.QUIET_STEP_INTERVAL_MS,
      kept: c.CHECKPOINTS_KEPT,
      versionsKept: c.MODEL_VERSIONS_KEPT,
    },
    model: {
      kind: c.MODEL,
      path: c.MODEL_PATH,
      numClasses: c.NUM_CLASSES,
      inputDim: c.MODEL === 'dense' ? (c.FEATURE_DIM ?? 0) : c.TEXT_HASH_DIM,
      hiddenUnits: c.HIDDEN_UNITS,
    },
    // Hashed-text logistic regression sees L2-normalised sparse rows and needs a larger step than an MLP
    // (measured on SpamAssassin: one pass at 0.5 → 81% held-out accuracy, at 5 → 96%).
    training: { batchSize: c.BATCH_SIZE, learningRate: c.LEARNING_RATE ?? defaultLearningRate(c.MODEL, c.HIDDEN_UNITS, c.DP_ENABLED),
      seed: c.SEED,
      averageDecay: c.AVERAGE_DECAY,
    },
    limits: { maxTextChars: c.MAX_TEXT_CHARS, textReadChars: Math.min(c.TEXT_READ_CHARS, c.MAX_TEXT_CHARS), maxMessageBytes: c.MAX_MESSAGE_BYTES, dedupIdsKept: c.DEDUP_IDS_KEPT },
    screens: { enabled: screens, settings: c.SCREENS_CONFIG ?? {}, abuseLabels: abuseLabels(c, c.NUM_CLASSES), ...(c.SCREEN_STATE_BYTES !== undefined ? { stateBytes: c.SCREEN_STATE_BYTES } : {}) },
    witness,
    audit: c.AUDIT_CANARIES > 0 ? { canaries: c.AUDIT_CANARIES, every: c.AUDIT_EVERY_RECORDS } : null,
    gate: c.CANARY_FILE
      ? {
          canaryFile: c.CANARY_FILE,
          lossTolerance: c.GATE_LOSS_TOLERANCE,
          accuracyTolerance: c.GATE_ACCURACY_TOLERANCE,
          rollbackDrop: c.ROLLBACK_ACCURACY_DROP,
          rollbackAfter: c.ROLLBACK_AFTER_JUDGEMENTS ?? c.ROLLBACK_AFTER_CHECKPOINTS ?? 2,
          noiseQuantile: c.GATE_NOISE_QUANTILE,
          rollbackNoiseZ: c.ROLLBACK_NOISE_Z,
          judgeEverySteps: c.ROLLBACK_EVERY_STEPS,
        }
      : null,
    privacy: c.DP_ENABLED
      ? {
          epsilonLimit: c.EPSILON_LIMIT,
          delta: c.DELTA,
          unit: c.PRIVACY_UNIT,
          sourceClip: c.SOURCE_CLIP === 'on',
          influence: c.INFLUENCE_MIN_WEIGHT < 1 ? { matureMs: c.INFLUENCE_MATURE_DAYS * 86_400_000, minWeight: c.INFLUENCE_MIN_WEIGHT } : null,
          noiseMultiplier: c.NOISE_MULTIPLIER,
          clipNorm: c.CLIP_NORM,
          adaptiveClip: c.ADAPTIVE_CLIP
            ? { targetQuantile: c.CLIP_TARGET_QUANTILE, learningRate: c.CLIP_LEARNING_RATE, countNoiseStd: countNoise }
            : null,
          sampleRate: c.SAMPLE_RATE,
          window: c.WINDOW_STEPS,
          stepEveryRecords: stepEvery,
          maxRecordsPerSource: c.SOURCE_MAX_RECORDS,
          ...(c.ACCOUNTANT !== undefined ? { accountant: c.ACCOUNTANT } : {}),
          seed: c.DP_SEED,
        }
      : null,
    logLevel: c.LOG_LEVEL,
    ops: opsConfig(c),
  });
}

function configError(lines: string[]): TayguardError {
  return new TayguardError(
    'CONFIG_INVALID',
    `invalid configuration (fix these environment variables; see README "Configuration"):\n  ${lines.join('\n  ')}`,
  );
}
