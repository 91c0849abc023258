/**
 * `tayguard demo`: the whole product on one machine. Starts the local Kafka-protocol broker and the sidecar,
 * streams SpamAssassin mails (plus a sprinkling of malformed messages) as records from simulated sources,
 * prints a live progress line, and ends with a summary and where to look.
 */
import { mkdtempSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import seedrandom from 'seedrandom';
import { loadConfig } from './config';
import { createLogger } from './logger';
import { Sidecar } from './sidecar';
import { startLocalBroker } from './dev/broker';
import { createKafka, createProducer } from './kafka/client';
import { splitSpamCorpus, type Mail } from './data/spam';
import { TayguardError } from './errors';

export interface DemoOptions {
  readonly records?: number;
  readonly rate: number;
  readonly port?: number;
}

/** Some ways a producer gets a record wrong; each must end on the quarantine topic, not stop the consumer. */
function malformed(i: number): string | Buffer {
  const kinds: (string | Buffer)[] = [
    '{"id": "broken-json", "source": ',
    JSON.stringify({ id: `m-${i}`, source: 'buggy-app', text: 'no label here' }),
    JSON.stringify({ id: `m-${i}`, source: 'buggy-app', label: 7, text: 'label out of range' }),
    Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]),
    JSON.stringify({ id: `m-${i}`, source: 'buggy-app', label: 0, features: [1, 2, 3] }),
  ];
  return kinds[i % kinds.length];
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

export async function runDemo(opts: DemoOptions): Promise<void> {
  const started = Date.now();
  process.stdout.write('tayguard demo: starting the local Kafka-protocol broker (kcat mock cluster, 3 brokers)…\n');
  const broker = await startLocalBroker();
  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'tayguard-demo-'));
  const config = loadConfig({
    ...process.env,
    KAFKA_BROKERS: broker.bootstrap,
    CHECKPOINT_DIR: path.join(stateDir, 'checkpoints'),
    PORT: String(opts.port ?? process.env.PORT ?? 8080),
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
    CHECKPOINT_INTERVAL_MS: '2000',
    GROUP_ID: 'tayguard-demo',
  });
  const sidecar = new Sidecar({ config, logger: createLogger(config.logLevel) });
  try {
    await sidecar.start();
  } catch (e) {
    await broker.stop();
    if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw new TayguardError('CONFIG_INVALID', `port ${config.http.port} is in use: run with PORT=<free port> npm run demo`);
    }
    throw e;
  }
  const base = `http://127.0.0.1:${sidecar.port}`;
  process.stdout.write(`sidecar up at ${base} (tfjs backend: ${sidecar.status().backend}); state in ${stateDir}\n`);

  const { train, test } = splitSpamCorpus();
  const mails: Mail[] = opts.records ? train.slice(0, opts.records) : train;
  const rng = seedrandom('tayguard-demo-sources');
  const messages: { key: string | null; value: string | Buffer }[] = [];
  let bad = 0;
  mails.forEach((m, i) => {
    // ~400 regular users; heavier senders first (a rough Zipf), like real accounts.
    const source = `user-${Math.floor(400 * rng() ** 2)}`;
    messages.push({ key: source, value: JSON.stringify({ id: m.id, source, ts: Date.now(), label: m.label, text: m.text }) });
    if (i % 97 === 50) messages.push({ key: null, value: malformed(bad++) });
  });

  const producer = await createProducer(createKafka({ brokers: broker.brokers, clientId: 'tayguard-demo-producer' }));
  // The progress line scores a fixed sample of the held-out mails (cheap enough to run every tick in the same
  // process as the sidecar); the summary scores all of them.
  const sample = test.slice(0, 300);
  const accuracy = (set: readonly Mail[] = sample) => {
    const probs = sidecar.serving.predict(set);
    let right = 0;
    probs.forEach((p, i) => (right += (p[1] > p[0] ? 1 : 0) === set[i].label ? 1 : 0));
    return right / set.length;
  };
  let produced = 0;
  let lastTotal = 0;
  let lastTick = Date.now();
  const tty = process.stdout.isTTY;
  const progress = (final = false) => {
    const c = sidecar.status().counts;
    const total = c.trained + c.quarantined + c.skipped;
    const now = Date.now();
    const rate = ((total - lastTotal) * 1000) / Math.max(1, now - lastTick);
    lastTotal = total;
    lastTick = now;
    const b = sidecar.budget();
    const eps = b.epsilon ? ` | ε ${b.epsilon.spent.toFixed(2)}/${b.epsilon.limit} (δ=${b.delta?.toExponential()})` : ' | not private';
    const line = `produced ${produced}/${messages.length} | handled ${total} (${rate.toFixed(0)} rec/s) | trained ${c.trained} | quarantined ${c.quarantined} | skipped ${c.skipped} | held-out accuracy ${pct(accuracy())} (300 mails)${eps} | model v${sidecar.status().modelVersion}`;
    process.stdout.write(tty && !final ? `\r${line}   ` : `${line}\n`);
  };
  const ticker = setInterval(() => progress(), tty ? 1000 : 3000);
  const chunk = Math.max(1, Math.round(opts.rate / 10));
  for (let i = 0; i < messages.length; i += chunk) {
    const t0 = Date.now();
    const part = messages.slice(i, i + chunk);
    await producer.send(config.topics.records, part);
    produced += part.length;
    const wait = 100 - (Date.now() - t0);
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  await producer.disconnect();
  // Wait until every produced message has an outcome, then make it durable.
  const deadline = Date.now() + 120_000;
  while (sidecar.status().counts.trained + sidecar.status().counts.quarantined + sidecar.status().counts.skipped < messages.length) {
    if (Date.now() > deadline) throw new TayguardError('INTERNAL', 'the sidecar did not finish the stream within 2 minutes; see its log (LOG_LEVEL=info)');
    await new Promise((r) => setTimeout(r, 200));
  }
  await sidecar.checkpoint();
  clearInterval(ticker);
  if (tty) process.stdout.write('\n');
  progress(true);

  const s = sidecar.status();
  const budget = (await (await fetch(`${base}/v1/privacy/budget`)).json()) as ReturnType<Sidecar['budget']>;
  process.stdout.write(
    [
      '',
      `done in ${((Date.now() - started) / 1000).toFixed(1)} s: ${messages.length} records (${mails.length} mails, ${bad} malformed)`,
      `  trained      ${s.counts.trained}`,
      `  quarantined  ${s.counts.quarantined}  ${JSON.stringify(s.counts.quarantineReasons)}`,
      `  skipped      ${s.counts.skipped}  ${JSON.stringify(s.counts.skipReasons)}`,
      `  held-out accuracy on ${test.length} unseen mails: ${pct(accuracy(test))}`,
      `  model version v${s.modelVersion} published under ${config.checkpoint.modelDir}`,
      `  privacy: ${budget.statement}`,
      budget.mechanism === 'none'
        ? ''
        : `           ${budget.mechanism.steps} DP-SGD steps, noise multiplier ${budget.mechanism.noiseMultiplier}, clip norm ${budget.mechanism.clipNorm}, sampling ${budget.mechanism.sampling}`,
      '',
      'where to look (while a sidecar runs): GET /metrics, GET /v1/privacy/budget, GET /v1/model, POST /v1/predict',
      `  e.g. curl -s ${base}/v1/model ; this demo stops its sidecar now. Run your own: npm run broker, then KAFKA_BROKERS=… npx tayguard serve`,
      '',
    ].join('\n'),
  );
  await sidecar.stop();
  await broker.stop();
}
