/**
 * npm run bench — throughput of the whole sidecar path vs bare training, in one run on one machine.
 *
 *   bare:     the same trainer the sidecar uses (DP-SGD with the default settings, or plain SGD with --plain)
 *             fed records from memory: featurize + steps, no Kafka, no screens, no checkpoints
 *   pipeline: Kafka (local Kafka-protocol broker) → schema + default screens → dedup → train → atomic
 *             checkpoint → commit: the real Sidecar in this process, timed from the first handled record to the
 *             final durable checkpoint
 *
 * Same records (SpamAssassin mails), same model, trainer settings and backend. Writes
 * bench/results/pipeline.json (or pipeline-plain.json with --plain).
 * Flags: --json (print only the JSON), --records N (default: all 6,046 mails), --plain (DP_ENABLED=false),
 * --source-clip on|off (SOURCE_CLIP; default: the config default, on), --crafted slow-path|below-threshold (every
 * record's text replaced by TEXT_READ_CHARS characters of bench:redteam's dos text of that mode, labelled ham: the
 * throughput a stream made only of the costliest records to screen gets; use with --records 800 or fewer — the
 * local broker keeps ~5 MB per partition; writes pipeline-crafted-<mode>.json).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initTf } from '../core/tf';
import { loadConfig } from '../src/config';
import { createLogger } from '../src/logger';
import { createSidecar } from '../src/sidecar';
import { startLocalBroker } from '../src/dev/broker';
import { createKafka, createProducer } from '../src/ingest/client';
import { buildModel, featurizerFor } from '../middleware/build';
import { TfjsLearner } from '../middleware/learner';
import seedrandom from 'seedrandom';
import { HAM, loadSpamCorpus } from '../src/data/spam';
import { belowThresholdText, slowPathText } from './redteam/text-content';
import { parseRecord } from '../filters/schema';
import { createMetrics } from '../src/metrics';
import { createScreens } from '../src/screens';
import { DpTrainer } from '../train/dp';
import { PlainTrainer } from '../train/plain';

const args = process.argv.slice(2);
const json = args.includes('--json');
const nArg = args.indexOf('--records');
const plain = args.includes('--plain');
const sourceClip = args.includes('--source-clip') ? args[args.indexOf('--source-clip') + 1] : undefined;
const craftedMode = args.includes('--crafted') ? args[args.indexOf('--crafted') + 1] : undefined;
if (craftedMode !== undefined && craftedMode !== 'slow-path' && craftedMode !== 'below-threshold') throw new Error('--crafted takes slow-path or below-threshold');
const modeEnv = { DP_ENABLED: plain ? 'false' : 'true', ...(sourceClip ? { SOURCE_CLIP: sourceClip } : {}) };
const say = (s: string) => json || process.stderr.write(`${s}\n`);

async function main() {
  const backend = await initTf();
  const mails = loadSpamCorpus();
  const n = nArg >= 0 ? Math.min(Number(args[nArg + 1]), mails.length) : mails.length;
  const config = loadConfig({ KAFKA_BROKERS: '127.0.0.1:1', LOG_LEVEL: 'warn', ...modeEnv });
  const rng = seedrandom('bench-crafted');
  const craft = craftedMode === 'slow-path' ? slowPathText : belowThresholdText;
  const records = mails.slice(0, n).map((m, i) => ({
    id: `bench-${i}`,
    source: `user-${i % 300}`,
    ...(craftedMode ? { label: HAM, text: craft(rng, config.limits.textReadChars) } : { label: m.label, text: m.text }),
  }));
  const values = records.map((r) => JSON.stringify(r));
  const batch = config.training.batchSize;

  // 1. Bare training: the same model and trainer, the same records, no Kafka, no screen, no checkpoint.
  const makeTrainer = () => {
    const learner = new TfjsLearner(buildModel({ inputDim: config.model.inputDim, numClasses: 2, hiddenUnits: 0, seed: 1 }), featurizerFor('text', config.model.inputDim), {
      learningRate: config.training.learningRate,
    });
    const metrics = createMetrics();
    return config.privacy ? new DpTrainer(learner, metrics, config.privacy) : new PlainTrainer(learner, metrics, batch);
  };
  const makeLearnerForScreens = () =>
    new TfjsLearner(buildModel({ inputDim: config.model.inputDim, numClasses: 2, hiddenUnits: 0, seed: 1 }), featurizerFor('text', config.model.inputDim), { learningRate: 1 });
  const warm = makeTrainer();
  for (const r of records.slice(0, 4 * batch)) await warm.admit(r);
  const trainer = makeTrainer();
  let t0 = process.hrtime.bigint();
  for (const r of records) await trainer.admit(r);
  await trainer.flush();
  const bareSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
  say(`bare training: ${n} records in ${bareSeconds.toFixed(2)} s`);

  // Screening cost alone: schema parse of the raw bytes + the configured screens (SCREENS), per record.
  const buffers = values.map((v) => Buffer.from(v));
  const screens = createScreens(config, { serving: makeLearnerForScreens(), trainedRecords: () => 0 });
  t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const raw = { topic: 'bench', partition: 0, offset: String(i), key: null, value: buffers[i] };
    const parsed = parseRecord(raw, { numClasses: 2, task: 'text', maxTextChars: 20000, maxMessageBytes: 262144 });
    if (parsed.ok) for (const d of screens.detectors) if (d.screen(parsed.record, raw).kind !== 'accept') break;
  }
  const screenMicros = Number(process.hrtime.bigint() - t0) / 1e3 / n;

  // 2. The sidecar through the local broker.
  const broker = await startLocalBroker();
  const producer = await createProducer(createKafka({ brokers: broker.brokers, clientId: 'bench' }));
  for (let i = 0; i < n; i += 500) await producer.send('bench.records', values.slice(i, i + 500).map((v, j) => ({ key: records[i + j].source, value: v })));
  await producer.disconnect();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tayguard-bench-'));
  const sidecar = await createSidecar(
    loadConfig({ KAFKA_BROKERS: broker.bootstrap, TOPIC_PREFIX: 'bench', CHECKPOINT_DIR: dir, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'warn', GROUP_ID: 'bench', ...modeEnv }),
    createLogger('warn'),
  );
  await sidecar.start();
  const done = () => {
    const c = sidecar.status().counts;
    return c.trained + c.quarantined + c.skipped;
  };
  while (done() === 0) await new Promise((r) => setTimeout(r, 5));
  const first = process.hrtime.bigint();
  while (done() < n) await new Promise((r) => setTimeout(r, 5));
  await sidecar.checkpoint();
  const pipelineSeconds = Number(process.hrtime.bigint() - first) / 1e9;
  const rss = process.memoryUsage().rss;
  const checkpoints = (await sidecar.metrics.checkpoints.get()).values[0]?.value ?? 0;
  await sidecar.stop();
  await broker.stop();

  const result = {
    command: `npm run bench${nArg >= 0 || plain || craftedMode ? ' --' : ''}${nArg >= 0 ? ` --records ${n}` : ''}${plain ? ' --plain' : ''}${craftedMode ? ` --crafted ${craftedMode}` : ''}`,
    texts: craftedMode ? `every text replaced by ${config.limits.textReadChars} characters of bench:redteam's dos ${craftedMode} text, labelled ham` : 'SpamAssassin mails',
    training: config.privacy ? `DP-SGD (q=${config.privacy.sampleRate}, σ=${config.privacy.noiseMultiplier}, W=${config.privacy.window}, a step per ${config.privacy.stepEveryRecords} records)` : `plain SGD, batch ${batch}`,
    screens: config.screens.enabled,
    date: new Date().toISOString(),
    cores: os.cpus().length,
    cpu: os.cpus()[0]?.model,
    node: process.version,
    backend,
    model: { task: 'text', inputDim: config.model.inputDim, hiddenUnits: 0, batchSize: batch },
    records: n,
    bareRecordsPerSec: Math.round(n / bareSeconds),
    pipelineRecordsPerSec: Math.round(n / pipelineSeconds),
    ratio: Number((bareSeconds / pipelineSeconds).toFixed(3)),
    screenMicrosPerRecord: Number(screenMicros.toFixed(1)),
    screenMeasures: `schema + SCREENS (${config.screens.enabled.join(', ') || 'none'}) on each record`,
    trainMicrosPerRecord: Number(((bareSeconds * 1e6) / n).toFixed(1)),
    checkpointsDuringRun: checkpoints,
    rssMB: Math.round(rss / 1024 / 1024),
    note: 'pipeline time runs from the first handled record to the final durable checkpoint; group join (≈3 s) excluded',
  };
  const file = craftedMode ? `pipeline-crafted-${craftedMode}` : plain ? 'pipeline-plain' : 'pipeline';
  writeFileSync(path.join(__dirname, 'results', `${file}.json`), `${JSON.stringify(result, null, 2)}\n`);
  if (json) process.stdout.write(`${JSON.stringify(result)}\n`);
  else {
    say(`pipeline (Kafka → screen → train → checkpoint): ${result.pipelineRecordsPerSec} records/s`);
    say(`bare training:                                  ${result.bareRecordsPerSec} records/s`);
    say(`pipeline / bare: ${result.ratio}   (screen ${result.screenMicrosPerRecord} µs/record, train ${result.trainMicrosPerRecord} µs/record)`);
    say(`${result.training}; backend ${backend}, ${result.cores} cores; written to bench/results/${file}.json`);
  }
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack}\n`);
  process.exit(1);
});
