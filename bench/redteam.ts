/**
 * npm run bench:redteam — the red-team benchmark (issue 10, item 8): every attack of the issue as a family with
 * parameters, run through the real sidecar record path in this process (bench/redteam/harness.ts: the config
 * loader's DEFAULT configuration — DP on, default SCREENS — and the same plus the update gate on 200 trusted
 * canaries), for text (SpamAssassin) and dense pixels (MNIST).
 *
 * Method: the attacker's best setting in each family is searched on tuning seeds (t1, t2) under the defaults —
 * the setting with the highest score (report.ts: the worst figure/target ratio) — and only that setting is run on
 * the reporting seeds (r1, r2, r3), with and without the gate, next to a clean run with the same configuration
 * and seed. Each seed is another sample and order of the training data, other attack draws, another model
 * initialisation and DP noise stream (DP_SEED).
 *
 * Flags: --json (print only the JSON), --quick (reporting seed r1 only, each family's first setting, no tuning,
 *        defaults only unless --gate: for iterating), --only a,b (these families; no results file), --no-gate (defaults only),
 *        --params '{…}' (with --only and one family: this setting instead of the grid), --rewrite-md (write
 *        redteam.md again from the committed redteam.json, no run), --seeds a,b (with --only: run on these
 *        seeds, e.g. the tuning seeds t1,t2 while trying a defence), --env '{…}' (with --only: configuration
 *        variables on top of the defaults, e.g. a defence being tried; no results file).
 * Writes bench/results/redteam.json and redteam.md from a full run only.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { cleanSample, mnistData, textData, type Dataset } from './redteam/data';
import { FAMILIES, type FamilySpec } from './redteam/families';
import { configFor, runStream, type Kind, type RunResult } from './redteam/harness';
import { checkpointBudget, markdown, score, summarise, type Row, type Summary } from './redteam/report';
import type { Params } from './redteam/scenario';
import { buildStream, counterfactual } from './redteam/stream';

const args = process.argv.slice(2);
const json = args.includes('--json');
const quick = args.includes('--quick');
/** --quick runs the defaults only (add --gate for the gate too); a full run both. */
const noGate = args.includes('--no-gate') || (quick && !args.includes('--gate'));
const onlyArg = args.indexOf('--only');
const only = onlyArg >= 0 ? new Set(args[onlyArg + 1].split(',')) : undefined;
const paramsArg = args.indexOf('--params');
/** With --only one family: run this setting (JSON) instead of its grid (no results file). */
const fixedParams = paramsArg >= 0 ? (JSON.parse(args[paramsArg + 1]) as Params) : undefined;
const seedsArg = args.indexOf('--seeds');
const envArg = args.indexOf('--env');
/** With --only: configuration on top of the defaults (a defence being tried). */
const extraEnv = envArg >= 0 ? (JSON.parse(args[envArg + 1]) as Record<string, string>) : undefined;
if ((seedsArg >= 0 || extraEnv) && onlyArg < 0) throw new Error('--seeds and --env need --only (they never write the results file)');
const say = (s: string) => process.stderr.write(`${s}\n`);

const TUNING_SEEDS = ['t1', 't2'];
const REPORTING_SEEDS = seedsArg >= 0 ? args[seedsArg + 1].split(',') : quick ? ['r1'] : ['r1', 'r2', 'r3'];
/** Clean records per stream (attack records come on top), and records between checkpoints (the served model). */
const SIZE: Record<Kind, number> = { text: 3000, dense: 4000 };
const SERVE_EVERY = 500;
type ConfigName = Row['config'];
/** --gate-only (with --only): the configuration with the update gate and its witness alone. */
const gateOnly = args.includes('--gate-only');
const CONFIGS: ConfigName[] = gateOnly ? ['defaults+gate'] : noGate ? ['defaults'] : ['defaults', 'defaults+gate'];

const t0 = Date.now();
const elapsed = () => {
  const s = Math.round((Date.now() - t0) / 1000);
  return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
};
const pct = (x: number | null) => (x === null ? '—' : `${(100 * x).toFixed(1)}%`);

const datasets: Partial<Record<Kind, Dataset>> = {};
const dataFor = (kind: Kind) => (datasets[kind] ??= kind === 'text' ? textData() : mnistData());
let backend = 'unknown';

/**
 * Clean streams, one per kind, seed and configuration, on the reporting seeds: what the defaults cost honest traffic
 * (each scenario is judged against its own counterfactual, not against these).
 */
const cleanRuns = new Map<string, RunResult>();
async function cleanRun(kind: Kind, seed: string, config: ConfigName): Promise<RunResult> {
  const key = `${kind}/${seed}/${config}`;
  let r = cleanRuns.get(key);
  if (!r) {
    const data = dataFor(kind);
    r = await runStream(buildStream(cleanSample(data, SIZE[kind], seed), { live: [] }, seed), spec(kind, seed, config, data));
    cleanRuns.set(key, r);
    backend = r.backend;
    say(`[${elapsed()}] clean ${kind} ${seed} ${config}: accuracy ${pct(r.accuracy)}, honest quarantine ${pct(r.honestQuarantine)}, trust lost ${pct(r.trustLost)}, screen cost ${r.screenCostRatio}× (${r.screenCostTop}), checkpoint ${(r.checkpointBytes / 1e6).toFixed(1)} MB [${r.seconds.toFixed(0)} s]`);
  }
  return r;
}

function spec(kind: Kind, seed: string, config: ConfigName, data: Dataset) {
  return { kind, seed, canaryFile: config === 'defaults+gate' ? data.canaryFile : undefined, serveEvery: SERVE_EVERY, test: data.test, ...(extraEnv ? { env: extraEnv } : {}) };
}

async function runScenario(fam: FamilySpec, params: Params, seed: string, config: ConfigName, phase: string): Promise<Row> {
  const data = dataFor(fam.kind);
  const clean = cleanSample(data, SIZE[fam.kind], seed);
  const sc = fam.build({ data, clean, seed, config: configFor({ kind: fam.kind, seed }, os.tmpdir()) }, params);
  const stream = buildStream(clean, sc.plan, seed, sc.timeline);
  const run = { ...spec(fam.kind, seed, config, data), attackSuccess: sc.attackSuccess };
  const r = await runStream(stream, { ...run, http: sc.http });
  // The clean run to compare with: the same stream, the attacker's messages emptied (stream.ts, counterfactual).
  const c = await runStream(counterfactual(stream), run);
  const attackSuccess = sc.successIsAdmission ? r.poisonAdmitted : r.attackSuccess;
  const row: Row = {
    name: `${fam.name} ${Object.entries(sc.params).map(([k, v]) => `${k}=${v}`).join(' ')}`,
    family: fam.name,
    params: { ...sc.params },
    config,
    seed,
    accuracy: r.accuracy,
    cleanAccuracy: c.accuracy,
    attackSuccess,
    cleanAttackSuccess: c.attackSuccess,
    honestQuarantine: r.honestQuarantine,
    cleanHonestQuarantine: c.honestQuarantine,
    trustLost: r.trustLost,
    cleanTrustLost: c.trustLost,
    screenCostRatio: r.screenCostRatio,
    screenCostTop: r.screenCostTop,
    screenMicrosByStage: r.screenMicrosByStage,
    medianRecordMicros: r.medianRecordMicros,
    checkpointBytes: r.checkpointBytes,
    cleanCheckpointBytes: c.checkpointBytes,
    checkpointBudget: checkpointBudget(r.config),
    screenStateBytes: r.screenStateBytes,
    poisonShare: stream.poisonCount / stream.items.length,
    poisonAdmitted: r.poisonAdmitted,
    backdoor: sc.backdoor ?? false,
    success: sc.success,
    judged: fam.notJudged === undefined && stream.poisonCount / stream.items.length <= 0.2 + 1e-9,
    records: r.records,
    curve: r.curve,
    cleanCurve: c.curve,
    gate: r.gate,
    ...(sc.attacker ? { attacker: { ...sc.attacker } } : {}),
    quarantineByStage: r.quarantineByStage,
    seconds: r.seconds,
  };
  say(
    `[${elapsed()}] ${phase} ${seed} ${config} ${row.name}: accuracy ${pct(row.accuracy)} (clean ${pct(row.cleanAccuracy)}), success ${pct(row.attackSuccess)} (clean model ${pct(row.cleanAttackSuccess)}), poison ${pct(row.poisonShare)} admitted ${pct(row.poisonAdmitted)}, honest quarantine ${pct(row.honestQuarantine)}, trust lost ${pct(row.trustLost)}, cost ${row.screenCostRatio}× (${row.screenCostTop}), checkpoint ${(row.checkpointBytes / 1e6).toFixed(1)} MB${row.attacker ? `, attacker ${JSON.stringify(row.attacker)}` : ''}${row.gate ? `, gate ${JSON.stringify(row.gate)}` : ''} [${row.seconds.toFixed(0)} s]`,
  );
  return row;
}

async function main() {
  if (args.includes('--rewrite-md')) {
    // The report from the committed results (after a change to the markdown only): no run.
    const file = path.join(__dirname, 'results', 'redteam.json');
    writeFileSync(path.join(__dirname, 'results', 'redteam.md'), markdown(JSON.parse(readFileSync(file, 'utf8'))));
    return;
  }
  const families = FAMILIES.filter((f) => !only || only.has(f.name));
  if (only && families.length !== only.size) throw new Error(`--only: unknown family in ${[...only].join(',')}; families: ${FAMILIES.map((f) => f.name).join(', ')}`);
  // 1. The attacker's choice in each family, on the tuning seeds.
  const tuning: { family: string; params: Params; score: number; seeds: string[] }[] = [];
  const chosen = new Map<string, Params>();
  if (fixedParams && families.length !== 1) throw new Error('--params needs --only with exactly one family');
  for (const fam of families) {
    if (quick || fam.grid.length === 1 || fixedParams) {
      chosen.set(fam.name, fixedParams ?? fam.grid[0]);
      continue;
    }
    let best: { params: Params; score: number } | undefined;
    for (const params of fam.grid) {
      const scores: number[] = [];
      for (const seed of TUNING_SEEDS) scores.push(score(await runScenario(fam, params, seed, 'defaults', 'tune')));
      const s = scores.reduce((a, b) => a + b, 0) / scores.length;
      tuning.push({ family: fam.name, params, score: Number(s.toFixed(3)), seeds: TUNING_SEEDS });
      if (!best || s > best.score) best = { params, score: s };
    }
    chosen.set(fam.name, (best as { params: Params }).params);
    say(`[${elapsed()}] ${fam.name}: the attacker's choice is ${JSON.stringify(best?.params)} (score ${best?.score.toFixed(2)})`);
  }
  // 2. The worst case of each family on the reporting seeds, with and without the gate; the clean streams.
  for (const kind of [...new Set(families.map((f) => f.kind))]) for (const config of CONFIGS) for (const seed of REPORTING_SEEDS) await cleanRun(kind, seed, config);
  const scenarios: Row[] = [];
  const worstByFamily: Summary[] = [];
  for (const fam of families) {
    for (const config of CONFIGS) {
      const rows: Row[] = [];
      for (const seed of REPORTING_SEEDS) rows.push(await runScenario(fam, chosen.get(fam.name) as Params, seed, config, 'report'));
      scenarios.push(...rows);
      const s = summarise(rows);
      worstByFamily.push(s);
      const t = s.targets;
      say(`[${elapsed()}] WORST ${fam.name} ${config}: accuracy ${pct(s.accuracy)} vs clean ${pct(s.cleanAccuracy)}, success ${pct(s.attackSuccess)}, honest quarantine ${pct(s.honestQuarantine)}, cost ${s.screenCostRatio.toFixed(1)}×, checkpoint ${(s.checkpointBytes / 1e6).toFixed(1)} MB — ${t ? Object.entries(t).filter(([, v]) => v !== null).map(([k, v]) => `${k} ${v ? 'pass' : 'FAIL'}`).join(', ') : `not judged (${fam.notJudged ?? 'poison share over 20%'})`}`);
    }
  }
  const clean = [...cleanRuns.entries()].map(([k, r]) => {
      const [kind, seed, config] = k.split('/');
      return { kind, seed, config, accuracy: r.accuracy, honestQuarantine: r.honestQuarantine, trustLost: r.trustLost, screenCostRatio: r.screenCostRatio, screenCostTop: r.screenCostTop, screenMicrosByStage: r.screenMicrosByStage, medianRecordMicros: r.medianRecordMicros, checkpointBytes: r.checkpointBytes, screenStateBytes: r.screenStateBytes, gate: r.gate, curve: r.curve };
    });
  const defaults = configFor({ kind: 'text', seed: 'x' }, os.tmpdir());
  const result = {
    command: `npm run bench:redteam${args.filter((a) => a !== '--json').length ? ` -- ${args.filter((a) => a !== '--json').join(' ')}` : ''}`,
    date: new Date().toISOString(),
    machine: { cores: os.cpus().length, cpu: os.cpus()[0]?.model, backend, node: process.version },
    seconds: Math.round((Date.now() - t0) / 1000),
    settings: {
      configs: 'defaults = the config loader\'s defaults (MODEL=text, or MODEL=dense FEATURE_DIM=784 NUM_CLASSES=10); defaults+gate = the same with CANARY_FILE (200 held-out examples)',
      SCREENS: defaults.screens.enabled.join(',') || 'none',
      dp: defaults.privacy ? `on (q=${defaults.privacy.sampleRate}, σ=${defaults.privacy.noiseMultiplier}, W=${defaults.privacy.window}, a step per ${defaults.privacy.stepEveryRecords} records, DP_SEED=seed)` : 'off',
      producer: 'attaches sourceMeta.createdAt to every record (established honest accounts created up to two years before their first record; new users, the attacker\'s accounts and sybils when they first sent — an attacker ages an account by creating it early, ageDays)',
      cleanRecords: SIZE,
      servedModelEvery: `${SERVE_EVERY} records (checkpoint + publish)`,
      seeds: { tuning: quick ? [] : TUNING_SEEDS, reporting: REPORTING_SEEDS },
      checkpointBudget: checkpointBudget(defaults),
      screenCost: 'per screen: median µs on the records the attacker crafted (poison, or campaign reports it wrote; the 90th percentile of all records when there are none) / median honest record\'s µs through the whole chain',
    },
    scenarios,
    worstByFamily,
    clean,
    tuning,
  };
  if (!quick && !only && !fixedParams) {
    writeFileSync(path.join(__dirname, 'results', 'redteam.json'), `${JSON.stringify(result, null, 2)}\n`);
    writeFileSync(path.join(__dirname, 'results', 'redteam.md'), markdown(result));
  }
  for (const d of Object.values(datasets)) rmSync(path.dirname(d.canaryFile), { recursive: true, force: true });
  if (json) process.stdout.write(`${JSON.stringify(result)}\n`);
  say(`done in ${elapsed()}${!quick && !only ? '; written to bench/results/redteam.json and redteam.md' : ''}`);
}

main().catch((e) => {
  process.stderr.write(`bench:redteam failed: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
