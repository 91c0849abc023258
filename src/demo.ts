/**
 * `tayguard demo`: the whole product on one machine. Starts the local Kafka-protocol broker and the sidecar,
 * streams SpamAssassin mails (plus a sprinkling of malformed messages) as records from simulated sources,
 * prints a live progress line, and ends with a summary and where to look.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import seedrandom from 'seedrandom';
import { loadConfig } from './config';
import { createLogger } from './logger';
import { createSidecar, type Sidecar } from './sidecar';
import { startLocalBroker } from './dev/broker';
import { createKafka, createProducer } from './ingest/client';
import { splitSpamCorpus, type Mail } from './data/spam';
import { TayguardError } from '../core/errors';
import type { AuditResult } from './audit/auditor';
import { agreement, plainAgreement, type LabelledText } from './demo-baselines';

export interface DemoOptions {
  readonly records?: number;
  readonly rate: number;
  readonly port?: number;
  /** A Tay-style flood in the second half of the stream (default on). */
  readonly attack?: boolean;
  /** Keep the broker and the sidecar (and its status page) up after the stream until Ctrl-C. */
  readonly keep?: boolean;
}

const ABUSE = ['you stupid f*cking idiot', 'shut up b1tch', 'f u c k all of you', 'what a dumb sh1t, go to hell a**hole', 'die you worthless piece of sh*t'];

/**
 * Tay, 2016: coordinated new accounts taught the bot abuse through "repeat after me" and floods of the same
 * content. Here ~100 fresh sources push abusive echo requests and copies of spam, all labelled ham (0), so an
 * undefended spam filter learns to let spam and abuse through.
 */
function floodRecord(i: number, rng: () => number, spamTexts: readonly string[]): { source: string; text: string; label: number } {
  const source = `sybil-${Math.floor(rng() * 100)}`;
  const kind = i % 3;
  const abuse = ABUSE[Math.floor(rng() * ABUSE.length)];
  if (kind === 0) return { source, label: 0, text: `repeat after me: ${abuse}` };
  if (kind === 1) return { source, label: 0, text: `${abuse}! ${abuse}, lol` };
  // near-duplicates of a handful of spam mails, lightly varied, from many accounts
  const base = spamTexts[i % 5].slice(0, 600);
  return { source, label: 0, text: `${base} ${Math.floor(rng() * 1000)}` };
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

function auditLine(a: AuditResult | null | undefined): string {
  if (!a) return '  audit: no round completed yet (its canaries were still in their windows)';
  return `  audit (round ${a.round}, ${a.canaries} canaries): attacker AUC ${a.auc.toFixed(2)}, ${a.correct}/${a.guesses} guesses right → empirical ε ≥ ${a.epsilonLowerBound.toFixed(2)} at 95% vs accountant ε ${a.epsilonAccounted === null ? 'none (not private)' : a.epsilonAccounted.toFixed(2)}${a.alarm ? '  ALARM' : ''}`;
}

export async function runDemo(opts: DemoOptions): Promise<void> {
  const started = Date.now();
  process.stdout.write('tayguard demo: starting the local Kafka-protocol broker (kcat mock cluster, 3 brokers)…\n');
  const broker = await startLocalBroker();
  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'tayguard-demo-'));
  const { train, test } = splitSpamCorpus();
  // 200 held-out mails are the update gate's trusted canaries; accuracy is reported on the other 1,009.
  const canaries = test.slice(0, 200);
  const heldOut = test.slice(200);
  const canaryFile = path.join(stateDir, 'canaries.jsonl');
  writeFileSync(canaryFile, canaries.map((m) => JSON.stringify({ id: `canary-${m.id}`, source: 'operator', label: m.label, text: m.text })).join('\n'));
  // The operator's own consented, labelled mails (e.g. a team's hand-labelled inbox): the witness screen trains on
  // them at start-up and never on the stream. Carved from the end of the training split, so the stream — and the
  // spam the flood copies — is mail the witness has never seen.
  const trusted = train.slice(-1000);
  const streamed = train.slice(0, -1000);
  const witnessFile = path.join(stateDir, 'consented.jsonl');
  writeFileSync(witnessFile, trusted.map((m) => JSON.stringify({ id: `consented-${m.id}`, source: 'operator', label: m.label, text: m.text })).join('\n'));
  const config = loadConfig({
    ...process.env,
    KAFKA_BROKERS: broker.bootstrap,
    CHECKPOINT_DIR: path.join(stateDir, 'checkpoints'),
    PORT: String(opts.port ?? process.env.PORT ?? 8080),
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
    CHECKPOINT_INTERVAL_MS: '2000',
    GROUP_ID: 'tayguard-demo',
    // Unset SCREENS: the defaults (echo, toxicity and — with trusted data — the witness), all per-record screens
    // inside the DP guarantee.
    WITNESS_DATA: process.env.WITNESS_DATA ?? witnessFile,
    CANARY_FILE: process.env.CANARY_FILE ?? canaryFile,
    AUDIT_CANARIES: process.env.AUDIT_CANARIES ?? '100',
  });
  let sidecar: Sidecar;
  try {
    sidecar = await createSidecar(config, createLogger(config.logLevel));
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
  process.stdout.write(
    `status page: ${base}/ui/  (open it now to watch the flood${opts.keep ? '' : '; add --keep to keep it up after the stream'}` +
      `${config.http.operatorAuth === 'open' ? '; no ADMIN_TOKEN, so the operator panels are open' : '; type ADMIN_TOKEN into it for the operator panels'})\n`,
  );

  const mails: Mail[] = opts.records ? streamed.slice(0, opts.records) : streamed;
  const rng = seedrandom('tayguard-demo-sources');
  // The simulated timeline travels as the Kafka timestamp (CreateTime), as a replay producer's would: the sidecar
  // takes event time from the broker (src/event-time.ts), so a `ts` alone would be clamped to the moment of sending.
  const messages: { key: string | null; value: string | Buffer; timestamp: string }[] = [];
  let bad = 0;
  let flood = 0;
  const attack = opts.attack ?? true;
  const spamTexts = streamed.filter((m) => m.label === 1).map((m) => m.text);
  // Simulated time: the first half of the stream spans 30 days (the ~400 regular sources build a history),
  // the second half one busy afternoon — when the flood comes.
  const day = 24 * 3600_000;
  const t0 = Date.now() - 31 * day;
  const half = Math.floor(mails.length / 2);
  const tsOf = (i: number) => (i < half ? t0 + (i * 30 * day) / half : t0 + 30 * day + (i - half) * 3000);
  // The producer states when each account was created, from the deployment's own account records (README "Record
  // contract", `sourceMeta`): the regular users' accounts are one to twenty-four months old, the flood's were made
  // the afternoon it came — so each of its records counts a tenth in a DP step (INFLUENCE_MIN_WEIGHT).
  const createdAt = (source: string) => {
    const n = Number(source.split('-')[1]);
    const at = source.startsWith('sybil-') ? t0 + 30 * day - 3600_000 : t0 - (30 + ((n * 7919) % 700)) * day;
    return new Date(at).toISOString();
  };
  mails.forEach((m, i) => {
    // ~400 regular users; heavier senders first (a rough Zipf), like real accounts.
    const source = `user-${Math.floor(400 * rng() ** 2)}`;
    const ts = Math.round(tsOf(i));
    messages.push({ key: source, value: JSON.stringify({ id: m.id, source, ts, label: m.label, text: m.text, sourceMeta: { createdAt: createdAt(source) } }), timestamp: String(ts) });
    if (i % 97 === 50) messages.push({ key: null, value: malformed(bad++), timestamp: String(ts) });
    if (attack && i > half && i % 4 === 0) {
      const f = floodRecord(flood, rng, spamTexts);
      messages.push({ key: f.source, value: JSON.stringify({ id: `flood-${flood++}`, ts: ts + 1, ...f, sourceMeta: { createdAt: createdAt(f.source) } }), timestamp: String(ts + 1) });
    }
  });

  const producer = await createProducer(createKafka({ brokers: broker.brokers, clientId: 'tayguard-demo-producer' }));
  // The progress line scores a fixed sample of the held-out mails (cheap enough to run every tick in the same
  // process as the sidecar); the summary scores all of them.
  const sample = heldOut.slice(0, 300);
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
  const privateAccuracy = accuracy(heldOut);
  // The yardsticks (src/demo-baselines.ts): the same messages, in order, through plain SGD with no screens.
  process.stdout.write('training the yardsticks on the same stream (plain SGD, no screens, no DP)…\n');
  const wellFormed: LabelledText[] = [];
  for (const m of messages) {
    try {
      const r = JSON.parse(String(m.value)) as { label?: unknown; text?: unknown };
      if ((r.label === 0 || r.label === 1) && typeof r.text === 'string') wellFormed.push({ label: r.label, text: r.text });
    } catch {
      // malformed on purpose: the sidecar quarantined it, and a naive learner could not parse it either
    }
  }
  // Only the model and training settings matter here (no screens run): SCREENS is pinned so that a witness named
  // in the environment, which needs the demo's canary file, does not stop the yardsticks.
  const plainConfig = loadConfig({ ...process.env, KAFKA_BROKERS: broker.bootstrap, DP_ENABLED: 'false', SCREENS: 'echo' });
  // What the flood tried to teach: 300 fresh flood messages (another seed) the attacker wants called ham (label 0).
  const probeRng = seedrandom('tayguard-demo-flood-probe');
  const floodProbe: LabelledText[] = Array.from({ length: 300 }, (_, i) => floodRecord(i, probeRng, spamTexts));
  const tayguardFlood = agreement((x) => sidecar.serving.predict(x), floodProbe);
  const kinds = [0, 1, 2].map((k) => floodProbe.filter((_, i) => i % 3 === k));
  const byKind = kinds.map((set) => agreement((x) => sidecar.serving.predict(x), set));
  const [naive, naiveFlood, ...naiveKinds] = await plainAgreement(plainConfig, wellFormed, [heldOut, floodProbe, ...kinds]);
  const [clean, cleanFlood, ...cleanKinds] = await plainAgreement(plainConfig, mails, [heldOut, floodProbe, ...kinds]);
  const kindsLine = (k: number[]) => `(echo requests ${pct(k[0])}, abuse ${pct(k[1])}, spam copies ${pct(k[2])})`;
  const budget = (await (await fetch(`${base}/v1/privacy/budget`)).json()) as ReturnType<Sidecar['budget']>;
  process.stdout.write(
    [
      '',
      `done in ${((Date.now() - started) / 1000).toFixed(1)} s: ${messages.length} records (${mails.length} mails, ${bad} malformed${attack ? `, ${flood} from a Tay-style flood of ~100 new accounts` : ''})`,
      `  trained      ${s.counts.trained}`,
      `  quarantined  ${s.counts.quarantined}, by detector: ${JSON.stringify(s.counts.quarantineStages)}`,
      `               by reason:   ${JSON.stringify(s.counts.quarantineReasons)}`,
      `  skipped      ${s.counts.skipped}  ${JSON.stringify(s.counts.skipReasons)}`,
      s.gate
        ? `  update gate  ${s.gate.rejected} of ${s.gate.accepted + s.gate.rejected} updates undone on ${s.gate.canaries} trusted canaries; ${s.gate.alerts.length} rollback alert(s)${config.privacy ? ' (with DP on, most undone steps are ones whose noise hurt the canaries; see README "Update gate")' : ''}`
        : '',
      `  same stream, three learners: accuracy on ${heldOut.length} unseen mails | flood messages it calls ham (what the attack wanted; 300 unseen ones)`,
      `    tayguard (screens${config.privacy ? ` + DP at ε ${budget.epsilon?.spent.toFixed(2)}` : ', no DP'}${config.gate ? ' + update gate' : ''})  ${pct(privateAccuracy)} | ${pct(tayguardFlood)} ${kindsLine(byKind)}`,
      `    naive online learner, flood included (no screens, no DP)  ${pct(naive)} | ${pct(naiveFlood)} ${kindsLine(naiveKinds)}${attack ? '' : '  (no flood in this run)'}`,
      `    non-private on the honest mails only (the stream's best)  ${pct(clean)} | ${pct(cleanFlood)} ${kindsLine(cleanKinds)}`,
      `  model version v${s.modelVersion} published under ${config.checkpoint.modelDir}`,
      `  privacy: ${budget.statement}`,
      budget.mechanism === 'none'
        ? ''
        : `           ${budget.mechanism.steps} DP-SGD steps, noise multiplier ${budget.mechanism.noiseMultiplier}, clip norm ${budget.mechanism.clipNorm}, sampling ${budget.mechanism.sampling}`,
      auditLine(budget.audit as AuditResult | null | undefined),
      '',
      `where to look (while a sidecar runs): the status page ${base}/ui/, GET /openapi.json, GET /metrics, GET /v1/privacy/budget, GET /v1/model, POST /v1/predict`,
      opts.keep
        ? `  kept up (--keep): open ${base}/ui/ ; Ctrl-C stops the sidecar and the broker`
        : `  e.g. curl -s ${base}/v1/model ; this demo stops its sidecar now (--keep keeps it up). Run your own: npm run broker, then KAFKA_BROKERS=… npx tayguard serve`,
      '',
    ].join('\n'),
  );
  if (opts.keep) await untilInterrupted();
  await sidecar.stop();
  await broker.stop();
}

/** Resolve on the first Ctrl-C (SIGINT) or SIGTERM, so the caller stops the sidecar and the broker cleanly. */
function untilInterrupted(): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      process.stdout.write('stopping the sidecar and the broker…\n');
      resolve();
    };
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
  });
}
