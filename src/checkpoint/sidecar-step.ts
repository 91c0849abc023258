/**
 * Two pieces of the sidecar's checkpoint step (Sidecar.checkpointLocked in src/sidecar.ts, which keeps the order:
 * train → flush quarantine → write checkpoint → publish model → commit offsets, docs/architecture.md invariant 1):
 * what a checkpoint holds (composeCheckpoint, encoded by ./encode.ts) and the version published from it
 * (publishVersion, then announceVersion on `<prefix>.models`), and the audit round scored once it is durable
 * (scoreAuditRound).
 */
import * as path from 'node:path';
import type { WeightsSnapshot } from '../../middleware/learner';
import type { SidecarParts } from '../assemble';
import type { RecordProducer } from '../ingest/client';
import type { BudgetResponse } from '../privacy-status';
import { encodeCheckpoint, type CheckpointContents } from './encode';
import type { PublishedVersion, VersionInfo } from './publish';
import { modelIdentity } from '../assemble';

/** The checkpoint of everything a sidecar holds, at sequence `seq`, naming `modelVersion` as served. */
export function composeCheckpoint(
  parts: Pick<SidecarParts, 'config' | 'learner' | 'average' | 'dedup' | 'tally' | 'screens' | 'gate' | 'trainer' | 'auditor'>,
  at: { readonly seq: number; readonly modelVersion: number; readonly offsets: CheckpointContents['offsets']; readonly snapshot: WeightsSnapshot; readonly averaged?: WeightsSnapshot },
): ReturnType<typeof encodeCheckpoint> {
  const { config, learner, average, dedup, tally, screens, gate, trainer, auditor } = parts;
  const { seq, modelVersion, offsets, snapshot, averaged } = at;
  const gateBest = gate?.bestSnapshot();
  return encodeCheckpoint({
    seq,
    createdAt: new Date().toISOString(),
    model: modelIdentity(config, learner),
    learningRate: config.training.learningRate,
    topic: config.topics.records,
    offsets,
    dedup: dedup.toJSON(),
    counts: tally.counts,
    accountant: trainer.toJSON(),
    modelVersion,
    screens: screens.toJSON(),
    ...(auditor ? { audit: auditor.toJSON() } : {}),
    ...(gate ? { gate: { state: gate.toJSON(), best: gateBest } } : {}),
    ...(average && averaged ? { average: { state: average.toJSON(), weights: averaged } } : {}),
    weights: snapshot,
  });
}

/** Publish the served model as a version in MODEL_DIR, under the budget just checkpointed (`published`). */
export function publishVersion(
  parts: Pick<SidecarParts, 'config' | 'publisher' | 'serving' | 'learner' | 'backend'>,
  v: Pick<VersionInfo, 'version' | 'createdAt' | 'checkpointSeq' | 'gate'>,
  published: BudgetResponse,
): Promise<PublishedVersion> {
  const { config, publisher, serving, learner, backend } = parts;
  return publisher.publish(serving.model, {
    version: v.version,
    createdAt: v.createdAt,
    checkpointSeq: v.checkpointSeq,
    featurizer: learner.featurizer.describe(),
    numClasses: learner.numClasses,
    backend,
    privacy: {
      epsilon: published.epsilon?.spent ?? null,
      delta: published.delta,
      accountant: published.accountant,
      unit: published.unit,
      ...(config.privacy ? { sampleRate: config.privacy.sampleRate, noiseMultiplier: config.privacy.noiseMultiplier } : {}),
    },
    gate: v.gate,
  });
}

/**
 * Tell `<prefix>.models` about a new version, for learners that would rather subscribe than poll MODEL_DIR. Not a
 * durable outcome: the version directory is the source of truth, so a failed announcement is logged, not retried.
 */
export async function announceVersion(parts: Pick<SidecarParts, 'config' | 'logger'>, producer: RecordProducer | undefined, v: PublishedVersion): Promise<void> {
  const { config, logger } = parts;
  if (!producer) return;
  const message = { name: v.name, version: v.version, path: path.join(config.checkpoint.modelDir, v.name), weightsSha256: v.weightsSha256, epsilon: v.privacy.epsilon, delta: v.privacy.delta, createdAt: v.createdAt };
  try {
    await producer.send(config.topics.models, [{ key: v.name, value: JSON.stringify(message) }]);
  } catch (e) {
    logger.warn({ err: e, version: v.version }, `announcing the version on ${config.topics.models} failed; it is published in MODEL_DIR`);
  }
}

/** After a checkpoint: score the audit round on the published weights if its canaries are fully exposed. */
export function scoreAuditRound(parts: Pick<SidecarParts, 'auditor' | 'trainer' | 'serving' | 'metrics' | 'logger'>, spent: number | null): void {
  const { auditor, trainer, serving, metrics, logger } = parts;
  if (!auditor) return;
  const result = auditor.maybeScore(trainer.progress, serving, spent);
  if (!result) return;
  metrics.auditRounds.inc();
  metrics.auditLowerBound.set(result.epsilonLowerBound);
  metrics.auditAlarm.set(result.alarm ? 1 : 0);
  if (result.alarm) {
    logger.error({ audit: result }, `ALARM: the audit's ε lower bound ${result.epsilonLowerBound.toFixed(3)} exceeds the accountant's ε ${result.epsilonAccounted?.toFixed(3)}: suspect clipping, noise, sampling or accounting`);
  } else if (result.exceeds) {
    logger.warn({ audit: result }, `the audit's ε lower bound exceeds the accountant's ε in this round (expected in ~5% of rounds); a second round in a row raises the alarm`);
  } else {
    logger.info({ audit: result }, 'privacy audit round completed');
  }
}
