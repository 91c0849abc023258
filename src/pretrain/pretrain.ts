/**
 * `tayguard pretrain --public data.jsonl --out DIR`: train the configured model NON-privately on data declared
 * public (or consented), and write it where MODEL_PATH can start the sidecar from it. Public pretraining is the
 * lever the strongest DP results rely on (De et al. 2022; Li et al. 2022): it costs no privacy — the guarantee is
 * about the stream, and this data was never part of it — and the private steps then only adapt a good model.
 *
 * The output directory holds model.json + weights.bin (the tfjs layers-model format) and pretrain.json, which
 * names the public data (file, sha256, records) so that the sidecar's budget statement can say what was public.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { Config } from '../config';
import { TayguardError } from '../../core/errors';
import { parseRecord } from '../../filters/schema';
import { buildModel, featurizerFor } from '../../middleware/build';
import { serializeModel } from '../../middleware/files';
import { writeDurably, fsyncDir } from '../checkpoint/store';
import { TfjsLearner } from '../../middleware/learner';
import type { TrainingRecord } from '../../core/record';
import seedrandom from 'seedrandom';

export const PRETRAIN_FILE = 'pretrain.json';

export interface PretrainInfo {
  readonly publicData: { readonly file: string; readonly sha256: string; readonly records: number; readonly skippedLines: number };
  readonly epochs: number;
  readonly learningRate: number;
  readonly batchSize: number;
  readonly featurizer: Record<string, unknown>;
  readonly createdAt: string;
}

export interface PretrainOptions {
  readonly publicFile: string;
  readonly out: string;
  readonly epochs: number;
  readonly learningRate?: number;
  readonly seed?: string;
  /** Progress (one line per epoch). */
  readonly progress?: (line: string) => void;
}

/** What reading a file of labelled records found: the valid records, the refused lines, the file's sha256. */
export interface LabelledRecords {
  readonly records: TrainingRecord[];
  readonly skipped: { line: number; why: string }[];
  readonly sha256: string;
}

/**
 * The records of a JSONL file of public or consented labelled records (one record of the README's contract per
 * line), checked against the record contract; bad lines are counted, not fatal. `what` names the setting or flag
 * the file came from, for the error message (`--public`, `WITNESS_DATA`).
 */
export async function readLabelledRecords(file: string, config: Config, what = '--public'): Promise<LabelledRecords> {
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(file);
  } catch (e) {
    throw new TayguardError(what.startsWith('--') ? 'ARGUMENT_INVALID' : 'CONFIG_INVALID', `cannot read ${what} ${file}: ${(e as Error).message}`, { cause: e });
  }
  const limits = {
    numClasses: config.model.numClasses,
    featureDim: config.model.kind === 'dense' ? config.model.inputDim : undefined,
    task: config.model.kind,
    maxTextChars: config.limits.maxTextChars,
    textReadChars: config.limits.textReadChars,
    maxMessageBytes: config.limits.maxMessageBytes,
    maxFeatureAbs: config.ops.maxFeatureAbs,
  };
  const records: TrainingRecord[] = [];
  const skipped: { line: number; why: string }[] = [];
  bytes
    .toString('utf8')
    .split(/\r?\n/)
    .forEach((line, i) => {
      if (line.trim() === '') return;
      const parsed = parseRecord({ value: Buffer.from(line) }, limits);
      if (parsed.ok) records.push(parsed.record);
      else skipped.push({ line: i + 1, why: parsed.reasons.map((r) => r.message).join('; ') });
    });
  return { records, skipped, sha256: createHash('sha256').update(bytes).digest('hex') };
}

/**
 * Plain (non-private) SGD over `records` for `epochs` shuffled passes in batches of `batchSize`; the mean loss of
 * each epoch goes to `progress`. Only for data that is not the stream (public, consented or trusted records).
 */
export function trainEpochs(
  learner: TfjsLearner,
  records: readonly TrainingRecord[],
  o: { readonly epochs: number; readonly batchSize: number; readonly seed: string; readonly progress?: (epoch: number, meanLoss: number) => void },
): void {
  const rng = seedrandom(o.seed);
  for (let epoch = 1; epoch <= o.epochs; epoch++) {
    const order = records.map((_, i) => i);
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(rng() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    let loss = 0;
    let steps = 0;
    for (let k = 0; k < order.length; k += o.batchSize) {
      const part = order.slice(k, k + o.batchSize).map((i) => records[i]);
      const { x, y } = learner.batch(part, part.map((r) => r.label));
      loss += learner.sgdStep(x, y);
      steps += 1;
      x.dispose();
      y.dispose();
    }
    o.progress?.(epoch, loss / Math.max(1, steps));
  }
}

export async function pretrain(config: Config, o: PretrainOptions): Promise<PretrainInfo> {
  if (!Number.isSafeInteger(o.epochs) || o.epochs < 1) throw new TayguardError('ARGUMENT_INVALID', `--epochs must be a positive integer, got ${String(o.epochs)}`);
  const { records, skipped, sha256 } = await readLabelledRecords(o.publicFile, config);
  if (records.length === 0) {
    throw new TayguardError('ARGUMENT_INVALID', `no valid record in ${o.publicFile} (${skipped.length} lines refused, first: line ${skipped[0]?.line ?? '–'}: ${skipped[0]?.why ?? 'empty file'}); each line is one record of the README's contract`);
  }
  const learningRate = o.learningRate ?? config.training.learningRate;
  const dim = config.model.inputDim;
  const model = buildModel({ inputDim: dim, numClasses: config.model.numClasses, hiddenUnits: config.model.hiddenUnits, seed: 1 });
  const learner = new TfjsLearner(model, featurizerFor(config.model.kind, dim), { learningRate });
  const batch = config.training.batchSize;
  trainEpochs(learner, records, {
    epochs: o.epochs,
    batchSize: batch,
    seed: o.seed ?? 'tayguard-pretrain',
    progress: (epoch, loss) => o.progress?.(`epoch ${epoch}/${o.epochs}: ${records.length} public records, mean loss ${loss.toFixed(4)}`),
  });
  const info: PretrainInfo = {
    publicData: { file: path.basename(o.publicFile), sha256, records: records.length, skippedLines: skipped.length },
    epochs: o.epochs,
    learningRate,
    batchSize: batch,
    featurizer: learner.featurizer.describe(),
    createdAt: new Date().toISOString(),
  };
  const files = await serializeModel(learner.model, { tayguardPretrain: info });
  await fs.mkdir(o.out, { recursive: true });
  await writeDurably(path.join(o.out, 'model.json'), [files.modelJson]);
  await writeDurably(path.join(o.out, 'weights.bin'), [files.weights]);
  await writeDurably(path.join(o.out, PRETRAIN_FILE), [Buffer.from(JSON.stringify(info, null, 2))]);
  await fsyncDir(o.out);
  if (skipped.length > 0) o.progress?.(`${skipped.length} lines refused (not trained on), first: line ${skipped[0].line}: ${skipped[0].why}`);
  return info;
}

/** What MODEL_PATH says about its public pretraining, if it was made by `tayguard pretrain`. */
export async function readPretrainInfo(modelPath: string | undefined): Promise<PretrainInfo | null> {
  if (modelPath === undefined) return null;
  const dir = modelPath.endsWith('.json') ? path.dirname(modelPath) : modelPath;
  try {
    return JSON.parse(await fs.readFile(path.join(dir, PRETRAIN_FILE), 'utf8')) as PretrainInfo;
  } catch {
    return null;
  }
}
