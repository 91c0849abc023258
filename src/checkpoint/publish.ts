/**
 * Published model versions, where serving systems look (TensorFlow Serving, OpenVINO Model Server and Triton poll
 * integer version directories; MLflow and Vertex use numbered versions with movable aliases):
 *   <MODEL_DIR>/<N>/model.json, weights.bin, version.json   — written under a temp name, renamed into place, never
 *                                                              rewritten (an existing <N> is refused)
 *   <MODEL_DIR>/stable     → <N>   the newest version published with no rollback since the one before it
 *   <MODEL_DIR>/rollback   → <N>   the version a rollback returned to (absent until one happened)
 *   <MODEL_DIR>/v<N>       → <N>   and <MODEL_DIR>/LATEST ("v<N>"): the earlier layout, kept for existing learners
 * Aliases and LATEST are replaced atomically (a symlink or file renamed over the old one), so a reader never sees
 * a half-written model. The newest MODEL_VERSIONS_KEPT versions are kept, plus any version an alias points to.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { fsyncDir, writeDurably } from './store';
import { serializeModel } from '../../middleware/files';
import type { tf } from '../../core/tf';
import { TayguardError } from '../../core/errors';

export interface VersionInfo {
  readonly version: number;
  readonly name: string;
  readonly createdAt: string;
  readonly checkpointSeq: number;
  readonly featurizer: Record<string, unknown>;
  readonly numClasses: number;
  readonly backend: string;
  /**
   * The guarantee this version was published under (the checkpointed budget): ε null when training is not
   * private. Kept with every version so that the highest ε ever published can be recovered from MODEL_DIR alone
   * (`tayguard checkpoint repair`). No record counts: a version is public, and an exact count is a release.
   */
  readonly privacy: {
    readonly epsilon: number | null;
    readonly delta: number | null;
    readonly accountant: string | null;
    readonly unit: string;
    /** The plan the version was trained under (a repair charges the costliest one a lost run may have used). */
    readonly sampleRate?: number;
    readonly noiseMultiplier?: number;
  };
  /** The update gate since the previous version (null without CANARY_FILE): a rollback returned to this model. */
  readonly gate?: { readonly rolledBack: boolean } | null;
}

/** version.json as written: the input plus its name, the weights' sha256 and the directory. */
export interface PublishedVersion extends VersionInfo {
  readonly weightsSha256: string;
}

const VERSION_DIR = /^(\d+)$/;

export class ModelPublisher {
  constructor(
    readonly dir: string,
    private readonly kept = 5,
  ) {}

  async init(): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true });
    for (const name of await fs.readdir(this.dir)) if (name.startsWith('.tmp-')) await fs.rm(path.join(this.dir, name), { recursive: true, force: true });
  }

  async publish(model: tf.LayersModel, info: Omit<VersionInfo, 'name'>): Promise<PublishedVersion> {
    const name = String(info.version);
    const target = path.join(this.dir, name);
    if (await exists(target)) {
      throw new TayguardError('MODEL_VERSION_EXISTS', `${target} already exists and a published version is never rewritten: MODEL_DIR holds versions of another run — give this CHECKPOINT_DIR its own MODEL_DIR (or run \`npx tayguard checkpoint repair\`, which numbers past them)`);
    }
    const files = await serializeModel(model, { tayguard: { ...info, name } });
    const full: PublishedVersion = { ...info, name, weightsSha256: createHash('sha256').update(files.weights).digest('hex') };
    const tmp = path.join(this.dir, `.tmp-${name}-${process.pid}`);
    await fs.rm(tmp, { recursive: true, force: true });
    await fs.mkdir(tmp);
    await writeDurably(path.join(tmp, 'model.json'), [files.modelJson]);
    await writeDurably(path.join(tmp, 'weights.bin'), [files.weights]);
    await writeDurably(path.join(tmp, 'version.json'), [Buffer.from(JSON.stringify(full, null, 2))]);
    await fsyncDir(tmp);
    await fs.rename(tmp, target);
    await this.point(`v${name}`, name);
    if (!info.gate?.rolledBack) await this.point('stable', name);
    else await this.point('rollback', name);
    const latestTmp = path.join(this.dir, `.tmp-LATEST-${process.pid}`);
    await writeDurably(latestTmp, [Buffer.from(`v${name}\n`)]);
    await fs.rename(latestTmp, path.join(this.dir, 'LATEST'));
    await fsyncDir(this.dir);
    await this.prune();
    return full;
  }

  /** Make `alias` a symlink to `target` atomically (a new link renamed over the old one). */
  private async point(alias: string, target: string): Promise<void> {
    const tmp = path.join(this.dir, `.tmp-${alias}-${process.pid}`);
    await fs.rm(tmp, { force: true });
    await fs.symlink(target, tmp);
    await fs.rename(tmp, path.join(this.dir, alias));
  }

  private async prune(): Promise<void> {
    const names = await fs.readdir(this.dir);
    const pinned = new Set<string>();
    for (const alias of ['stable', 'rollback']) {
      const to = await fs.readlink(path.join(this.dir, alias)).catch(() => undefined);
      if (to !== undefined) pinned.add(to);
    }
    const versions = names
      .map((n) => VERSION_DIR.exec(n))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => b - a);
    for (const v of versions.slice(this.kept)) {
      if (pinned.has(String(v))) continue;
      await fs.rm(path.join(this.dir, `v${v}`), { force: true });
      await fs.rm(path.join(this.dir, String(v)), { recursive: true, force: true });
    }
  }
}

async function exists(p: string): Promise<boolean> {
  return fs.access(p).then(
    () => true,
    () => false,
  );
}
