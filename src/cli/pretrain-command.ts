/**
 * `tayguard pretrain --public data.jsonl --out DIR [--epochs N] [--learning-rate LR]`: a model trained on public
 * data for MODEL_PATH (src/pretrain/pretrain.ts). The model settings (MODEL, TEXT_HASH_DIM or FEATURE_DIM,
 * NUM_CLASSES, HIDDEN_UNITS, BATCH_SIZE, LEARNING_RATE) come from the environment, like the sidecar's, so the
 * result fits the sidecar that will start from it; KAFKA_BROKERS is not needed.
 */
import type { Command } from 'commander';
import { loadConfig } from '../config';
import { initTf } from '../tf';
import { TayguardError } from '../errors';
import { pretrain } from '../pretrain/pretrain';

interface Options {
  public?: string;
  out?: string;
  epochs: string;
  learningRate?: string;
  json?: boolean;
}

async function run(o: Options): Promise<void> {
  if (!o.public) throw new TayguardError('ARGUMENT_INVALID', 'missing --public <file.jsonl>: the public (or consented) records to pretrain on, one JSON record per line');
  if (!o.out) throw new TayguardError('ARGUMENT_INVALID', 'missing --out <dir>: where to write the model (then start the sidecar with MODEL_PATH=<dir>)');
  const lr = o.learningRate === undefined ? undefined : Number(o.learningRate);
  if (lr !== undefined && !(lr > 0)) throw new TayguardError('ARGUMENT_INVALID', `--learning-rate must be a number > 0, got ${String(o.learningRate)}`);
  const config = loadConfig({ ...process.env, KAFKA_BROKERS: process.env.KAFKA_BROKERS || 'unused:9092' });
  await initTf();
  const info = await pretrain(config, {
    publicFile: o.public,
    out: o.out,
    epochs: Number(o.epochs),
    ...(lr !== undefined ? { learningRate: lr } : {}),
    progress: (line) => process.stderr.write(`${line}\n`),
  });
  if (o.json) process.stdout.write(`${JSON.stringify(info, null, 2)}\n`);
  else process.stdout.write(`wrote ${o.out} (${info.publicData.records} public records, ${info.epochs} epochs); start the sidecar with MODEL_PATH=${o.out}\n`);
}

export function registerPretrainCommand(program: Command, fail: (e: unknown) => never): void {
  program
    .command('pretrain')
    .description('train the configured model non-privately on PUBLIC data and write it for MODEL_PATH (no privacy cost: that data is not the stream)')
    .option('--public <file>', 'JSONL of public records (the record contract of the README)')
    .option('--out <dir>', 'output directory (model.json, weights.bin, pretrain.json)')
    .option('--epochs <n>', 'passes over the public data', '5')
    .option('--learning-rate <lr>', 'default: LEARNING_RATE or the model kind\'s default')
    .option('--json', 'print pretrain.json')
    .action((o: Options) => run(o).catch(fail));
}
