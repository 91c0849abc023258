/**
 * The witness's trade-off (src/witness.ts, src/witness-fit.ts): how many plain label flips it holds back against
 * how many honest records, with the red-team benchmark's trusted set (bench/redteam/data.ts: 200 held-out canaries)
 * and with 1,000 trusted records (the canaries and the last 800 mails / digits of the training part).
 *
 * Flips: text — spam labelled ham (the harmful direction: abuse taught as acceptable); dense (MNIST) — a 7
 * labelled 1. Honest: records with their true labels (text: both labels). Two splits of data the witness never
 * trained on: `tune` (decisions were taken on it: flips from training part [0, 1500), honest records from
 * [1500, end − 800)) and `report` (flips from the benchmark's held-out test part, never used to decide; honest
 * records = training part [0, 3000), as the measurements before this bench, half of them shared with `tune`). Per build it prints:
 * - the calibrated operating point (the screen as deployed: WitnessDetector with the built witness's bars),
 * - the ranking's curve: flips caught when ONE bar on p(label) for every label is set after the fact to hold back
 *   at most 0.25 / 0.5 / 1 / 2 / 4% of the honest records (the parts rule at its calibrated bar): what perfect
 *   calibration could give this witness.
 * Not a test. Run: npm run bench:witness -- [--kind text|dense] [--trusted 200,1000] [--split tune|report]
 *   [--settings '{"folds":1}'] [--epochs 6] [--env '{"TEXT_HASH_DIM":"16384"}'] [--write [--tag before]]
 *   (--write: bench/results/witness-KIND-SPLIT[-TAG].json gets this run; bench/results/witness.md summarises)
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initTf } from '../core/tf';
import type { TrainingRecord } from '../core/record';
import { parseDetectorSettings } from '../filters/config';
import { WitnessDetector, abusivePartScore } from '../filters/witness';
import { buildWitness, type BuiltWitness } from '../src/witness';
import { configFor } from './redteam/harness';
import { mnistData, textData, type Dataset } from './redteam/data';
import type { Example } from './redteam/stream';

const raw = { topic: 't', partition: 0, offset: '0', key: null, value: null };
const TARGETS = [0.0025, 0.005, 0.01, 0.02, 0.04];
const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
};

interface Sets {
  readonly flips: TrainingRecord[];
  readonly honest: TrainingRecord[];
}

function setsOf(data: Dataset, split: string): Sets {
  const rec = (e: Example, i: number, label: number, source: string): TrainingRecord => ({ id: `${source}-${i}`, source, label, ...(e.text !== undefined ? { text: e.text } : { features: e.features }) });
  const flip = (e: Example) => (data.kind === 'text' ? e.label === 1 : e.label === 7);
  const flipTo = data.kind === 'text' ? 0 : 1;
  const flipsFrom = split === 'tune' ? data.train.slice(0, 1500) : data.test;
  const honestFrom = split === 'tune' ? data.train.slice(1500, data.train.length - 800) : data.train.slice(0, 3000);
  return { flips: flipsFrom.filter(flip).map((e, i) => rec(e, i, flipTo, 'flip')), honest: honestFrom.map((e, i) => rec(e, i, e.label, 'honest')) };
}

function trustedFile(data: Dataset, n: number): string {
  if (n === 200) return data.canaryFile;
  const extra = data.train.slice(data.train.length - (n - 200)).map((e, i) => JSON.stringify({ id: `extra-${i}`, source: 'trusted', label: e.label, ...(e.text !== undefined ? { text: e.text } : { features: e.features }) }));
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'tayguard-bench-witness-')), 'trusted.jsonl');
  writeFileSync(file, `${readFileSync(data.canaryFile, 'utf8')}\n${extra.join('\n')}`);
  return file;
}

/** Per record: p(label), whether the witness prefers another class, the parts rule's score (-1: not judged by it). */
function scores(w: BuiltWitness, records: readonly TrainingRecord[], settings: ReturnType<typeof parseDetectorSettings>['witness'], abuse: readonly number[]) {
  return records.map((r) => {
    const probs = w.predict(r.text !== undefined ? { text: r.text } : { features: r.features });
    let best = 0;
    for (let i = 1; i < probs.length; i++) if (probs[i] > probs[best]) best = i;
    const part = r.text && settings.parts && abuse.length > 0 && !abuse.includes(r.label) ? abusivePartScore(w, r.text, abuse, settings.partTokens, settings.maxChars) : -1;
    return { p: probs[r.label], disagrees: best !== r.label, part };
  });
}

type Scored = ReturnType<typeof scores>;
const heldAt = (s: Scored, t: number, pt: number) => s.filter((x) => x.part > pt || (x.disagrees && x.p < t)).length / s.length;
const quantiles = (v: number[], n: number) => {
  const sorted = [...v].sort((a, b) => a - b);
  return [...new Set(Array.from({ length: n + 1 }, (_, i) => sorted[Math.min(sorted.length - 1, Math.floor((i / n) * sorted.length))]))];
};

/**
 * Flips caught when the bars are set after the fact to hold back at most `target` of the honest records: the
 * whole-record bar alone (the parts bar as calibrated), and both bars together (the best pair on a grid).
 */
function curve(flips: Scored, honest: Scored, partBar: number): { honest: number; caught: number; bar: number; caughtBothBars: number }[] {
  const ps = quantiles(honest.filter((x) => x.disagrees).map((x) => x.p), 400).filter((p) => p <= 0.5);
  const parts = honest.some((x) => x.part >= 0) ? quantiles(honest.filter((x) => x.part >= 0).map((x) => x.part), 400).filter((p) => p >= 0.5).concat([1]) : [1];
  const best = (target: number, partBars: readonly number[]) => {
    let caught = 0;
    let bar = 0;
    for (const pt of partBars) {
      if (heldAt(honest, 0, pt) > target) continue;
      let lo = 0; // largest whole-record bar within the target (honest share held back grows with the bar)
      for (const t of ps) {
        if (heldAt(honest, t, pt) > target) break;
        lo = t;
      }
      const c = heldAt(flips, lo, pt);
      if (c > caught) [caught, bar] = [c, lo];
    }
    return { caught, bar };
  };
  return TARGETS.map((target) => {
    const whole = best(target, [partBar]);
    return { honest: target, caught: whole.caught, bar: whole.bar, caughtBothBars: best(target, parts).caught };
  });
}

async function main(): Promise<void> {
  const started = Date.now();
  const backend = await initTf();
  const kind = arg('kind', 'text');
  const split = arg('split', 'tune');
  const data = kind === 'text' ? textData() : mnistData();
  const sets = setsOf(data, split);
  const runs: unknown[] = [];
  for (const n of arg('trusted', '200,1000').split(',').map(Number)) {
    const witnessSettings = JSON.parse(arg('settings', '{}')) as Record<string, unknown>;
    const env = { CANARY_FILE: trustedFile(data, n), WITNESS_EPOCHS: arg('epochs', '6'), SCREENS_CONFIG: JSON.stringify({ witness: witnessSettings }), ...(JSON.parse(arg('env', '{}')) as Record<string, string>) };
    const config = configFor({ kind: data.kind, seed: 'bench-witness', env }, mkdtempSync(path.join(os.tmpdir(), 'tayguard-bench-witness-')));
    const t0 = performance.now();
    const w = await buildWitness(config, { info: () => undefined, warn: (...a: unknown[]) => console.warn(...a) });
    const buildSeconds = (performance.now() - t0) / 1000;
    if (w === null) throw new Error('no witness was built');
    const settings = parseDetectorSettings(config.screens.settings).witness;
    const abuse = config.screens.abuseLabels;
    const detector = new WitnessDetector({ ...settings, abuseLabels: abuse }, w);
    const held = (rs: readonly TrainingRecord[]) => rs.filter((r) => detector.screen(r, raw).kind === 'quarantine').length / rs.length;
    const byLabel = [...new Set(sets.honest.map((r) => r.label))].sort((a, b) => a - b);
    const honestByLabel = Object.fromEntries(byLabel.filter((l) => kind === 'text').map((l) => [l, held(sets.honest.filter((r) => r.label === l))]));
    const flipScores = scores(w, sets.flips, settings, abuse);
    const honestScores = scores(w, sets.honest, settings, abuse);
    const run = {
      trusted: n,
      settings: witnessSettings,
      buildSeconds: Number(buildSeconds.toFixed(1)),
      witness: { ...w.info, data: undefined },
      calibrated: { caught: held(sets.flips), honest: held(sets.honest), honestByLabel },
      curve: curve(flipScores, honestScores, w.partThreshold ?? 1),
    };
    runs.push(run);
    const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
    console.log(
      `${kind} ${split} trusted=${n} ${JSON.stringify(witnessSettings)} build ${run.buildSeconds}s folds=${w.info.folds} trainedOn=${w.info.trainedOn} calibratedOn=${w.info.calibratedOn} acc=${w.info.heldOutAccuracy?.toFixed(3)} bars=${JSON.stringify(w.info.labelThresholds ?? w.info.labelThreshold)} part=${w.info.partThreshold?.toFixed(4)}\n` +
        `  calibrated: caught ${pct(run.calibrated.caught)} (${sets.flips.length} flips), honest ${pct(run.calibrated.honest)} of ${sets.honest.length} ${JSON.stringify(Object.fromEntries(Object.entries(honestByLabel).map(([l, v]) => [l, pct(v)])))}\n` +
        `  curve (honest ≤ → caught, whole-record bar / both bars): ${run.curve.map((c) => `${pct(c.honest)} → ${pct(c.caught)} (bar ${c.bar.toExponential(1)}) / ${pct(c.caughtBothBars)}`).join(', ')}`,
    );
  }
  if (process.argv.includes('--write')) {
    const out = { command: `npm run bench:witness -- ${process.argv.slice(2).join(' ')}`, date: new Date().toISOString(), cores: os.cpus().length, backend, node: process.version, kind, split, seconds: Math.round((Date.now() - started) / 1000), runs };
    const tag = arg('tag', '');
    writeFileSync(path.join(__dirname, 'results', `witness-${kind}-${split}${tag ? `-${tag}` : ''}.json`), `${JSON.stringify(out, null, 2)}\n`);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
