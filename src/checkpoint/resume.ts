/**
 * What a restart takes from the newest checkpoint, read and checked in one place: the checkpoint must belong to
 * the configured model, and its privacy mode must match the configuration (a ledger is never dropped, and a model
 * trained without DP is never given a guarantee after the fact).
 */
import type { Config } from '../config';
import { TayguardError } from '../../core/errors';
import type { OutcomeCounts } from '../counts';
import type { DedupState } from '../dedup';
import type { AuditState } from '../audit/auditor';
import type { DetectorChainState } from '../../filters';
import type { UpdateGateState } from '../../train/gate';
import type { WeightsSnapshot } from '../../middleware/learner';
import type { WeightAverageState } from '../../train/average';
import type { Checkpoint } from './store';
import type { ScreensSection } from './encode';

export interface ModelIdentity {
  readonly task: string;
  readonly inputDim: number;
  readonly numClasses: number;
}

export interface ResumedState {
  readonly seq: number;
  readonly modelVersion: number;
  readonly createdAt: string;
  readonly weights: WeightsSnapshot;
  /** The served moving average stored after the weights (AVERAGE_DECAY), with its layout. */
  readonly average?: { readonly state: WeightAverageState; readonly weights: WeightsSnapshot };
  readonly counts: OutcomeCounts;
  readonly dedup: DedupState;
  /** The trainer's privacy ledger and sampling pool; null for plain SGD. */
  readonly trainer: unknown;
  readonly screens?: DetectorChainState;
  readonly audit?: AuditState;
  readonly gate?: { readonly state: UpdateGateState; readonly best?: WeightsSnapshot };
}

/**
 * The weight bytes of a checkpoint are blocks of one model's size each: the trained weights, then the served
 * average (`extra.average.offset`), then the update gate's best model (`extra.gate.bestOffset`), each present or not.
 */
function weightBlocks(specs: readonly { shape: number[] }[], average: boolean, gateBest: boolean): { size: number; expectedTotal: number } {
  const size = specs.reduce((n, w) => n + 4 * w.shape.reduce((a, b) => a * b, 1), 0);
  return { size, expectedTotal: size * (1 + (average ? 1 : 0) + (gateBest ? 1 : 0)) };
}

export function resumeState(latest: Checkpoint, config: Config, want: ModelIdentity): ResumedState {
  const h = latest.header;
  const dir = config.checkpoint.dir;
  if (h.model.task !== want.task || h.model.inputDim !== want.inputDim || h.model.numClasses !== want.numClasses) {
    throw new TayguardError(
      'CONFIG_INVALID',
      `the checkpoint in ${dir} is for a ${h.model.task} model with ${h.model.inputDim} inputs and ${h.model.numClasses} classes, but the configuration asks for ${want.task}/${want.inputDim}/${want.numClasses}: restore the old settings or use a new CHECKPOINT_DIR`,
    );
  }
  const counts = h.counts as OutcomeCounts;
  if (h.accountant !== null && config.privacy === null) {
    throw new TayguardError('CONFIG_INVALID', `the checkpoint in ${dir} was trained with DP on; turning DP_ENABLED off on the same checkpoint would drop its privacy ledger: use a new CHECKPOINT_DIR`);
  }
  if (h.accountant === null && config.privacy !== null && counts && counts.trained > 0) {
    throw new TayguardError('CONFIG_INVALID', `the checkpoint in ${dir} was trained without DP; its model cannot be given a privacy guarantee now: use a new CHECKPOINT_DIR (or DP_ENABLED=false)`);
  }
  const average = h.extra.average as (WeightAverageState & { offset: number }) | undefined;
  const gate = h.extra.gate as (UpdateGateState & { bestOffset?: number }) | undefined;
  const bestOffset = gate?.bestOffset;
  const { size, expectedTotal } = weightBlocks(h.weightSpecs, Boolean(average), bestOffset !== undefined);
  const section = h.extra.screensSection as ScreensSection | undefined;
  const sectionBytes = section && Array.isArray(section.parts) ? section.parts.reduce((n, p) => n + (Number.isInteger(p?.[1]) && p[1] >= 0 ? p[1] : NaN), 0) : 0;
  const misplaced =
    latest.weights.length !== expectedTotal + sectionBytes ||
    (section !== undefined && section.offset !== expectedTotal) ||
    (average !== undefined && average.offset !== size) ||
    (bestOffset !== undefined && bestOffset !== size * (average ? 2 : 1));
  if (misplaced) {
    throw new TayguardError(
      'CHECKPOINT_CORRUPT',
      `the checkpoint ${latest.file} holds ${latest.weights.length} weight bytes, but its header describes ${expectedTotal + sectionBytes} (model ${size} bytes${average ? `, average at ${String(average.offset)}` : ''}${bestOffset !== undefined ? `, gate best at ${String(bestOffset)}` : ''}${section ? `, screens' state at ${String(section.offset)}` : ''}): point CHECKPOINT_DIR elsewhere to start fresh`,
    );
  }
  const block = (offset: number): WeightsSnapshot => ({ specs: h.weightSpecs, data: latest.weights.subarray(offset, offset + size) });
  return {
    seq: h.seq,
    modelVersion: Number(h.extra.modelVersion ?? 0),
    createdAt: h.createdAt,
    weights: block(0),
    average: average && { state: { updates: average.updates }, weights: block(average.offset) },
    counts,
    dedup: h.dedup as DedupState,
    trainer: h.accountant,
    // Newer checkpoints: the section after the weights; older ones: in the header.
    screens: section ? decodeScreens(latest, section) : (h.extra.screens as DetectorChainState | undefined),
    audit: h.extra.audit as AuditState | undefined,
    gate: gate && { state: gate, best: bestOffset !== undefined ? block(bestOffset) : undefined },
  };
}

/** The screens' state back from its section: one JSON text per stage, at the offsets its header table gives. */
function decodeScreens(latest: Checkpoint, section: ScreensSection): DetectorChainState {
  const out: Record<string, unknown> = {};
  let at = section.offset;
  for (const [name, length] of section.parts) {
    try {
      out[name] = JSON.parse(latest.weights.subarray(at, at + length).toString('utf8'));
    } catch {
      throw new TayguardError('CHECKPOINT_CORRUPT', `the checkpoint ${latest.file} has an unreadable state for screen stage "${name}": point CHECKPOINT_DIR elsewhere to start fresh, or run \`npx tayguard checkpoint repair\``);
    }
    at += length;
  }
  return out as unknown as DetectorChainState;
}
