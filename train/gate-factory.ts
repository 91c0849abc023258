/** The update gate from config: its trusted canary set (a JSONL file in the record contract, checked like the stream), metrics and alerts. */
import { readFileSync } from 'node:fs';
import { TayguardError } from '../core/errors';
import { parseRecord } from '../filters/schema';
import type { Learner } from '../middleware/learner';
import { UpdateGate, type Canaries, type ServedModel, type UpdateGateSettings } from './gate';
import { dpWeightNoise } from './gate-noise';
import type { SourceRegistry } from '../filters/trust';
import type { TrainMetrics } from './types';
import type { Logger } from 'pino';
import type { TrainingRecord } from '../core/record';

/** What the gate's factory reads of the service's configuration (src/config.ts `Config` has these fields). */
export interface GateConfig {
  readonly model: { readonly numClasses: number; readonly kind: 'text' | 'dense' };
  readonly limits: { readonly maxTextChars: number; readonly textReadChars?: number; readonly maxMessageBytes: number };
  readonly gate: (UpdateGateSettings & { readonly canaryFile: string }) | null;
  /** With DP on, the gate's rollback noise comes from the DP noise scale (train/gate-noise.ts). */
  readonly privacy?: { readonly noiseMultiplier: number; readonly clipNorm: number; readonly sampleRate: number; readonly window: number; readonly stepEveryRecords: number } | null;
  readonly training?: { readonly learningRate: number };
}

/**
 * The gate's settings with the DP noise scale filled in from the configuration, η·σ·C/(q·W·S): a number the stream
 * cannot move, unlike the judged scores it replaces as the rollback margin's yardstick.
 */
export function gateSettings(config: GateConfig): UpdateGateSettings | undefined {
  const g = config.gate;
  if (!g) return undefined;
  const p = config.privacy;
  if (!p || !config.training) return g;
  return { ...g, dpWeightNoise: dpWeightNoise({ learningRate: config.training.learningRate, noiseMultiplier: p.noiseMultiplier, clipNorm: p.clipNorm, expectedBatchSize: p.sampleRate * p.window * p.stepEveryRecords }) };
}

export function loadCanaries(config: GateConfig, learner: Learner, file: string): Canaries {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new TayguardError('CONFIG_INVALID', `CANARY_FILE ${file} cannot be read: ${(e as Error).message}`);
  }
  const records: TrainingRecord[] = [];
  const problems: string[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    const parsed = parseRecord(
      { value: Buffer.from(line) },
      {
        numClasses: config.model.numClasses,
        task: config.model.kind,
        featureDim: config.model.kind === 'dense' ? learner.featurizer.dim : undefined,
        maxTextChars: config.limits.maxTextChars,
        textReadChars: config.limits.textReadChars,
        maxMessageBytes: config.limits.maxMessageBytes,
      },
    );
    if (parsed.ok) records.push(parsed.record);
    else if (problems.length < 5) problems.push(`line ${i + 1}: ${parsed.reasons.map((r) => r.message).join('; ')}`);
    else problems.push('');
  });
  if (problems.length > 0) {
    throw new TayguardError('CONFIG_INVALID', `CANARY_FILE ${file} has ${problems.length} invalid line(s):\n  ${problems.filter(Boolean).join('\n  ')}`);
  }
  if (records.length < 20) throw new TayguardError('CONFIG_INVALID', `CANARY_FILE ${file} holds ${records.length} records; the gate needs at least 20 to tell an update's harm from noise`);
  const { x, y } = learner.batch(records, records.map((r) => r.label));
  return { x, y, size: records.length };
}

export function createUpdateGate(config: GateConfig, learner: Learner, registry: SourceRegistry, metrics: TrainMetrics, logger: Logger, served?: ServedModel): UpdateGate | undefined {
  const g = config.gate;
  const settings = gateSettings(config);
  if (!g || !settings) return undefined;
  return new UpdateGate(learner, loadCanaries(config, learner, g.canaryFile), registry, settings, {
    onReject: (records, before, after) => {
      metrics.gateRejected.inc();
      logger.debug({ sources: [...new Set(records.map((r) => r.source))].slice(0, 20), before, after }, 'update gate undid a step that hurt the canary set; its sources were penalised by their share of it');
    },
    onRollback: (alert) => {
      metrics.gateRollbacks.inc();
      logger.error({ alert }, 'ALERT: sustained canary degradation, rolled back to the best served model');
    },
  }, served);
}
