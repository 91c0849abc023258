/**
 * Published model versions: what an existing learner hot-loads. Each version is a directory
 *   <MODEL_DIR>/v<N>/model.json, weights.bin, version.json
 * written under a temp name and renamed into place, then <MODEL_DIR>/LATEST (the version name) is replaced
 * atomically — a reader that follows LATEST never sees a half-written model.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { fsyncDir, writeDurably } from './store';
import { serializeModel } from '../model/files';
import type { tf } from '../tf';

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
  readonly privacy: { readonly epsilon: number | null; readonly delta: number | null; readonly accountant: string | null; readonly unit: string };
}

const VERSION_DIR = /^v(\d+)$/;

export class ModelPublisher {
  constructor(
    readonly dir: string,
    private readonly kept = 5,
  ) {}

  async init(): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true });
    for (const name of await fs.readdir(this.dir)) if (name.startsWith('.tmp-')) await fs.rm(path.join(this.dir, name), { recursive: true, force: true });
  }

  async publish(model: tf.LayersModel, info: Omit<VersionInfo, 'name'>): Promise<string> {
    const name = `v${info.version}`;
    const full: VersionInfo = { ...info, name };
    const files = await serializeModel(model, { tayguard: full });
    const tmp = path.join(this.dir, `.tmp-${name}-${process.pid}`);
    await fs.rm(tmp, { recursive: true, force: true });
    await fs.mkdir(tmp);
    await writeDurably(path.join(tmp, 'model.json'), [files.modelJson]);
    await writeDurably(path.join(tmp, 'weights.bin'), [files.weights]);
    await writeDurably(path.join(tmp, 'version.json'), [Buffer.from(JSON.stringify(full, null, 2))]);
    await fsyncDir(tmp);
    const target = path.join(this.dir, name);
    await fs.rm(target, { recursive: true, force: true });
    await fs.rename(tmp, target);
    const latestTmp = path.join(this.dir, `.tmp-LATEST-${process.pid}`);
    await writeDurably(latestTmp, [Buffer.from(`${name}\n`)]);
    await fs.rename(latestTmp, path.join(this.dir, 'LATEST'));
    await fsyncDir(this.dir);
    await this.prune();
    return target;
  }

  private async prune(): Promise<void> {
    const versions = (await fs.readdir(this.dir))
      .map((n) => VERSION_DIR.exec(n))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => b - a);
    for (const v of versions.slice(this.kept)) await fs.rm(path.join(this.dir, `v${v}`), { recursive: true, force: true });
  }
}
