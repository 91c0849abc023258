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
 *        --only A,B5,… (run only these streams; the clean pair always runs), --no-dp (skip the DP table),
 *        --seeds N (repetitions, default 3: each seed another stream order and model initialisation),
 *        --no-gate (skip the runs with the update gate on top of the screens).
 * Writes bench/results/attacks.json and bench/results/attacks.md (not with --quick or --only).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadConfig } from '../src/config';
import { createLogger } from '../src/logger';
import { createSidecar } from '../src/sidecar';
import { startLocalBroker } from '../src/dev/broker';
import { createKafka, createProducer } from '../src/ingest/client';
import { shuffled, splitSpamCorpus, HAM, SPAM, type Mail } from '../src/data/spam';
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
  DEFAULT_FLIP,
  DEFAULT_FLOOD,
  DEFAULT_STREAM,
  type Stream,
  type StreamOptions,
} from './attack-scenarios';

const args = process.argv.slice(2);
const json = args.includes('--json');
const quick = args.includes('--quick');
const noDp = args.includes('--no-dp') || quick;
/**
 * The update gate's runs: the gate alone (no screens) on 200 trusted canaries, to see what RONI and rollback catch
 * by themselves — behind the screens they have almost nothing left (0–2 of ~77 steps undone in every run, with the
 * screens on, of a full run on 2026-11-22, before the gate judged between checkpoints). Skip with --no-gate.
 */
const withGate = !args.includes('--no-gate');
/** Iterating on screen settings: skip the undefended runs (their figures are reported as 0). */
const onOnly = args.includes('--on-only');
const onlyArg = args.indexOf('--only');
const seedsArg = args.indexOf('--seeds');
/**
 * Repetitions: each seed is another stream (training mails in another order, other source assignments, other
 * attack draws) and another model initialisation. One run of a 75-step online learner is one trajectory: removing
 * 23 of 4,837 records moved spam→ham by 3.5 points in one run, so figures are means over seeds, with their spread.
 */
const SEEDS = seedsArg >= 0 ? Number(args[seedsArg + 1]) : quick ? 1 : 3;
if (!(Number.isInteger(SEEDS) && SEEDS >= 1 && SEEDS <= 20)) throw new Error('--seeds takes a whole number from 1 to 20');
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
      // Near-duplicates are screened only when labelled ham: many users reporting one spam run as spam is the
      // filter working (2 seeds: clean false quarantine 1.8% → 1.5%, flood figures unchanged).
      campaign: { maxTokens: 200, labels: [0], burst: { minShare: 0.75 } },
      // The hashed-text model is rarely 90% sure (SGD, L2-normalised rows): act from 70% and loss > 1.2.
      labelConsistency: { minConfidence: 0.7, minLoss: 1.2, quantile: 0.98 },
    };

/** The served model: the sidecar's default moving average of the weights, or ATTACKS_AVERAGE_DECAY (0 = the last iterate). */
const AVERAGE_DECAY = process.env.ATTACKS_AVERAGE_DECAY;
const SERVED_DECAY = loadConfig({ KAFKA_BROKERS: 'localhost:9092', AVERAGE_DECAY }).training.averageDecay;
/** A run with another served model writes its own results files, next to the defaults' ones. */
const RESULTS_NAME = AVERAGE_DECAY === undefined ? 'attacks' : `attacks-average-decay-${SERVED_DECAY}`;
const CHECKPOINT_EVERY = process.env.ATTACKS_CHECKPOINT_EVERY ?? '2000';
const CHUNK = 500;
/** Trusted canaries for the update gate's runs, taken from the held-out split (scoring uses the rest). */
const GATE_CANARIES = 200;
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
  /** With the update gate: steps it undid, steps it let stand, rollbacks. */
  gate: { undone: number; kept: number; rollbacks: number } | null;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const r4 = (x: number) => Number(x.toFixed(4));

async function main() {
  const t0 = Date.now();
  const split = splitSpamCorpus();
  const train: Mail[] = quick ? split.train.slice(0, Math.round(split.train.length / 2)) : split.train;
  // 200 of the held-out mails are the update gate's trusted canaries (the demo does the same); every run, gated or
  // not, is scored on the other 1,009, so the columns compare.
  const heldOut = shuffled(split.test, 'tayguard-attacks-canaries');
  const canaries = heldOut.slice(0, GATE_CANARIES);
  const test = heldOut.slice(GATE_CANARIES);
  const canaryFile = path.join(mkdtempSync(path.join(os.tmpdir(), 'tayguard-canaries-')), 'canaries.jsonl');
  writeFileSync(canaryFile, canaries.map((m, i) => JSON.stringify({ id: `canary-${i}`, source: 'trusted-canaries', label: m.label, text: m.text })).join('\n'));
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

  async function run(stream: Stream, defended: boolean, dp: boolean, seed: number, gate = false): Promise<RunResult> {
    const SEED = String(seed);
    const started = Date.now();
    const prefix = `attacks-${process.pid}-${++runNo}-s${seed}-${stream.name}-${defended ? 'on' : 'off'}${gate ? '-gate' : ''}${dp ? '-dp' : ''}`;
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
      AVERAGE_DECAY: AVERAGE_DECAY,
      SCREENS: defended ? DEFENDED_SCREENS : 'none',
      SCREENS_CONFIG: defended ? JSON.stringify(SCREENS_CONFIG) : undefined,
      CANARY_FILE: gate ? canaryFile : undefined,
    });
    const sidecar = await createSidecar(config, logger);
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
      // The simulated timeline is the records' event time: replayed history carries it as the Kafka timestamp too
      // (CreateTime), as a replay producer would — the sidecar takes event time from the broker (src/event-time.ts).
      await producer.send(topic, items.slice(i, i + CHUNK).map((x) => ({ key: STREAM_KEY, value: JSON.stringify(x.record), timestamp: String(x.record.ts) })));
    }
    while (handled() < items.length) {
      if (first === undefined && handled() > 0) first = process.hrtime.bigint();
      await sleep(5);
    }
    await sidecar.checkpoint();
    const wallMicros = Number(process.hrtime.bigint() - (first ?? process.hrtime.bigint())) / 1e3 / items.length;
    const counts = sidecar.status().counts;
    const gateStats = sidecar.gate ? { undone: sidecar.gate.rejected, kept: sidecar.gate.accepted, rollbacks: sidecar.gate.alerts.length } : null;
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
      gate: gateStats,
    };
    say(
      `  s${seed} ${stream.name.padEnd(6)} ${gate ? (defended ? 'def+gate  ' : 'gate only ') : defended ? 'defended  ' : 'undefended'}${dp ? ' DP' : '   '}  acc ${(100 * result.accuracy).toFixed(1)}%  ham→spam ${(100 * result.hamAsSpam).toFixed(1)}%  spam→ham ${(100 * result.spamAsHam).toFixed(1)}%  trig-spam→ham ${(100 * result.triggeredSpamAsHam).toFixed(1)}%  quarantined ${counts.quarantined} (poison admitted ${result.poisonAdmitted ?? '—'}, clean quarantined ${(100 * result.cleanQuarantined).toFixed(2)}%)  ${JSON.stringify(byStage)}  screen ${result.screenMicros} µs/rec ${JSON.stringify(result.screenMicrosByStage)}, train ${result.trainMicros} µs/rec, wall ${result.wallMicros} µs/rec  [${result.seconds} s]`,
    );
    if (gateStats) say(`           gate: ${gateStats.undone} of ${gateStats.undone + gateStats.kept} steps undone, ${gateStats.rollbacks} rollback(s)`);
    return result;
  }

  /** One repetition: every stream of the seed, defences off and on (and the DP table for the first seed). */
  async function repetition(seed: number) {
    // Seed 1 is the corpus split's own order and the scenarios' default draws (the figures of earlier reports).
    const order = seed === 1 ? train : shuffled(train, `tayguard-attacks-order/${seed}`);
    const o: StreamOptions = seed === 1 ? DEFAULT_STREAM : { ...DEFAULT_STREAM, seed: `tayguard-attacks/${seed}` };
    const streams: Stream[] = [
      sybilFlood(order, DEFAULT_FLOOD, o),
      dictionaryAttack(order, { ...DEFAULT_DICTIONARY, poisonFraction: 0.01 }, o),
      dictionaryAttack(order, { ...DEFAULT_DICTIONARY, poisonFraction: 0.05 }, o),
      labelFlips(order, DEFAULT_FLIP, o),
      backdoor(order, DEFAULT_BACKDOOR, o),
    ].filter((x) => !only || only.has(x.name));
    const clean = cleanStream(order, o);
    say(`seed ${seed}: clean stream ${clean.items.length} records; test split ${test.length} mails (${testSpam.length} spam)`);
    const on0 = (x: Stream): RunResult => ({ records: x.items.length, trained: 0, quarantined: 0, accuracy: 0, hamAsSpam: 0, spamAsHam: 0, triggeredSpamAsHam: 0, poisonAdmitted: 1, cleanQuarantined: 0, quarantineByStage: {}, screenMicros: 0, screenMicrosByStage: {}, trainMicros: 0, seconds: 0, wallMicros: 0, dp: false, gate: null });
    const cleanOff = onOnly ? on0(clean) : await run(clean, false, false, seed);
    const cleanOn = await run(clean, true, false, seed);
    const cleanGated = withGate ? await run(clean, false, false, seed, true) : undefined;
    const gated = (r: RunResult | undefined, x?: Stream) =>
      r && {
        accuracy: r.accuracy,
        hamAsSpam: r.hamAsSpam,
        spamAsHam: r.spamAsHam,
        ...(x ? { attackSuccess: attackSuccess(x, r) } : {}),
        stepsUndone: r.gate?.undone ?? 0,
        steps: (r.gate?.undone ?? 0) + (r.gate?.kept ?? 0),
        rollbacks: r.gate?.rollbacks ?? 0,
      };

    function attackSuccess(x: Stream, r: RunResult): number {
      return x.name === 'A' ? r.spamAsHam : x.name.startsWith('B') ? r.hamAsSpam : x.name === 'C' ? (r.poisonAdmitted ?? 0) : r.triggeredSpamAsHam;
    }
    const scenarios = [];
    const runs: RunResult[] = [cleanOff, cleanOn, ...(cleanGated ? [cleanGated] : [])];
    for (const x of streams) {
      say(`${x.name}: ${x.description}`);
      const off = onOnly ? on0(x) : await run(x, false, false, seed);
      const on = await run(x, true, false, seed);
      const onGate = withGate ? await run(x, false, false, seed, true) : undefined;
      runs.push(off, on, ...(onGate ? [onGate] : []));
      scenarios.push({
        name: x.name,
        description: x.description,
        attackSuccessDefinition: x.attackSuccess,
        records: x.items.length,
        poisonRecords: x.poisonCount,
        poisonFraction: r4(x.poisonCount / x.items.length),
        undefended: { accuracy: off.accuracy, hamAsSpam: off.hamAsSpam, spamAsHam: off.spamAsHam, attackSuccess: attackSuccess(x, off) },
        defended: {
          accuracy: on.accuracy,
          hamAsSpam: on.hamAsSpam,
          spamAsHam: on.spamAsHam,
          attackSuccess: attackSuccess(x, on),
          poisonAdmitted: on.poisonAdmitted ?? 0,
          cleanQuarantined: on.cleanQuarantined,
          quarantineByStage: on.quarantineByStage,
        },
        ...(onGate ? { gateAlone: gated(onGate, x) } : {}),
      });
    }
    const cleanSummary = {
      accuracy: cleanOff.accuracy,
      hamAsSpam: cleanOff.hamAsSpam,
      spamAsHam: cleanOff.spamAsHam,
      triggeredSpamAsHam: cleanOff.triggeredSpamAsHam,
      falseQuarantineRate: cleanOn.cleanQuarantined,
      defended: { accuracy: cleanOn.accuracy, hamAsSpam: cleanOn.hamAsSpam, quarantineByStage: cleanOn.quarantineByStage },
      ...(cleanGated ? { gateAlone: gated(cleanGated) } : {}),
      records: clean.items.length,
    };

    let dpTable: unknown;
    const flood = streams.find((x) => x.name === 'A');
    if (!noDp && flood && seed === 1) {
      say('DP on (defaults, DP_SEED=1), scenario A:');
      const c = await run(clean, false, true, seed);
      const off = await run(flood, false, true, seed);
      const on = await run(flood, true, true, seed);
      dpTable = {
        clean: { accuracy: c.accuracy, hamAsSpam: c.hamAsSpam },
        A: {
          undefended: { accuracy: off.accuracy, hamAsSpam: off.hamAsSpam, attackSuccess: off.spamAsHam },
          defended: { accuracy: on.accuracy, hamAsSpam: on.hamAsSpam, attackSuccess: on.spamAsHam, poisonAdmitted: on.poisonAdmitted, quarantineByStage: on.quarantineByStage },
        },
      };
    }
    return { seed, clean: cleanSummary, scenarios, runs, dpTable };
  }

  const reps: Awaited<ReturnType<typeof repetition>>[] = [];
  for (let seed = 1; seed <= SEEDS; seed++) reps.push(await repetition(seed));
  const all = reps.flatMap((r) => r.runs);
  const dpTable = reps[0].dpTable;
  // The report's figures: means over the seeds (the shape the issue asks for), and their standard deviations.
  const clean = { ...(meanTree(reps.map((r) => r.clean)) as typeof reps[0]['clean']), sd: sdTree(reps.map((r) => r.clean)) };
  const scenarios = reps[0].scenarios.map((first, i) => {
    const each = reps.map((r) => r.scenarios[i]);
    return {
      ...first,
      poisonFraction: meanTree(each.map((x) => x.poisonFraction)) as number,
      undefended: meanTree(each.map((x) => x.undefended)) as typeof first.undefended,
      defended: meanTree(each.map((x) => x.defended)) as typeof first.defended,
      ...(first.gateAlone ? { gateAlone: meanTree(each.map((x) => x.gateAlone)) as typeof first.gateAlone } : {}),
      sd: {
        undefended: sdTree(each.map((x) => x.undefended)),
        defended: sdTree(each.map((x) => x.defended)),
        ...(first.gateAlone ? { gateAlone: sdTree(each.map((x) => x.gateAlone)) } : {}),
      },
    };
  });
  const perSeed = reps.map((r) => ({ seed: r.seed, clean: r.clean, scenarios: r.scenarios.map((x) => ({ name: x.name, undefended: x.undefended, defended: x.defended, gateAlone: x.gateAlone })) }));

  await producer.disconnect();
  await broker.stop();

  // Costs from the defended runs: screening (all stages, in the sidecar) vs training (step time per trained record).
  // Gated runs are left out of both: their step time includes scoring the canaries twice per step.
  const defendedRuns = all.filter((r) => Object.keys(r.screenMicrosByStage).length > 1 && !r.dp && !r.gate);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  const screenMicrosByStage: Record<string, number> = {};
  for (const r of defendedRuns) for (const [k, v] of Object.entries(r.screenMicrosByStage)) screenMicrosByStage[k] = (screenMicrosByStage[k] ?? 0) + v / defendedRuns.length;
  const commandFlags = args.filter((a) => a !== '--json').join(' ');
  const result = {
    clean,
    scenarios,
    seeds: SEEDS,
    perSeed,
    ...(dpTable ? { dp: dpTable } : {}),
    screenMicrosPerRecord: Number(mean(defendedRuns.map((r) => r.screenMicros)).toFixed(1)),
    screenMicrosByStage: Object.fromEntries(Object.entries(screenMicrosByStage).map(([k, v]) => [k, Number(v.toFixed(1))])),
    trainMicrosPerRecord: Number(mean(all.filter((r) => r.trainMicros > 0 && !r.dp && !r.gate).map((r) => r.trainMicros)).toFixed(1)),
    gateCanaries: GATE_CANARIES,
    settings: {
      SCREENS_undefended: 'none',
      SCREENS: DEFENDED_SCREENS,
      SCREENS_CONFIG,
      DP_ENABLED: false,
      SEED: reps.map((r) => String(r.seed)).join(','),
      CHECKPOINT_INTERVAL_MS: 3600000,
      CHECKPOINT_EVERY_RECORDS: Number(CHECKPOINT_EVERY),
      model: 'text logistic regression, 2^14 hashed features, BATCH_SIZE 64, LEARNING_RATE 5 (defaults)',
      AVERAGE_DECAY: SERVED_DECAY,
      served: SERVED_DECAY > 0 ? `moving average of the weights (AVERAGE_DECAY=${SERVED_DECAY})` : 'last SGD iterate (AVERAGE_DECAY=0)',
      stream: '300 established sources (history over the 10 days before the live phase, 40% of the mails), live phase at 1 record / 2 s of event time, 5% of live clean mails from new users; attacks in the last 50% of the live stream',
      clean_records: reps[0].clean.records,
      trainMails: train.length,
      testMails: test.length,
    },
    backend: sidecarBackend,
    cores: os.cpus().length,
    node: process.version,
    date: new Date().toISOString(),
    seconds: Math.round((Date.now() - t0) / 1000),
    command: `${AVERAGE_DECAY === undefined ? '' : `ATTACKS_AVERAGE_DECAY=${AVERAGE_DECAY} `}npm run bench:attacks${commandFlags ? ` -- ${commandFlags}` : ''}`,
  };
  if (!quick && !only && !onOnly) {
    writeFileSync(path.join(__dirname, 'results', `${RESULTS_NAME}.json`), `${JSON.stringify(result, null, 2)}\n`);
    writeFileSync(path.join(__dirname, 'results', `${RESULTS_NAME}.md`), markdown(result));
  }
  if (json) process.stdout.write(`${JSON.stringify(result)}\n`);
  else say(`done in ${result.seconds} s${!quick && !only ? `; written to bench/results/${RESULTS_NAME}.json and ${RESULTS_NAME}.md` : ''}`);
}

let sidecarBackend = 'unknown';

type Tree = number | null | { [k: string]: Tree } | string;

/**
 * Element-wise over objects of the same shape: the mean of each number (strings and nulls from the first). A key
 * missing in some of them (a screen that quarantined nothing in one seed) counts as zero there.
 */
function meanTree(xs: readonly unknown[]): unknown {
  const obj = xs.find((x) => x !== null && typeof x === 'object');
  if (obj === undefined) {
    if (typeof xs.find((x) => x !== undefined) !== 'number') return xs[0];
    return r4((xs as (number | undefined)[]).reduce<number>((a, b) => a + (b ?? 0), 0) / xs.length);
  }
  const keys = new Set(xs.flatMap((x) => (x && typeof x === 'object' ? Object.keys(x) : [])));
  return Object.fromEntries([...keys].map((k) => [k, meanTree(xs.map((x) => (x && typeof x === 'object' ? (x as Record<string, Tree>)[k] : undefined)))]));
}

/** Element-wise sample standard deviation of the numbers (0 with one seed; a missing number counts as zero). */
function sdTree(xs: readonly unknown[]): unknown {
  const obj = xs.find((x) => x !== null && typeof x === 'object');
  if (obj === undefined) {
    if (typeof xs.find((x) => x !== undefined) !== 'number') return undefined;
    const v = (xs as (number | undefined)[]).map((x) => x ?? 0);
    const m = v.reduce((a, b) => a + b, 0) / v.length;
    return v.length < 2 ? 0 : r4(Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / (v.length - 1)));
  }
  const keys = new Set(xs.flatMap((x) => (x && typeof x === 'object' ? Object.keys(x) : [])));
  return Object.fromEntries(
    [...keys].map((k) => [k, sdTree(xs.map((x) => (x && typeof x === 'object' ? (x as Record<string, Tree>)[k] : undefined)))]).filter(([, v]) => v !== undefined),
  );
}

const pct = (x: number | null | undefined) => (x === null || x === undefined ? '—' : `${(100 * x).toFixed(1)}%`);

const pm = (m: number, sd: number | undefined) => (sd ? `${pct(m)} ± ${(100 * sd).toFixed(1)}` : pct(m));
const pts = (x: number) => `${(100 * x).toFixed(1)}`;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function markdown(r: any): string {
  const lines: string[] = [];
  const c = r.clean;
  lines.push('# Attack benchmarks', '');
  lines.push(`\`${r.command}\` — ${r.date}, ${r.cores} cores, ${r.backend} backend, Node ${r.node}, ${r.seconds} s. Plain SGD (DP_ENABLED=false); the model scored is the one served: the ${r.settings.served}.`, '');
  lines.push(`**${r.seeds} seeds** (${r.settings.SEED}): each seed is its own stream (the training mails in another order, other source assignments and attack draws) and model initialisation; figures are means over the seeds, ± the standard deviation between seeds. Seed 1 is the corpus split's order.`, '');
  lines.push(`Stream: ${r.settings.stream}. Scored on ${r.settings.testMails} held-out mails of the fixed SpamAssassin split (the other ${r.gateCanaries} held-out mails are the gate's canaries).`, '');
  lines.push(`Undefended: \`SCREENS=none\`. Defended: \`SCREENS=${r.settings.SCREENS}\`, \`SCREENS_CONFIG=${JSON.stringify(r.settings.SCREENS_CONFIG)}\`.`, '');
  lines.push(`Clean stream (${c.records} records): accuracy ${pm(c.accuracy, c.sd.accuracy)}, ham→spam ${pm(c.hamAsSpam, c.sd.hamAsSpam)}, spam→ham ${pm(c.spamAsHam, c.sd.spamAsHam)}, triggered spam→ham ${pct(c.triggeredSpamAsHam)}; with the screens on: accuracy ${pm(c.defended.accuracy, c.sd.defended?.accuracy)}, ham→spam ${pm(c.defended.hamAsSpam, c.sd.defended?.hamAsSpam)}, **false quarantine ${pm(c.falseQuarantineRate, c.sd.falseQuarantineRate)}** of clean records (mean per seed by stage: ${JSON.stringify(c.defended.quarantineByStage)}).`, '');
  lines.push('| scenario | poison | accuracy off → on | ham→spam off → on | attack success off → on | poison admitted (on) | clean quarantined (on) | quarantined by stage, mean per seed (poison/clean) |');
  lines.push('|---|---|---|---|---|---|---|---|');
  for (const s of r.scenarios) {
    const stages = Object.entries(s.defended.quarantineByStage as Record<string, { poison: number; clean: number }>)
      .map(([k, v]) => `${k} ${Math.round(v.poison)}/${Math.round(v.clean)}`)
      .join(', ');
    const u = s.undefended;
    const d = s.defended;
    lines.push(
      `| ${s.name} | ${pct(s.poisonFraction)} (${s.poisonRecords}) | ${pm(u.accuracy, s.sd.undefended.accuracy)} → ${pm(d.accuracy, s.sd.defended.accuracy)} | ${pm(u.hamAsSpam, s.sd.undefended.hamAsSpam)} → ${pm(d.hamAsSpam, s.sd.defended.hamAsSpam)} | ${pm(u.attackSuccess, s.sd.undefended.attackSuccess)} → ${pm(d.attackSuccess, s.sd.defended.attackSuccess)} | ${pct(d.poisonAdmitted)} | ${pct(d.cleanQuarantined)} | ${stages || '—'} |`,
    );
  }
  const byName = Object.fromEntries(r.scenarios.map((s: { name: string }) => [s.name, s]));
  lines.push('', 'Targets (means over the seeds):', '');
  if (byName.A) {
    const A = byName.A;
    lines.push(`- A: undefended accuracy drop ${pts(c.accuracy - A.undefended.accuracy)} points (target ≥ 20); defended drop ${pts(c.accuracy - A.defended.accuracy)} points from the clean undefended run, ${pts(c.defended.accuracy - A.defended.accuracy)} from the clean defended run (target ≤ 2).`);
  }
  for (const n of ['B1', 'B5']) {
    const B = byName[n];
    if (B) lines.push(`- ${n}: defended ham→spam ${pct(B.defended.hamAsSpam)}, ${pts(B.defended.hamAsSpam - c.hamAsSpam)} points from the clean run (${pct(c.hamAsSpam)}), ${pts(B.defended.hamAsSpam - c.defended.hamAsSpam)} from the clean defended run (target: within 2).`);
  }
  lines.push(`- False quarantine of clean traffic: ${pct(c.falseQuarantineRate)} (target ≤ 2%).`);
  if (c.gateAlone) {
    lines.push('', `The update gate alone (no screens; \`CANARY_FILE\`: ${r.gateCanaries} trusted held-out mails; gate defaults: RONI on every step, the served model judged for rollback every 8 steps). Behind the screens it has almost nothing left to catch: with both on, an earlier full run of this bench (before the gate judged between checkpoints) saw 0–2 of ~77 steps undone in every run.`, '');
    lines.push('| stream | accuracy: undefended → gate alone | ham→spam | attack success | steps undone, rollbacks (mean per seed) |', '|---|---|---|---|---|');
    lines.push(`| clean | ${pm(c.accuracy, c.sd.accuracy)} → ${pm(c.gateAlone.accuracy, c.sd.gateAlone?.accuracy)} | ${pct(c.hamAsSpam)} → ${pct(c.gateAlone.hamAsSpam)} | — | ${c.gateAlone.stepsUndone.toFixed(1)} of ${c.gateAlone.steps.toFixed(1)}, ${c.gateAlone.rollbacks.toFixed(1)} |`);
    for (const s of r.scenarios) {
      if (!s.gateAlone) continue;
      lines.push(
        `| ${s.name} | ${pm(s.undefended.accuracy, s.sd.undefended.accuracy)} → ${pm(s.gateAlone.accuracy, s.sd.gateAlone?.accuracy)} | ${pct(s.undefended.hamAsSpam)} → ${pct(s.gateAlone.hamAsSpam)} | ${pct(s.undefended.attackSuccess)} → ${pct(s.gateAlone.attackSuccess)} | ${s.gateAlone.stepsUndone.toFixed(1)} of ${s.gateAlone.steps.toFixed(1)}, ${s.gateAlone.rollbacks.toFixed(1)} |`,
      );
    }
  }
  lines.push('', 'Per seed (accuracy off → on; attack success off → on):', '');
  lines.push(`| seed | clean | ${r.scenarios.map((s: { name: string }) => s.name).join(' | ')} |`, `|---|---|${r.scenarios.map(() => '---|').join('')}`);
  for (const p of r.perSeed) {
    lines.push(
      `| ${p.seed} | ${pct(p.clean.accuracy)} → ${pct(p.clean.defended.accuracy)} (fq ${pct(p.clean.falseQuarantineRate)}) | ${p.scenarios
        .map((s: { undefended: { accuracy: number; attackSuccess: number }; defended: { accuracy: number; attackSuccess: number } }) => `${pct(s.undefended.accuracy)} → ${pct(s.defended.accuracy)}; ${pct(s.undefended.attackSuccess)} → ${pct(s.defended.attackSuccess)}`)
        .join(' | ')} |`,
    );
  }
  lines.push('', 'Scenarios and attack success:', '');
  for (const s of r.scenarios) lines.push(`- **${s.name}** — ${s.description}. Attack success: ${s.attackSuccessDefinition}.`);
  if (r.dp) {
    lines.push('', '## With DP on (defaults, DP_SEED=1), scenario A, seed 1', '');
    lines.push('| run | accuracy | ham→spam | attack success (spam→ham) | poison admitted |', '|---|---|---|---|---|');
    lines.push(`| clean, undefended | ${pct(r.dp.clean.accuracy)} | ${pct(r.dp.clean.hamAsSpam)} | — | — |`);
    lines.push(`| A, undefended | ${pct(r.dp.A.undefended.accuracy)} | ${pct(r.dp.A.undefended.hamAsSpam)} | ${pct(r.dp.A.undefended.attackSuccess)} | — |`);
    lines.push(`| A, defended | ${pct(r.dp.A.defended.accuracy)} | ${pct(r.dp.A.defended.hamAsSpam)} | ${pct(r.dp.A.defended.attackSuccess)} | ${pct(r.dp.A.defended.poisonAdmitted)} |`);
  }
  lines.push('', `Cost per record (defended runs, inside the sidecar, mean over all of them): screening ${r.screenMicrosPerRecord} µs (${Object.entries(r.screenMicrosByStage).map(([k, v]) => `${k} ${v}`).join(', ')}), training ${r.trainMicrosPerRecord} µs (step time per trained record, plain SGD).`, '');
  return `${lines.join('\n')}\n`;
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack}\n`);
  process.exit(1);
});
