/**
 * Durable, atomic checkpoints in a local directory (nothing to install).
 *
 * One file per checkpoint: magic, header length, JSON header, weight bytes, SHA-256 of everything before it.
 * Written to a temp file, fsynced, renamed into place, then the directory is fsynced — so a crash leaves either
 * the previous checkpoint or the new one, never half of one. The newest checkpoint must verify: falling back to
 * an older one silently would forget accounted privacy loss (docs/architecture.md, invariant 2), so a corrupt newest
 * file stops start-up with CHECKPOINT_CORRUPT and a message saying how to proceed.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { TayguardError } from '../../core/errors';
import type { tf } from '../../core/tf';

const MAGIC = Buffer.from('TAYGUARD-CKPT1\n');
const NAME = /^ckpt-(\d{12})\.tgck$/;

export interface CheckpointHeader {
  readonly seq: number;
  readonly createdAt: string;
  /** What the weights belong to; a mismatch at restore means the configuration changed. */
  readonly model: { readonly task: string; readonly inputDim: number; readonly numClasses: number };
  readonly weightSpecs: tf.io.WeightsManifestEntry[];
  readonly optimizer: { readonly name: string; readonly learningRate: number };
  /** Next offset to read, per topic and partition (Kafka's commit semantics). */
  readonly offsets: Record<string, Record<string, string>>;
  readonly dedup: unknown;
  readonly counts: unknown;
  /** Privacy accountant and ledger state; null while training is not private. */
  readonly accountant: unknown;
  /** Room for later stages (gate, detectors) to persist state without a format change. */
  readonly extra: Record<string, unknown>;
}

export interface Checkpoint {
  readonly header: CheckpointHeader;
  readonly weights: Buffer;
  readonly file: string;
}

const fileName = (seq: number) => `ckpt-${String(seq).padStart(12, '0')}.tgck`;

export class CheckpointStore {
  constructor(
    readonly dir: string,
    private readonly kept = 3,
    /** CHECKPOINT_MAX_BYTES: a checkpoint encoding larger is refused, not written (src/checkpoint/budget.ts). */
    private readonly maxBytes = Number.POSITIVE_INFINITY,
  ) {}

  async init(): Promise<void> {
    try {
      await fs.mkdir(this.dir, { recursive: true });
      await fs.access(this.dir, fs.constants.W_OK);
    } catch (e) {
      throw new TayguardError('CHECKPOINT_FAILED', `cannot write to CHECKPOINT_DIR ${this.dir}: ${(e as Error).message}`, { cause: e });
    }
    // Temp files are what a crash mid-write leaves behind; they were never renamed, so they were never a checkpoint.
    for (const name of await fs.readdir(this.dir)) {
      if (name.includes('.tmp-')) await fs.rm(path.join(this.dir, name), { force: true });
    }
  }

  /** Sequence numbers of the checkpoints on disk, newest first. */
  sequences(): Promise<number[]> {
    return this.list();
  }

  private async list(): Promise<number[]> {
    const names = await fs.readdir(this.dir).catch(() => [] as string[]);
    return names
      .map((n) => NAME.exec(n))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => b - a);
  }

  /** The newest checkpoint, or undefined when there is none. */
  async latest(): Promise<Checkpoint | undefined> {
    const [seq] = await this.list();
    return seq === undefined ? undefined : this.read(seq);
  }

  async read(seq: number): Promise<Checkpoint> {
    const file = path.join(this.dir, fileName(seq));
    const bytes = await fs.readFile(file);
    const corrupt = (why: string) =>
      new TayguardError(
        'CHECKPOINT_CORRUPT',
        `checkpoint ${file} is damaged (${why}). Refusing to fall back silently (that could under-report privacy loss). Run \`npx tayguard checkpoint verify\` to see what is intact, then \`npx tayguard checkpoint repair\`: it sets the damaged file aside and resumes from the newest intact checkpoint with the lost steps' privacy loss charged, never below any ε already published. Do not move files by hand.`,
      );
    if (bytes.length < MAGIC.length + 4 + 32 || !bytes.subarray(0, MAGIC.length).equals(MAGIC)) throw corrupt('bad magic');
    const body = bytes.subarray(0, bytes.length - 32);
    const digest = createHash('sha256').update(body).digest();
    if (!digest.equals(bytes.subarray(bytes.length - 32))) throw corrupt('checksum mismatch');
    const headerLength = body.readUInt32BE(MAGIC.length);
    const headerStart = MAGIC.length + 4;
    let header: CheckpointHeader;
    try {
      header = JSON.parse(body.subarray(headerStart, headerStart + headerLength).toString('utf8'));
    } catch {
      throw corrupt('unreadable header');
    }
    return { header, weights: Buffer.from(body.subarray(headerStart + headerLength)), file };
  }

  /** Write a checkpoint durably; returns its path. Older checkpoints beyond `kept` are removed afterwards. */
  async write(header: CheckpointHeader, weights: Buffer): Promise<string> {
    const headerBytes = Buffer.from(JSON.stringify(header));
    const len = Buffer.alloc(4);
    len.writeUInt32BE(headerBytes.length);
    const size = MAGIC.length + 4 + headerBytes.length + weights.length + 32;
    if (size > this.maxBytes) {
      // Failing here keeps the last good checkpoint and turns /readyz 503 (the sidecar's checkpoint-failure path).
      throw new TayguardError(
        'CHECKPOINT_TOO_LARGE',
        `checkpoint ${header.seq} encodes to ${size} bytes, over CHECKPOINT_MAX_BYTES (${this.maxBytes}); it was not written. Raise CHECKPOINT_MAX_BYTES, or lower what \`tayguard config check\` lists as the worst case's largest part`,
      );
    }
    const body = Buffer.concat([MAGIC, len, headerBytes, weights]);
    const digest = createHash('sha256').update(body).digest();
    const final = path.join(this.dir, fileName(header.seq));
    const tmp = `${final}.tmp-${process.pid}`;
    try {
      await writeDurably(tmp, [body, digest]);
      await fs.rename(tmp, final);
      await fsyncDir(this.dir);
    } catch (e) {
      await fs.rm(tmp, { force: true }).catch(() => undefined);
      throw new TayguardError('CHECKPOINT_FAILED', `writing checkpoint ${final} failed: ${(e as Error).message}; check free space and permissions of CHECKPOINT_DIR`, { cause: e, retriable: true });
    }
    const all = await this.list();
    for (const old of all.slice(this.kept)) await fs.rm(path.join(this.dir, fileName(old)), { force: true });
    return final;
  }
}

export async function writeDurably(file: string, chunks: readonly Buffer[]): Promise<void> {
  const handle = await fs.open(file, 'w', 0o600);
  try {
    for (const c of chunks) await handle.write(c);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export async function fsyncDir(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
