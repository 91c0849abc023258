/**
 * `tayguard` command line: serve, demo, replay, predict, broker (and the privacy calculators).
 * Exit codes: 0 ok, 1 runtime failure, 2 bad usage or configuration.
 */
import { Command, InvalidArgumentError } from 'commander';
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { TayguardError } from '../core/errors';
import { registerPrivacyCommands } from './cli/privacy-commands';
import { registerCheckpointCommands } from './cli/checkpoint-commands';
import { registerPretrainCommand } from './cli/pretrain-command';
import { registerConfigCommands } from './cli/config-check';
import { registerStatusCommand } from './cli/status';

// Heavy modules (tfjs, kafkajs, express) load only for the commands that need them, so the calculators
// (`epsilon`, `noise`) start in a fraction of a second.
/* eslint-disable @typescript-eslint/no-require-imports */
const lazy = {
  config: () => require('./config') as typeof import('./config'),
  logger: () => require('./logger') as typeof import('./logger'),
  sidecar: () => require('./sidecar') as typeof import('./sidecar'),
  kafka: () => require('./ingest/client') as typeof import('./ingest/client'),
  broker: () => require('./dev/broker') as typeof import('./dev/broker'),
  demo: () => require('./demo') as typeof import('./demo'),
};
/* eslint-enable @typescript-eslint/no-require-imports */

const positiveInt = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('must be a positive integer');
  return n;
};

function fail(e: unknown): never {
  if (TayguardError.is(e)) {
    process.stderr.write(`tayguard: ${e.code}: ${e.message}\n`);
    process.exit(e.code === 'CONFIG_INVALID' || e.code === 'ARGUMENT_INVALID' ? 2 : 1);
  }
  process.stderr.write(`tayguard: ${(e as Error)?.stack ?? String(e)}\n`);
  process.exit(1);
}

async function serve(): Promise<void> {
  const config = lazy.config().loadConfig();
  const logger = lazy.logger().createLogger(config.logLevel);
  const sidecar = await lazy.sidecar().createSidecar(config, logger);
  let exiting = false;
  const shutdown = (signal: string) => {
    if (exiting) return;
    exiting = true;
    logger.info({ signal }, 'stopping: no more fetching, final checkpoint, commit, disconnect');
    const hard = setTimeout(() => process.exit(1), 30_000);
    hard.unref();
    sidecar.stop().then(
      () => {
        // Exit 0 only when everything handled is durable (src/stop-outcome.ts); else say what was not.
        const outcome = sidecar.lastStop;
        if (outcome && !outcome.clean) {
          process.stderr.write(`tayguard: ${outcome.code}: ${outcome.message}\n`);
          process.exit(1);
        }
        process.exit(0);
      },
      (e) => {
        logger.error({ err: e }, 'stop failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  await sidecar.start();
  logger.info({ port: sidecar.port }, 'tayguard serving');
}

async function replay(file: string, opts: { brokers?: string; topic?: string; rate?: number }): Promise<void> {
  const brokers = (opts.brokers ?? process.env.KAFKA_BROKERS ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  if (brokers.length === 0) throw new TayguardError('ARGUMENT_INVALID', 'no brokers: pass --brokers host:port or set KAFKA_BROKERS');
  const topic = opts.topic ?? `${process.env.TOPIC_PREFIX || 'tayguard'}.records`;
  const { createKafka, createProducer } = lazy.kafka();
  const producer = await createProducer(createKafka({ brokers, clientId: 'tayguard-replay' }));
  const lines = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  let chunk: { key: string | null; value: string; timestamp?: string }[] = [];
  let sent = 0;
  const started = Date.now();
  const flush = async () => {
    await producer.send(topic, chunk);
    sent += chunk.length;
    chunk = [];
    if (opts.rate) {
      const ahead = (sent / opts.rate) * 1000 - (Date.now() - started);
      if (ahead > 0) await new Promise((r) => setTimeout(r, ahead));
    }
  };
  for await (const line of lines) {
    if (line.trim() === '') continue;
    let key: string | null = null;
    let timestamp: string | undefined;
    try {
      const parsed = JSON.parse(line);
      if (typeof parsed?.source === 'string') key = parsed.source;
      // A replay keeps each record's event time: the sidecar takes it from the Kafka timestamp (src/event-time.ts).
      if (Number.isSafeInteger(parsed?.ts) && parsed.ts > 0) timestamp = String(parsed.ts);
    } catch {
      // Malformed lines are produced as they are: the sidecar quarantines them, which is what a replay should show.
    }
    chunk.push({ key, value: line, ...(timestamp ? { timestamp } : {}) });
    if (chunk.length >= (opts.rate ? Math.max(1, Math.min(500, opts.rate / 10)) : 500)) await flush();
  }
  if (chunk.length > 0) await flush();
  await producer.disconnect();
  process.stdout.write(`${JSON.stringify({ topic, produced: sent, seconds: (Date.now() - started) / 1000 })}\n`);
}

async function predict(opts: { url: string; text?: string[]; features?: string[] }): Promise<void> {
  const records = [
    ...(opts.text ?? []).map((text) => ({ text })),
    ...(opts.features ?? []).map((f) => ({ features: f.split(',').map(Number) })),
  ];
  if (records.length === 0) throw new TayguardError('ARGUMENT_INVALID', 'nothing to predict: pass --text "…" or --features 0.1,0.2,… (repeatable)');
  const res = await fetch(new URL('/v1/predict', opts.url), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ records }) }).catch((e) => {
    throw new TayguardError('BROKER_UNAVAILABLE', `cannot reach the sidecar at ${opts.url} (${(e as Error).message}); is \`tayguard serve\` running?`);
  });
  const body = await res.text();
  process.stdout.write(`${body}\n`);
  if (!res.ok) process.exit(1);
}

/** On demand: train a model with secret canaries on a dataset, attack it and audit it (one row of bench:mia). */
async function offlineAudit(opts: { dataset: string; epsilon: string; quick?: boolean; json?: boolean }): Promise<void> {
  if (opts.dataset !== 'spam' && opts.dataset !== 'mnist') throw new TayguardError('ARGUMENT_INVALID', `--dataset must be spam or mnist, got ${opts.dataset}`);
  const epsilon = opts.epsilon === 'none' ? null : Number(opts.epsilon);
  if (epsilon !== null && !(epsilon > 0 && Number.isFinite(epsilon))) throw new TayguardError('ARGUMENT_INVALID', `--epsilon must be a positive number or "none", got ${opts.epsilon}`);
  /* eslint-disable @typescript-eslint/no-require-imports */
  await (require('../core/tf') as typeof import('../core/tf')).initTf();
  const { miaExperiment } = require('./audit/offline-experiment') as typeof import('./audit/offline-experiment');
  /* eslint-enable @typescript-eslint/no-require-imports */
  const exp = miaExperiment({ quick: opts.quick ?? false });
  const ds = opts.dataset === 'spam' ? exp.loadSpam() : exp.loadMnist();
  const row = exp.runRow(ds, epsilon, (m) => process.stderr.write(`${m}\n`));
  if (opts.json) process.stdout.write(`${JSON.stringify(row)}\n`);
  else {
    process.stdout.write(
      `${row.dataset}, ${epsilon === null ? 'non-private' : `DP-SGD at ε=${epsilon}`}: LiRA AUC ${row.auc.toFixed(3)}, TPR@0.1%FPR ${row.tprAt0001.toFixed(3)}, TPR@1%FPR ${row.tprAt001.toFixed(3)}; ` +
        `one-run audit ε ≥ ${row.epsilonLowerBound.toFixed(3)} (95%) vs accountant ε ${row.accountantEpsilon === null ? 'none' : row.accountantEpsilon.toFixed(3)}\n`,
    );
  }
  if (row.accountantEpsilon !== null && row.epsilonLowerBound > row.accountantEpsilon) process.exit(3);
}

async function audit(opts: { url: string; json?: boolean; offline?: boolean; dataset: string; epsilon: string; quick?: boolean }): Promise<void> {
  if (opts.offline) return offlineAudit(opts);
  const res = await fetch(new URL('/v1/privacy/audit', opts.url)).catch((e) => {
    throw new TayguardError('BROKER_UNAVAILABLE', `cannot reach the sidecar at ${opts.url} (${(e as Error).message}); is \`tayguard serve\` running?`);
  });
  const body = (await res.json()) as { enabled: boolean; note?: string; latest?: Record<string, unknown> | null; current?: Record<string, number> | null };
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(body)}\n`);
    return;
  }
  if (!body.enabled) {
    process.stdout.write(`${body.note}\n`);
    return;
  }
  const a = body.latest as { round: number; epsilonLowerBound: number; epsilonAccounted: number | null; auc: number; correct: number; guesses: number; alarm: boolean } | null;
  if (a) {
    process.stdout.write(
      `round ${a.round}: empirical ε ≥ ${a.epsilonLowerBound.toFixed(3)} (95%) vs accountant ε ${a.epsilonAccounted?.toFixed(3) ?? 'none'}; attack AUC ${a.auc.toFixed(3)}, ${a.correct}/${a.guesses} guesses right${a.alarm ? ' — ALARM' : ''}\n`,
    );
  } else process.stdout.write('no audit round completed yet\n');
  if (body.current) process.stdout.write(`round ${body.current.round} in progress: ${body.current.admitted} canaries admitted, ${body.current.toAdmit} to go\n`);
  if (a?.alarm) process.exit(3);
}

async function broker(opts: { brokers: number }): Promise<void> {
  const b = await lazy.broker().startLocalBroker({ brokers: opts.brokers });
  process.stdout.write(`KAFKA_BROKERS=${b.bootstrap}\n`);
  process.stderr.write('local Kafka-protocol broker (librdkafka mock cluster via kcat) running; Ctrl-C stops it\n');
  const stop = () => void b.stop().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  b.process.once('exit', () => process.exit(1));
}

export function buildProgram(): Command {
  const program = new Command('tayguard')
    .description('Screens a Kafka training stream for poisoning and trains a TensorFlow.js model with differential privacy')
    .showHelpAfterError('(run with --help for usage)');
  program
    .command('serve')
    .description('run the sidecar (configuration from the environment; see README)')
    .action(() => serve().catch(fail));
  program
    .command('demo')
    .description('start a local broker and the sidecar, stream the SpamAssassin corpus through them, print progress')
    .option('--records <n>', 'how many mails to stream (default: all 6,046)', positiveInt)
    .option('--rate <n>', 'records per second to produce', positiveInt, 400)
    .option('--no-attack', 'leave out the Tay-style flood in the second half of the stream')
    .option('--keep', 'keep the sidecar and its status page (/ui/) up after the stream, until Ctrl-C')
    .action((opts) =>
      Promise.resolve()
        .then(() => lazy.demo().runDemo(opts))
        .catch(fail),
    );
  program
    .command('replay <file>')
    .description('produce the lines of a JSONL file as records (malformed lines too, to exercise quarantine)')
    .option('--brokers <list>', 'bootstrap brokers (default: KAFKA_BROKERS)')
    .option('--topic <name>', 'topic (default: <TOPIC_PREFIX>.records)')
    .option('--rate <n>', 'records per second (default: as fast as possible)', positiveInt)
    .action((file, opts) => replay(file, opts).catch(fail));
  program
    .command('predict')
    .description('ask a running sidecar for predictions')
    .option('--url <url>', 'sidecar base URL', `http://127.0.0.1:${process.env.PORT || 8080}`)
    .option('--text <text...>', 'text record(s)')
    .option('--features <csv...>', 'feature record(s), comma-separated numbers')
    .action((opts) => predict(opts).catch(fail));
  program
    .command('audit')
    .description("show a running sidecar's membership-inference audit, or run one on demand with --offline (exit 3 when the empirical ε passes the accountant's)")
    .option('--url <url>', 'sidecar base URL', `http://127.0.0.1:${process.env.PORT || 8080}`)
    .option('--json', 'print the raw JSON')
    .option('--offline', 'train, attack and audit a model now (no sidecar needed)')
    .option('--dataset <name>', 'with --offline: spam or mnist', 'spam')
    .option('--epsilon <e>', 'with --offline: target ε of DP-SGD, or "none" for a non-private model', '3')
    .option('--quick', 'with --offline: smaller sizes (about a minute)')
    .action((opts) => audit(opts).catch(fail));
  program
    .command('broker')
    .description('run the local Kafka-protocol broker (kcat mock cluster) and print KAFKA_BROKERS')
    .option('--brokers <n>', 'number of mock brokers', positiveInt, 3)
    .action((opts) => broker(opts).catch(fail));
  registerPrivacyCommands(program);
  registerCheckpointCommands(program, fail);
  registerPretrainCommand(program, fail);
  registerConfigCommands(program);
  registerStatusCommand(program);
  return program;
}

export function main(argv: readonly string[] = process.argv): void {
  buildProgram().parseAsync([...argv]).catch(fail);
}

if (require.main === module) main();
