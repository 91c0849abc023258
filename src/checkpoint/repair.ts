/**
 * `tayguard checkpoint verify` and `tayguard checkpoint repair`: what to do when the newest checkpoint is damaged.
 *
 * Resuming from an older checkpoint by hand (moving the damaged file aside) would let the reported ε go DOWN
 * while the model versions published from the lost checkpoints stay out there, and the records consumed since
 * the older checkpoint would be trained a second time with a fresh window. The repair instead:
 *   1. sets every damaged checkpoint newer than the newest intact one aside (into `damaged/`, never deleted);
 *   2. charges the repeated exposure of the replayed records (PrivacyBudget.chargeRepeatedExposure: two
 *      windows instead of one) when anything after the intact checkpoint may have been released;
 *   3. raises the ledger's floor to the highest ε in any published version.json, so the reported ε is never
 *      below a figure already published;
 *   4. writes the result as a NEW checkpoint whose sequence is above every checkpoint and version seen, so the
 *      next published version number has never named another model.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { PrivacyBudget } from '../../privacy/budget';
import { TayguardError } from '../../core/errors';
import { CheckpointStore, type Checkpoint } from './store';

export interface CheckpointReport {
  readonly seq: number;
  readonly file: string;
  readonly ok: boolean;
  readonly error?: string;
  readonly createdAt?: string;
  readonly modelVersion?: number;
  /** ε of its ledger (null: trained without DP). */
  readonly epsilon?: number | null;
}

export interface PublishedVersion {
  readonly version: number;
  readonly checkpointSeq: number;
  readonly epsilon: number | null;
  /** The (q, σ) it was trained under, when its version.json says (versions from before this field: unknown). */
  readonly plan?: { readonly sampleRate: number; readonly noiseMultiplier: number };
}

export interface Inspection {
  readonly dir: string;
  readonly modelDir: string;
  readonly checkpoints: CheckpointReport[];
  readonly published: PublishedVersion[];
  /** The newest checkpoint that reads back intact. */
  readonly newestIntact: CheckpointReport | null;
  readonly highestPublishedEpsilon: number | null;
  /** What a start-up would do: resume, or stop (and why). */
  readonly healthy: boolean;
  readonly problems: string[];
}

function ledgerOf(c: Checkpoint): PrivacyBudget | null {
  const trainer = c.header.accountant as { budget?: unknown } | null;
  return trainer?.budget === undefined ? null : PrivacyBudget.fromJSON(trainer.budget);
}

async function publishedVersions(modelDir: string): Promise<PublishedVersion[]> {
  const names = await fs.readdir(modelDir).catch(() => [] as string[]);
  const out: PublishedVersion[] = [];
  for (const name of names) {
    // Integer version directories (v<N> is the earlier layout: a symlink to <N> now, a directory before).
    if (!/^v?\d+$/.test(name)) continue;
    try {
      const info = JSON.parse(await fs.readFile(path.join(modelDir, name, 'version.json'), 'utf8')) as { version: number; checkpointSeq: number; privacy?: { epsilon?: number | null; sampleRate?: number; noiseMultiplier?: number } };
      const p = info.privacy;
      out.push({
        version: info.version,
        checkpointSeq: info.checkpointSeq,
        epsilon: p?.epsilon ?? null,
        ...(typeof p?.sampleRate === 'number' && typeof p?.noiseMultiplier === 'number' ? { plan: { sampleRate: p.sampleRate, noiseMultiplier: p.noiseMultiplier } } : {}),
      });
    } catch {
      // A version directory without a readable version.json was never completely published (rename is last).
    }
  }
  // v<N> links (the earlier layout's names) point at <N>: one entry per version.
  const unique = new Map(out.map((v) => [v.version, v]));
  return [...unique.values()].sort((a, b) => b.version - a.version);
}

export async function inspectCheckpoints(dir: string, modelDir: string): Promise<Inspection> {
  const store = new CheckpointStore(dir);
  const checkpoints: CheckpointReport[] = [];
  for (const seq of await store.sequences()) {
    try {
      const c = await store.read(seq);
      checkpoints.push({ seq, file: c.file, ok: true, createdAt: c.header.createdAt, modelVersion: Number(c.header.extra.modelVersion ?? 0), epsilon: ledgerOf(c)?.spent ?? null });
    } catch (e) {
      checkpoints.push({ seq, file: path.join(dir, `ckpt-${String(seq).padStart(12, '0')}.tgck`), ok: false, error: (e as Error).message });
    }
  }
  const published = await publishedVersions(modelDir);
  const newestIntact = checkpoints.find((c) => c.ok) ?? null;
  const eps = published.map((v) => v.epsilon).filter((e): e is number => e !== null);
  const highestPublishedEpsilon = eps.length > 0 ? Math.max(...eps) : null;
  const problems: string[] = [];
  if (checkpoints.length > 0 && !checkpoints[0].ok) problems.push(`the newest checkpoint ${checkpoints[0].file} is damaged: ${checkpoints[0].error ?? ''}`);
  if (checkpoints.length > 0 && !newestIntact) problems.push('no checkpoint reads back intact');
  const ledger = newestIntact?.epsilon;
  if (newestIntact && highestPublishedEpsilon !== null && ledger !== null && ledger !== undefined && ledger < highestPublishedEpsilon - 1e-12) {
    problems.push(`the newest intact checkpoint's ε ${ledger.toFixed(4)} is below ε ${highestPublishedEpsilon.toFixed(4)} already published in ${modelDir}`);
  }
  return { dir, modelDir, checkpoints, published, newestIntact, highestPublishedEpsilon, healthy: problems.length === 0, problems };
}

export interface RepairResult {
  readonly repaired: boolean;
  readonly note: string;
  readonly setAside: string[];
  readonly written?: { readonly seq: number; readonly file: string; readonly epsilonBefore: number | null; readonly epsilonAfter: number | null };
}

export async function repairCheckpoints(dir: string, modelDir: string, now: () => Date = () => new Date()): Promise<RepairResult> {
  const inspection = await inspectCheckpoints(dir, modelDir);
  if (inspection.healthy) return { repaired: false, note: 'nothing to repair: the newest checkpoint is intact and covers every published ε', setAside: [] };
  const good = inspection.newestIntact;
  if (!good) {
    throw new TayguardError('CHECKPOINT_CORRUPT', `no checkpoint in ${dir} reads back intact, so there is no ledger to resume: start a new model with an empty CHECKPOINT_DIR (and a new MODEL_DIR), keeping the old ones for the record`);
  }
  const store = new CheckpointStore(dir, Number.MAX_SAFE_INTEGER);
  const intact = await store.read(good.seq);
  const damaged = inspection.checkpoints.filter((c) => !c.ok && c.seq > good.seq);
  // Anything published from a checkpoint after the intact one may have released steps the intact ledger lacks.
  const lostReleases = damaged.length > 0 || inspection.published.some((v) => v.checkpointSeq > good.seq);
  const trainer = intact.header.accountant as Record<string, unknown> | null;
  let accountant: unknown = trainer;
  let epsilonAfter: number | null = null;
  if (trainer !== null) {
    const ledger = PrivacyBudget.fromJSON(trainer.budget);
    // The lost run's plans, as its published versions declare them (a restart may have changed q and σ).
    if (lostReleases) ledger.chargeRepeatedExposure(inspection.published.filter((v) => v.checkpointSeq > good.seq && v.plan).map((v) => v.plan!));
    if (inspection.highestPublishedEpsilon !== null) ledger.raiseFloor(inspection.highestPublishedEpsilon);
    accountant = { ...trainer, budget: ledger.toJSON() };
    epsilonAfter = ledger.spent;
  }
  const setAside: string[] = [];
  await fs.mkdir(path.join(dir, 'damaged'), { recursive: true });
  for (const d of damaged) {
    const to = path.join(dir, 'damaged', path.basename(d.file));
    await fs.rename(d.file, to);
    setAside.push(to);
  }
  const seq = Math.max(good.seq, ...inspection.checkpoints.map((c) => c.seq), ...inspection.published.map((v) => Math.max(v.version, v.checkpointSeq))) + 1;
  const header = {
    ...intact.header,
    seq,
    createdAt: now().toISOString(),
    accountant,
    extra: { ...intact.header.extra, repairedFrom: { seq: good.seq, setAside, chargedRepeatedExposure: lostReleases && trainer !== null, floor: inspection.highestPublishedEpsilon } },
  };
  const file = await store.write(header, intact.weights);
  return {
    repaired: true,
    note: `resuming from checkpoint ${good.seq} as ${seq}${lostReleases && trainer !== null ? ', the replayed records charged a second window' : ''}${inspection.highestPublishedEpsilon !== null ? `, ε never below ${inspection.highestPublishedEpsilon.toFixed(4)} (published)` : ''}`,
    setAside,
    written: { seq, file, epsilonBefore: good.epsilon ?? null, epsilonAfter },
  };
}
