/**
 * Operational settings added for issue 14 (numeric guards, offset resets, readiness, byte budgets, serving
 * limits). Kept apart from src/config.ts so that the privacy settings there can change independently; config.ts
 * spreads `opsShape` into its schema and `opsConfig()` into the frozen Config as `config.ops`.
 */
import { z } from 'zod';

const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max);

export const opsShape = {
  /**
   * Largest |feature| a dense record may carry. float32 overflows at 3.4e38: a feature of 1e20 squared in a
   * gradient norm is already Infinity, so the default keeps a wide margin (1e6² × 10⁷ dims is still finite).
   */
  MAX_FEATURE_ABS: z.coerce.number().positive().max(1e30).default(1e6),
  /** What to do when the broker's offsets are below the checkpoint's watermark (topic recreated, new cluster). */
  OFFSET_RESET_POLICY: z.enum(['fail', 'rebase']).default('fail'),
  /** /readyz turns 503 when no broker request has succeeded for this long. */
  READY_BROKER_TIMEOUT_MS: int(1000, 600_000).default(10_000),
  /**
   * Bytes of originals the admin cache of recent quarantined records keeps in memory (oldest dropped first). Only
   * a cache for releases by original key: the admin list and releases by coordinates read the quarantine topic.
   */
  QUARANTINE_INDEX_BYTES: int(0, 1 << 30).default(4 * 1024 * 1024),
  /** Originals larger than this are stored truncated (with their sha256) in quarantine envelopes and the index. */
  QUARANTINE_RECORD_BYTES: int(1024, 16 * 1024 * 1024).default(64 * 1024),
  /** A record's `ts` further than this from its Kafka message timestamp is clamped (src/event-time.ts). */
  MAX_CLOCK_SKEW_MS: int(0, 30 * 86_400_000).default(5 * 60_000),
  /** Records one POST /v1/predict may carry. */
  PREDICT_MAX_RECORDS: int(1, 100_000).default(1000),
  /** Records per second each client may ask predictions for (token bucket over one second; 0 = no limit). */
  PREDICT_RATE_LIMIT: int(0).default(2000),
  /**
   * Largest checkpoint file, in bytes (src/checkpoint/budget.ts). Start-up refuses a configuration whose worst case
   * exceeds it; a checkpoint that encodes larger fails visibly (/readyz, tayguard_checkpoint_failures_total) and is
   * not written. 384 MiB: the defaults' worst case (every pool slot a maximal record) is ~245 MiB for text, and the
   * checkpoint header, one JSON string holding the pool, must stay below V8's string limit (2^29 − 24 UTF-16 units,
   * issue 10), hence also the 512 MiB ceiling: a file within it has a header below that limit.
   */
  CHECKPOINT_MAX_BYTES: int(1 << 20, 512 * 1024 * 1024).default(384 * 1024 * 1024),
  HTTP_HEADERS_TIMEOUT_MS: int(1000, 600_000).default(10_000),
  HTTP_REQUEST_TIMEOUT_MS: int(1000, 600_000).default(15_000),
  HTTP_KEEPALIVE_TIMEOUT_MS: int(100, 600_000).default(5_000),
};

type OpsInput = { [K in keyof typeof opsShape]: z.infer<(typeof opsShape)[K]> };

export interface OpsConfig {
  readonly maxFeatureAbs: number;
  readonly maxClockSkewMs: number;
  readonly offsetResetPolicy: 'fail' | 'rebase';
  readonly readyBrokerTimeoutMs: number;
  readonly quarantineIndexBytes: number;
  readonly quarantineRecordBytes: number;
  readonly predictMaxRecords: number;
  readonly predictRateLimit: number;
  /** CHECKPOINT_MAX_BYTES. */
  readonly checkpointBudgetBytes: number;
  readonly http: { readonly headersTimeoutMs: number; readonly requestTimeoutMs: number; readonly keepAliveTimeoutMs: number };
}

export function opsConfig(c: OpsInput): OpsConfig {
  return {
    maxFeatureAbs: c.MAX_FEATURE_ABS,
    maxClockSkewMs: c.MAX_CLOCK_SKEW_MS,
    offsetResetPolicy: c.OFFSET_RESET_POLICY,
    readyBrokerTimeoutMs: c.READY_BROKER_TIMEOUT_MS,
    quarantineIndexBytes: c.QUARANTINE_INDEX_BYTES,
    quarantineRecordBytes: c.QUARANTINE_RECORD_BYTES,
    predictMaxRecords: c.PREDICT_MAX_RECORDS,
    predictRateLimit: c.PREDICT_RATE_LIMIT,
    checkpointBudgetBytes: c.CHECKPOINT_MAX_BYTES,
    http: { headersTimeoutMs: c.HTTP_HEADERS_TIMEOUT_MS, requestTimeoutMs: c.HTTP_REQUEST_TIMEOUT_MS, keepAliveTimeoutMs: c.HTTP_KEEPALIVE_TIMEOUT_MS },
  };
}

/** Checks between ops settings, reported with config.ts's other problems. */
export function opsProblems(c: OpsInput): string[] {
  const out: string[] = [];
  if (c.HTTP_HEADERS_TIMEOUT_MS > c.HTTP_REQUEST_TIMEOUT_MS) {
    out.push(`HTTP_HEADERS_TIMEOUT_MS (${c.HTTP_HEADERS_TIMEOUT_MS}) must not exceed HTTP_REQUEST_TIMEOUT_MS (${c.HTTP_REQUEST_TIMEOUT_MS})`);
  }
  if (c.PREDICT_RATE_LIMIT > 0 && c.PREDICT_RATE_LIMIT < c.PREDICT_MAX_RECORDS) {
    out.push(`PREDICT_RATE_LIMIT (${c.PREDICT_RATE_LIMIT}) must be 0 (off) or at least PREDICT_MAX_RECORDS (${c.PREDICT_MAX_RECORDS}), or a full request could never be answered`);
  }
  return out;
}

/** ADMIN_TOKEN: 16+ characters that are not blank; whitespace around it is a copy-paste accident, refused. */
export const adminTokenSchema = z
  .string()
  .min(16, 'at least 16 characters (e.g. openssl rand -hex 24)')
  .refine((v) => v.trim().length > 0, 'must not be blank (e.g. openssl rand -hex 24)')
  .refine((v) => v.trim() === v, 'must not start or end with whitespace');
