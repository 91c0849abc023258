/**
 * The checkpoint's worst-case size from the configuration alone, checked against CHECKPOINT_MAX_BYTES at start-up
 * (issue 10 item 5: a stream of maximal records must not grow the checkpoint without a configured bound).
 *
 * What a checkpoint holds (src/checkpoint/encode.ts) and the bound used for each part:
 *  - model: parameters × 4 bytes (float32), once for the trained weights, once more for the served average
 *    (AVERAGE_DECAY > 0) and once more for the update gate's best model (CANARY_FILE);
 *  - DP pool: (WINDOW_STEPS + 1) × STEP_EVERY_RECORDS slots (W steps of S messages, plus the S since the last
 *    step), each the largest record the schema admits as JSON: a text record's string fields re-serialised are
 *    never longer than in the message (JSON.stringify never writes a longer escape than the input needed), so
 *    min(MAX_MESSAGE_BYTES, 6 × TEXT_READ_CHARS (the text as the pool keeps it: cut at ingest) + id and source at 6 bytes per character) — 6 bytes being the
 *    longest escape, `\u0000`; a dense record's numbers can grow ("1e5" → "100000"), so FEATURE_DIM × 25 bytes
 *    (the longest shortest-round-trip double is 24 characters, plus a comma); plus 1 KiB of other fields;
 *  - screens: each stage's state budget (SCREEN_STATE_BYTES or the stage's maxStateBytes), plus the fixed-size
 *    state of outliers / label-consistency;
 *  - dedup: DEDUP_IDS_KEPT × 40 bytes (a 53-bit hash and a message count, as JSON numbers);
 *  - ledger, counts, audit, gate measurements and history: an allowance of LEDGER_ALLOWANCE (their size grows with
 *    the step count only through compacted segments, privacy/segments.ts); the encoder's own check
 *    (CheckpointStore.write) catches anything this misses, visibly, instead of writing it.
 */
import { TayguardError } from '../../core/errors';
import { DETECTOR_DEFAULTS, parseDetectorSettings } from '../../filters/config';
import { MAX_ID_LENGTH } from '../../core/record';
import type { Config } from '../config';
import { stateBudgets } from '../screens';

const MiB = 1024 * 1024;
const SOURCE_CHARS = 256;
const OTHER_FIELDS = 1024;
const DEDUP_ENTRY = 40;
export const LEDGER_ALLOWANCE = 4 * MiB;

export interface CheckpointWorstCase {
  readonly model: number;
  readonly pool: number;
  readonly poolSlots: number;
  readonly slotBytes: number;
  readonly screens: number;
  readonly dedup: number;
  readonly ledger: number;
  readonly total: number;
}

/** The largest pooled record as JSON. */
export function slotBytes(config: Config): number {
  const strings = 6 * (MAX_ID_LENGTH + SOURCE_CHARS);
  if (config.model.kind === 'dense') return config.model.inputDim * 25 + strings + OTHER_FIELDS;
  // The pool keeps the record as parsed: its text already cut to TEXT_READ_CHARS (filters/schema.ts readPart).
  return Math.min(config.limits.maxMessageBytes, 6 * config.limits.textReadChars + strings) + OTHER_FIELDS;
}

/** Trainable parameters of the configured model (undefined with MODEL_PATH: known only once it is loaded). */
export function configModelParams(config: Config): number | undefined {
  if (config.model.path !== undefined) return undefined;
  const { inputDim, hiddenUnits, numClasses } = config.model;
  return hiddenUnits > 0 ? inputDim * hiddenUnits + hiddenUnits + hiddenUnits * numClasses + numClasses : inputDim * numClasses + numClasses;
}

/** The screens' state bound from the configuration (the sidecar uses its chain's own figures). */
export function configScreenStateBytes(config: Config): number {
  const { enabled, stateBytes } = config.screens;
  let settings = DETECTOR_DEFAULTS;
  try {
    settings = parseDetectorSettings(config.screens.settings);
  } catch {
    // Invalid SCREENS_CONFIG is reported by its own check; the defaults give a figure meanwhile.
  }
  const budgets = stateBytes !== undefined ? stateBudgets(stateBytes, enabled) : undefined;
  const own = { trust: settings.trust.maxStateBytes, rateCaps: settings.rateCaps.maxStateBytes, campaign: settings.campaign.maxStateBytes, rareToken: settings.rareToken.maxStateBytes };
  const pick = (k: keyof typeof own) => budgets?.[k] ?? own[k];
  let total = pick('trust');
  if (enabled.includes('rate-caps')) total += pick('rateCaps');
  if (enabled.includes('campaign')) total += pick('campaign');
  if (enabled.includes('rare-token')) total += pick('rareToken');
  // Fixed-size state: per-class feature statistics (a few JSON numbers per dimension and class).
  const fixed = config.model.inputDim * config.model.numClasses * 64;
  if (enabled.includes('outliers')) total += fixed;
  if (enabled.includes('label-consistency')) total += fixed;
  return total;
}

export function worstCaseCheckpoint(config: Config, parts: { modelParams: number; screenStateBytes: number }): CheckpointWorstCase {
  const blocks = 1 + (config.training.averageDecay > 0 ? 1 : 0) + (config.gate ? 1 : 0);
  const model = parts.modelParams * 4 * blocks + 64 * 1024; // + weight specs and identity in the header
  const p = config.privacy;
  const poolSlots = p ? (p.window + 1) * p.stepEveryRecords : 0;
  const slot = slotBytes(config);
  const pool = poolSlots * (slot + 16); // + each slot's remaining-steps counter
  const dedup = config.limits.dedupIdsKept * DEDUP_ENTRY;
  const total = model + pool + parts.screenStateBytes + dedup + LEDGER_ALLOWANCE;
  return { model, pool, poolSlots, slotBytes: slot, screens: parts.screenStateBytes, dedup, ledger: LEDGER_ALLOWANCE, total };
}

const mib = (b: number) => `${(b / MiB).toFixed(1)} MiB`;

export function describeWorstCase(w: CheckpointWorstCase): string {
  return `model ${mib(w.model)} + DP pool ${mib(w.pool)} (${w.poolSlots} slots × ${w.slotBytes} bytes) + screen state ${mib(w.screens)} + dedup ids ${mib(w.dedup)} + ledger/history allowance ${mib(w.ledger)} = ${mib(w.total)}`;
}

/** Refuse a configuration whose worst-case checkpoint exceeds CHECKPOINT_MAX_BYTES, naming what to lower. */
export function checkCheckpointBudget(w: CheckpointWorstCase, budget: number): void {
  if (w.total <= budget) return;
  const knobs: [number, string][] = [
    [w.pool, 'the DP pool: TEXT_READ_CHARS or MAX_MESSAGE_BYTES (bytes per slot; FEATURE_DIM for dense models), WINDOW_STEPS or STEP_EVERY_RECORDS (slots)'],
    [w.screens, 'SCREEN_STATE_BYTES (screen state)'],
    [w.dedup, 'DEDUP_IDS_KEPT (dedup ids)'],
    [w.model, 'the model (TEXT_HASH_DIM, HIDDEN_UNITS; AVERAGE_DECAY=0 drops the averaged copy)'],
  ];
  knobs.sort((a, b) => b[0] - a[0]);
  throw new TayguardError(
    'CHECKPOINT_TOO_LARGE',
    `the worst-case checkpoint (${describeWorstCase(w)}) exceeds CHECKPOINT_MAX_BYTES (${mib(budget)}): raise CHECKPOINT_MAX_BYTES, or lower ${knobs.map(([, k]) => k).join('; or ')}`,
  );
}
