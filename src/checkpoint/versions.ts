/**
 * The published versions kept in MODEL_DIR, read back from their version.json files (src/checkpoint/publish.ts),
 * for GET /v1/model/versions and the status page. Public by the release boundary (docs/privacy.md): a version
 * carries ε and never a record count. Read from disk at each call, so the list is what a learner polling
 * MODEL_DIR would find, retention (MODEL_VERSIONS_KEPT) included.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { PublishedVersion } from './publish';

export type Alias = 'stable' | 'rollback' | 'latest';

export interface VersionSummary {
  readonly version: number;
  readonly createdAt: string;
  readonly checkpointSeq: number;
  readonly epsilon: number | null;
  readonly delta: number | null;
  readonly accountant: string | null;
  readonly weightsSha256: string;
  /** The update gate's verdict since the previous version: a rollback returned to this model (null: gate off). */
  readonly rolledBack: boolean | null;
  /** Which aliases point here: `stable`, `rollback`, `latest` (the LATEST file). */
  readonly aliases: readonly Alias[];
}

/** At most this many versions, newest first (MODEL_VERSIONS_KEPT may keep far more on disk). */
export const VERSIONS_LISTED = 50;

export async function listVersions(dir: string, limit = VERSIONS_LISTED): Promise<VersionSummary[]> {
  const names = await fs.readdir(dir).catch(() => [] as string[]);
  const numbers = names
    .filter((n) => /^\d+$/.test(n))
    .map(Number)
    .sort((a, b) => b - a)
    .slice(0, limit);
  const aliases = new Map<string, Alias[]>();
  const pointTo = (target: string | undefined, alias: Alias) => {
    if (target !== undefined) aliases.set(target, [...(aliases.get(target) ?? []), alias]);
  };
  for (const alias of ['stable', 'rollback'] as const) pointTo(await fs.readlink(path.join(dir, alias)).catch(() => undefined), alias);
  pointTo((await fs.readFile(path.join(dir, 'LATEST'), 'utf8').catch(() => undefined))?.trim().replace(/^v/, ''), 'latest');
  const out: VersionSummary[] = [];
  for (const n of numbers) {
    // A directory without a readable version.json was never completely published (its rename is the last step).
    const info = await fs
      .readFile(path.join(dir, String(n), 'version.json'), 'utf8')
      .then((t) => JSON.parse(t) as PublishedVersion)
      .catch(() => undefined);
    if (!info) continue;
    out.push({
      version: info.version,
      createdAt: info.createdAt,
      checkpointSeq: info.checkpointSeq,
      epsilon: info.privacy?.epsilon ?? null,
      delta: info.privacy?.delta ?? null,
      accountant: info.privacy?.accountant ?? null,
      weightsSha256: info.weightsSha256,
      rolledBack: info.gate ? info.gate.rolledBack : null,
      aliases: aliases.get(String(n)) ?? [],
    });
  }
  return out;
}
