/**
 * npm run bench:attacks — the attack benchmarks (issue "Poisoning and Tay-style attack screening", item 5).
 *
 * An online spam filter on SpamAssassin: the real Sidecar, in this process, consuming from the local
 * Kafka-protocol broker (one broker for the whole bench; a fresh TOPIC_PREFIX, GROUP_ID and CHECKPOINT_DIR per
 * run), fed a stream from ~300 established sources with a realistic event-time timeline (bench/attack-scenarios.ts)
 * and, per scenario, an attack mixed in. Each stream is run with the poisoning screens off (SCREENS=none) and on
 * (DEFENDED_SCREENS + SCREENS_CONFIG below), and the last checkpointed model is scored on the held-out clean test
 * split. The clean stream with the screens on gives the false quarantine rate.
 *
 * Records are produced with one fixed key (not the source: the sidecar takes the source from the record's
 * `source` field), so they all land on one partition, in chunks only as fast as the sidecar consumes them: the
 * sidecar sees exactly the stream's order (with several partitions it would read them partition by partition
 * and event time would jump back and forth) and the local broker's ~5 MB per-partition retention never drops one.
 *
 * Flags: --json (print only the JSON object), --quick (half the training mails, no DP table: for iterating),
 *        --only A,B5,… (run only these streams; the clean pair always runs), --no-dp (skip the DP table).
 * Writes bench/results/attacks.json and bench/results/attacks.md (not with --quick or --only).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadConfig } from '../src/config';
import { createLogger } from '../src/logger';
import { Sidecar } from '../src/sidecar';
import { startLocalBroker } from '../src/dev/broker';
import { createKafka, createProducer } from '../src/kafka/client';
import { splitSpamCorpus, HAM, SPAM, type Mail } from '../src/data/spam';
import { tokenize } from '../middleware/featurize';
import type { Verdict } from '../filters/types';
import {
  backdoor,
  cleanStream,
  dictionaryAttack,
  labelFlips,
  sybilFlood,
  withTrigger,
  DEFAULT_BACKDOOR,
  DEFAULT_DICTIONARY,
  DEFAULT_FLOOD,
  type Stream,
} from './attack-scenarios';

const args = process.argv.slice(2);
const json = args.includes('--json');
const quick = args.includes('--quick');
const noDp = args.includes('--no-dp') || quick;
/** Iterating on screen settings: skip the undefended runs (their figures are reported as 0). */
const onOnly = args.includes('--on-only');
const onlyArg = args.indexOf('--only');
const only = onlyArg >= 0 ? new Set(args[onlyArg + 1].split(',')) : undefined;
const say = (s: string) => json || process.stderr.write(`${s}\n`);

/** The screens the defended runs use, and their settings (recommended defaults: see the report in attacks.md). */
// rare-token (backdoor triggers) runs with its defaults: ≥ 10 sources within an hour of a never-seen token's first
// use, ≥ 90% one label (filters/rare-token.ts; 0 of the clean stream's records flagged in the offline sweep).
export const DEFENDED_SCREENS = process.env.ATTACKS_SCREENS ?? 'rate-caps,echo,toxicity,campaign,rare-token,label-consistency';
export const SCREENS_CONFIG: Record<string, unknown> = process.env.ATTACKS_SCREENS_CONFIG
  ? (JSON.parse(process.env.ATTACKS_SCREENS_CONFIG) as Record<string, unknown>)
  : {
      // Tay-style abuse is taught as acceptable (ham): check only ham-labelled records, first 1,000 characters.
      toxicity: { labels: [0], maxChars: 1000 },
      // Shorter MinHash input (cost); a burst needs 75% (not 90%) of new sources on one label — real new users
      // keep arriving during a flood and dilute the sybils' share; the z ≥ 4 test still guards clean traffic.
      campaign: { maxTokens: 200, burst: { minShare: 0.75 } },
      // The hashed-text model is rarely 90% sure (SGD, L2-normalised rows): act from 70% and loss > 1.2.
      labelConsistency: { minConfidence: 0.7, minLoss: 1.2, quantile: 0.98 },
    };

const SEED = '1';
const CHECKPOINT_EVERY = process.env.ATTACKS_CHECKPOINT_EVERY ?? '2000';
const CHUNK = 500;
/** One key for every record, so all land on one partition (the local broker cannot create topics with one partition). */
const STREAM_KEY = 'attack-bench';

interface Eval {
  accuracy: number;
  hamAsSpam: number;
  spamAsHam: number;
  triggeredSpamAsHam: number;
}

interface RunResult extends Eval {
  records: number;
  trained: number;
  quarantined: number;
  poisonAdmitted: number | null;
  cleanQuarantined: number;
  quarantineByStage: Record<string, { poison: number; clean: number }>;
  screenMicros: number;
  screenMicrosByStage: Record<string, number>;
  trainMicros: number;
  seconds: number;
  /** Sidecar wall time per record, first handled record → final checkpoint (Kafka, screens, training, checkpoints). */
  wallMicros: number;
  dp: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const r4 = (x: number) => Number(x.toFixed(4));

async function main() {
  const t0 = Date.now();
  const split = splitSpamCorpus();
  const train: Mail[] = quick ? split.train.slice(0, Math.round(split.train.length / 2)) : split.train;
  const test = split.test;
  const trigger = DEFAULT_BACKDOOR.trigger;
  if ([...train, ...test].some((m) => tokenize(m.text).includes(trigger))) throw new Error(`trigger ${trigger} occurs in the corpus`);
  const testPayloads = test.map((m) => ({ text: m.text }));
  const testSpam = test.filter((m) => m.label === SPAM);
  const triggered = testSpam.map((m) => ({ text: withTrigger(m.text, DEFAULT_BACKDOOR) }));

  const broker = await startLocalBroker();
  const kafka = createKafka({ brokers: broker.brokers, clientId: 'bench-attacks' });
  const producer = await createProducer(kafka);
  const logger = createLogger('error');
  let runNo = 0;

  async function run(stream: Stream, defended: boolean, dp: boolean): Promise<RunResult> {
    const started = Date.now();
    const prefix = `attacks-${process.pid}-${++runNo}-${stream.name}-${defended ? 'on' : 'off'}${dp ? '-dp' : ''}`;
    const topic = `${prefix}.records`;
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tayguard-attacks-'));
    const config = loadConfig({
      KAFKA_BROKERS: broker.bootstrap,
      TOPIC_PREFIX: prefix,
      GROUP_ID: prefix,
      CHECKPOINT_DIR: dir,
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'error',
      SEED,
      DP_ENABLED: dp ? 'true' : 'false',
      DP_SEED: dp ? SEED : undefined,
      // Checkpoints (and so the serving model that label-consistency asks) only every 2,000 records, never by
      // the clock: the run is then the same whatever the machine's speed.
      CHECKPOINT_INTERVAL_MS: '3600000',
      CHECKPOINT_EVERY_RECORDS: CHECKPOINT_EVERY,
      SCREENS: defended ? DEFENDED_SCREENS : 'none',
      SCREENS_CONFIG: defended ? JSON.stringify(SCREENS_CONFIG) : undefined,
    });
    const sidecar = new Sidecar({ config, logger });
    await sidecar.init();
    // Time every screen and note which records each one quarantined (the wrapper sits around the chain's own).
    const quarantinedBy = new Map<string, string>();
    const micros: Record<string, number> = {};
    for (const d of sidecar.screens.detectors) {
      const inner = d.screen.bind(d);
      micros[d.name] = 0;
      (d as { screen: typeof d.screen }).screen = (record, raw): Verdict => {
        const s = process.hrtime.bigint();
        const v = inner(record, raw);
        micros[d.name] += Number(process.hrtime.bigint() - s) / 1e3;
        if (v.kind === 'quarantine') quarantinedBy.set(record.id, d.name);
        return v;
      };
    }
    await sidecar.start();
    const handled = () => {
      const c = sidecar.status().counts;
      return c.trained + c.quarantined + c.skipped;
    };
    const items = stream.items;
    let first: bigint | undefined;
    for (let i = 0; i < items.length; i += CHUNK) {
      while (handled() < i - CHUNK) await sleep(5);
      if (first === undefined && handled() > 0) first = process.hrtime.bigint();
      await producer.send(topic, items.slice(i, i + CHUNK).map((x) => ({ key: STREAM_KEY, value: JSON.stringify(x.record) })));
    }
    while (handled() < items.length) {
      if (first === undefined && handled() > 0) first = process.hrtime.bigint();
      await sleep(5);
    }
    await sidecar.checkpoint();
    const wallMicros = Number(process.hrtime.bigint() - (first ?? process.hrtime.bigint())) / 1e3 / items.length;
    const counts = sidecar.status().counts;
    sidecarBackend = sidecar.status().backend;
    const stepHist = (await sidecar.metrics.stepSeconds.get()).values.find((v) => v.metricName?.endsWith('_sum'))?.value ?? 0;

    // Score the served (last checkpointed) model on the held-out clean split.
    const predict = (payloads: { text: string }[]) => {
      const out: number[][] = [];
      for (let i = 0; i < payloads.length; i += 256) out.push(...sidecar.serving.predict(payloads.slice(i, i + 256)));
      return out;
    };
    const probs = predict(testPayloads);
    let correct = 0;
    let hamN = 0;
    let hamWrong = 0;
    let spamN = 0;
    let spamWrong = 0;
    test.forEach((m, i) => {
      const y = probs[i][SPAM] >= 0.5 ? SPAM : HAM;
      if (y === m.label) correct++;
      if (m.label === HAM) {
        hamN++;
        if (y !== HAM) hamWrong++;
      } else {
        spamN++;
        if (y !== SPAM) spamWrong++;
      }
    });
    const trig = predict(triggered);
    const trigHam = trig.filter((p) => p[SPAM] < 0.5).length / testSpam.length;
    await sidecar.stop();
    rmSync(dir, { recursive: true, force: true });

    const byStage: Record<string, { poison: number; clean: number }> = {};
    let poisonQ = 0;
    let cleanQ = 0;
    for (const x of items) {
      const stage = quarantinedBy.get(x.record.id);
      if (!stage) continue;
      byStage[stage] ??= { poison: 0, clean: 0 };
      if (x.poison) {
        byStage[stage].poison++;
        poisonQ++;
      } else {
        byStage[stage].clean++;
        cleanQ++;
      }
    }
    if (poisonQ + cleanQ !== counts.quarantined) throw new Error(`${prefix}: ${counts.quarantined} quarantined by the sidecar, ${poisonQ + cleanQ} seen by the screens`);
    const screenTotal = Object.values(micros).reduce((a, b) => a + b, 0);
    const result: RunResult = {
      records: items.length,
      trained: counts.trained,
      quarantined: counts.quarantined,
      accuracy: r4(correct / test.length),
      hamAsSpam: r4(hamWrong / hamN),
      spamAsHam: r4(spamWrong / spamN),
      triggeredSpamAsHam: r4(trigHam),
      poisonAdmitted: stream.poisonCount > 0 ? r4(1 - poisonQ / stream.poisonCount) : null,
      cleanQuarantined: r4(cleanQ / (items.length - stream.poisonCount)),
      quarantineByStage: byStage,
      screenMicros: Number((screenTotal / items.length).toFixed(1)),
      screenMicrosByStage: Object.fromEntries(Object.entries(micros).map(([k, v]) => [k, Number((v / items.length).toFixed(1))])),
      trainMicros: Number(((stepHist * 1e6) / Math.max(1, counts.trained)).toFixed(1)),
      seconds: Number(((Date.now() - started) / 1000).toFixed(1)),
      wallMicros: Number(wallMicros.toFixed(1)),
      dp,
    };
    say(
      `  ${stream.name.padEnd(6)} ${defended ? 'defended  ' : 'undefended'}${dp ? ' DP' : '   '}  acc ${(100 * result.accuracy).toFixed(1)}%  ham→spam ${(100 * result.hamAsSpam).toFixed(1)}%  spam→ham ${(100 * result.spamAsHam).toFixed(1)}%  trig-spam→ham ${(100 * result.triggeredSpamAsHam).toFixed(1)}%  quarantined ${counts.quarantined} (poison admitted ${result.poisonAdmitted ?? '—'}, clean quarantined ${(100 * result.cleanQuarantined).toFixed(2)}%)  ${JSON.stringify(byStage)}  screen ${result.screenMicros} µs/rec ${JSON.stringify(result.screenMicrosByStage)}, train ${result.trainMicros} µs/rec, wall ${result.wallMicros} µs/rec  [${result.seconds} s]`,
    );
    return result;
  }

  const streams: Stream[] = [
    sybilFlood(train, DEFAULT_FLOOD),
    dictionaryAttack(train, { ...DEFAULT_DICTIONARY, poisonFraction: 0.01 }),
    dictionaryAttack(train, { ...DEFAULT_DICTIONARY, poisonFraction: 0.05 }),
    labelFlips(train),
    backdoor(train),
  ].filter((s) => !only || only.has(s.name));

  const clean = cleanStream(train);
  say(`clean stream: ${clean.items.length} records; test split ${test.length} mails (${testSpam.length} spam)`);
  const on0 = (s: Stream): RunResult => ({ records: s.items.length, trained: 0, quarantined: 0, accuracy: 0, hamAsSpam: 0, spamAsHam: 0, triggeredSpamAsHam: 0, poisonAdmitted: 1, cleanQuarantined: 0, quarantineByStage: {}, screenMicros: 0, screenMicrosByStage: {}, trainMicros: 0, seconds: 0, wallMicros: 0, dp: false });
  const cleanOff = onOnly ? on0(clean) : await run(clean, false, false);
  const cleanOn = await run(clean, true, false);

  const attackSuccess = (s: Stream, r: RunResult) =>
    s.name === 'A' ? r.spamAsHam : s.name.startsWith('B') ? r.hamAsSpam : s.name === 'C' ? (r.poisonAdmitted ?? 0) : r.triggeredSpamAsHam;
  const scenarios = [];
  const all: RunResult[] = [cleanOff, cleanOn];
  for (const s of streams) {
    say(`${s.name}: ${s.description}`);
    const off = onOnly ? on0(s) : await run(s, false, false);
    const on = await run(s, true, false);
    all.push(off, on);
    scenarios.push({
      name: s.name,
      description: s.description,
      attackSuccessDefinition: s.attackSuccess,
      records: s.items.length,
      poisonRecords: s.poisonCount,
      poisonFraction: r4(s.poisonCount / s.items.length),
      undefended: { accuracy: off.accuracy, hamAsSpam: off.hamAsSpam, spamAsHam: off.spamAsHam, attackSuccess: attackSuccess(s, off) },
      defended: {
        accuracy: on.accuracy,
        hamAsSpam: on.hamAsSpam,
        spamAsHam: on.spamAsHam,
        attackSuccess: attackSuccess(s, on),
        poisonAdmitted: on.poisonAdmitted,
        cleanQuarantined: on.cleanQuarantined,
        quarantineByStage: on.quarantineByStage,
      },
    });
  }

  let dpTable: unknown;
  const flood = streams.find((s) => s.name === 'A');
  if (!noDp && flood) {
    say('DP on (defaults, DP_SEED=1), scenario A:');
    const c = await run(clean, false, true);
    const off = await run(flood, false, true);
    const on = await run(flood, true, true);
    dpTable = {
      clean: { accuracy: c.accuracy, hamAsSpam: c.hamAsSpam },
      A: {
        undefended: { accuracy: off.accuracy, hamAsSpam: off.hamAsSpam, attackSuccess: off.spamAsHam },
        defended: { accuracy: on.accuracy, hamAsSpam: on.hamAsSpam, attackSuccess: on.spamAsHam, poisonAdmitted: on.poisonAdmitted, quarantineByStage: on.quarantineByStage },
      },
    };
  }

  await producer.disconnect();
  await broker.stop();

  // Costs from the defended runs: screening (all stages, in the sidecar) vs training (step time per trained record).
  const defendedRuns = all.filter((r) => Object.keys(r.screenMicrosByStage).length > 1 && !r.dp);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  const screenMicrosByStage: Record<string, number> = {};
  for (const r of defendedRuns) for (const [k, v] of Object.entries(r.screenMicrosByStage)) screenMicrosByStage[k] = (screenMicrosByStage[k] ?? 0) + v / defendedRuns.length;
  const commandFlags = args.filter((a) => a !== '--json').join(' ');
  const result = {
    clean: {
      accuracy: cleanOff.accuracy,
      hamAsSpam: cleanOff.hamAsSpam,
      spamAsHam: cleanOff.spamAsHam,
      triggeredSpamAsHam: cleanOff.triggeredSpamAsHam,
      falseQuarantineRate: cleanOn.cleanQuarantined,
      defended: { accuracy: cleanOn.accuracy, hamAsSpam: cleanOn.hamAsSpam, quarantineByStage: cleanOn.quarantineByStage },
      records: clean.items.length,
    },
    scenarios,
    ...(dpTable ? { dp: dpTable } : {}),
    screenMicrosPerRecord: Number(mean(defendedRuns.map((r) => r.screenMicros)).toFixed(1)),
    screenMicrosByStage: Object.fromEntries(Object.entries(screenMicrosByStage).map(([k, v]) => [k, Number(v.toFixed(1))])),
    trainMicrosPerRecord: Number(mean(all.filter((r) => r.trainMicros > 0 && !r.dp).map((r) => r.trainMicros)).toFixed(1)),
    settings: {
      SCREENS_undefended: 'none',
      SCREENS: DEFENDED_SCREENS,
      SCREENS_CONFIG,
      DP_ENABLED: false,
      SEED,
      CHECKPOINT_INTERVAL_MS: 3600000,
      CHECKPOINT_EVERY_RECORDS: Number(CHECKPOINT_EVERY),
      model: 'text logistic regression, 2^14 hashed features, BATCH_SIZE 64, LEARNING_RATE 5 (defaults)',
      stream: '300 established sources (history over the 10 days before the live phase, 40% of the mails), live phase at 1 record / 2 s of event time, 5% of live clean mails from new users; attacks in the last 50% of the live stream',
      trainMails: train.length,
      testMails: test.length,
    },
    backend: sidecarBackend,
    cores: os.cpus().length,
    node: process.version,
    date: new Date().toISOString(),
    seconds: Math.round((Date.now() - t0) / 1000),
    command: `npm run bench:attacks${commandFlags ? ` -- ${commandFlags}` : ''}`,
  };
  if (!quick && !only && !onOnly) {
    writeFileSync(path.join(__dirname, 'results', 'attacks.json'), `${JSON.stringify(result, null, 2)}\n`);
    writeFileSync(path.join(__dirname, 'results', 'attacks.md'), markdown(result));
  }
  if (json) process.stdout.write(`${JSON.stringify(result)}\n`);
  else say(`done in ${result.seconds} s${!quick && !only ? '; written to bench/results/attacks.json and attacks.md' : ''}`);
}

let sidecarBackend = 'unknown';

const pct = (x: number | null | undefined) => (x === null || x === undefined ? '—' : `${(100 * x).toFixed(1)}%`);

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function markdown(r: any): string {
  const lines: string[] = [];
  lines.push('# Attack benchmarks', '');
  lines.push(`\`${r.command}\` — ${r.date}, ${r.cores} cores, ${r.backend} backend, Node ${r.node}, ${r.seconds} s. Plain SGD (DP_ENABLED=false), SEED=${r.settings.SEED}.`, '');
  lines.push(`Stream: ${r.settings.stream}. Scored on the ${r.settings.testMails} held-out mails of the fixed SpamAssassin split.`, '');
  lines.push(`Undefended: \`SCREENS=none\`. Defended: \`SCREENS=${r.settings.SCREENS}\`, \`SCREENS_CONFIG=${JSON.stringify(r.settings.SCREENS_CONFIG)}\`.`, '');
  lines.push(`Clean stream (${r.clean.records} records): accuracy ${pct(r.clean.accuracy)}, ham→spam ${pct(r.clean.hamAsSpam)}, spam→ham ${pct(r.clean.spamAsHam)}, triggered spam→ham ${pct(r.clean.triggeredSpamAsHam)}; with the screens on: accuracy ${pct(r.clean.defended.accuracy)}, **false quarantine ${pct(r.clean.falseQuarantineRate)}** of clean records (${JSON.stringify(r.clean.defended.quarantineByStage)}).`, '');
  lines.push('| scenario | poison | accuracy off → on | ham→spam off → on | attack success off → on | poison admitted (on) | clean quarantined (on) | quarantined by stage (poison/clean) |');
  lines.push('|---|---|---|---|---|---|---|---|');
  for (const s of r.scenarios) {
    const stages = Object.entries(s.defended.quarantineByStage as Record<string, { poison: number; clean: number }>)
      .map(([k, v]) => `${k} ${v.poison}/${v.clean}`)
      .join(', ');
    lines.push(
      `| ${s.name} | ${pct(s.poisonFraction)} (${s.poisonRecords}) | ${pct(s.undefended.accuracy)} → ${pct(s.defended.accuracy)} | ${pct(s.undefended.hamAsSpam)} → ${pct(s.defended.hamAsSpam)} | ${pct(s.undefended.attackSuccess)} → ${pct(s.defended.attackSuccess)} | ${pct(s.defended.poisonAdmitted)} | ${pct(s.defended.cleanQuarantined)} | ${stages || '—'} |`,
    );
  }
  lines.push('', 'Scenarios and attack success:', '');
  for (const s of r.scenarios) lines.push(`- **${s.name}** — ${s.description}. Attack success: ${s.attackSuccessDefinition}.`);
  if (r.dp) {
    lines.push('', '## With DP on (defaults, DP_SEED=1), scenario A', '');
    lines.push('| run | accuracy | ham→spam | attack success (spam→ham) | poison admitted |', '|---|---|---|---|---|');
    lines.push(`| clean, undefended | ${pct(r.dp.clean.accuracy)} | ${pct(r.dp.clean.hamAsSpam)} | — | — |`);
    lines.push(`| A, undefended | ${pct(r.dp.A.undefended.accuracy)} | ${pct(r.dp.A.undefended.hamAsSpam)} | ${pct(r.dp.A.undefended.attackSuccess)} | — |`);
    lines.push(`| A, defended | ${pct(r.dp.A.defended.accuracy)} | ${pct(r.dp.A.defended.hamAsSpam)} | ${pct(r.dp.A.defended.attackSuccess)} | ${pct(r.dp.A.defended.poisonAdmitted)} |`);
  }
  lines.push('', `Cost per record (defended runs, inside the sidecar): screening ${r.screenMicrosPerRecord} µs (${Object.entries(r.screenMicrosByStage).map(([k, v]) => `${k} ${v}`).join(', ')}), training ${r.trainMicrosPerRecord} µs (step time per trained record, plain SGD).`, '');
  return `${lines.join('\n')}\n`;
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack}\n`);
  process.exit(1);
});
