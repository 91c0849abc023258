/**
 * One run of the red-team benchmark: a stream pushed, in this process, through the REAL sidecar record path —
 * createSidecar with the real config loader and its defaults (schema → event time → the configured screens →
 * dedup → the DP trainer with the update gate as a step stage when CANARY_FILE is set → checkpoint encoder and
 * store → the served moving average) — with no Kafka: each record is handed to the sidecar's own Pipeline as the
 * consumer would hand it, its Kafka timestamp being the record's simulated event time (or what a hijacking
 * producer set). The attacker's oracle is the sidecar's real HTTP app (POST /v1/predict) on a local port.
 *
 * What differs from a deployment, and why:
 * - Consumption runs at full speed, as on a busy stream or a replay: the quiet-stream tick and the 5 s checkpoint
 *   timer run on the wall clock and are not simulated. Instead the sidecar checkpoints (and publishes — the model
 *   /v1/predict serves and label-consistency consults) every `serveEvery` records: the 5 s timer at ~100
 *   records/s, i.e. a served model at most a few seconds old.
 * - DP_SEED is set to the run's seed (reproducible noise: the same distribution, not secure randomness).
 * - Records marked `screenOnly` (the 100,000-account sybil flush) go through the screen chain only — their
 *   effect is on the screens' state; training 100,000 one-word records would take minutes per run.
 *
 * The sidecar's own Pipeline is built through its private `buildPipeline` (element access): the bench drives the
 * record path exactly as `handleBatch` does, without a consumer.
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadConfig, type Config } from '../../src/config';
import { createLogger } from '../../src/logger';
import { createSidecar, type Sidecar } from '../../src/sidecar';
import type { Pipeline, QuarantineSink } from '../../src/pipeline';
import type { RawMessage, TrainingRecord } from '../../core/record';
import type { Verdict } from '../../filters/types';
import type { WeightsSnapshot } from '../../middleware/learner';
import { publicPredict } from './oracle';
import type { Example, Item, Oracle, Payload, Stream } from './stream';

export type Kind = 'text' | 'dense';

/** The model settings of each task; everything else is the config loader's default. */
export const KIND_ENV: Record<Kind, Record<string, string>> = {
  text: { MODEL: 'text' },
  dense: { MODEL: 'dense', FEATURE_DIM: '784', NUM_CLASSES: '10' },
};

/** Scores a served model: `predict` gives class probabilities for payloads. */
export type Scorer = (predict: (payloads: readonly Payload[]) => number[][]) => number | null;

export interface RunSpec {
  readonly kind: Kind;
  readonly seed: string;
  /** The update gate on, with this trusted canary file (JSONL in the record contract). */
  readonly canaryFile?: string;
  readonly serveEvery: number;
  /** Clean held-out examples: accuracy. */
  readonly test: readonly Example[];
  readonly attackSuccess?: Scorer;
  /** Start the HTTP app (the oracle-guided attacker needs it). */
  readonly http?: boolean;
  /** Extra environment (tests only; the benchmark runs the defaults). */
  readonly env?: Record<string, string>;
  readonly onProgress?: (done: number, total: number) => void;
}

export interface CurvePoint {
  /** Records handled so far. */
  readonly at: number;
  readonly accuracy: number;
  readonly attackSuccess: number | null;
}

export interface RunResult {
  readonly records: number;
  readonly accuracy: number;
  readonly attackSuccess: number | null;
  readonly honestQuarantine: number;
  /** Share of the attack's poison records that were admitted (trained or pooled for training). */
  readonly poisonAdmitted: number | null;
  /** Share of honest sources penalised: a record quarantined, a gate penalty, or forgotten by the registry. */
  readonly trustLost: number;
  readonly screenCostRatio: number;
  readonly screenCostTop: string | null;
  readonly medianRecordMicros: number;
  readonly screenMicrosByStage: Record<string, number>;
  readonly checkpointBytes: number;
  readonly screenStateBytes: number;
  readonly quarantineByStage: Record<string, { poison: number; honest: number; attacker: number }>;
  readonly curve: CurvePoint[];
  readonly gate: { undone: number; kept: number; rollbacks: number } | null;
  readonly oracleQueries: number;
  readonly seconds: number;
  readonly backend: string;
  /** The served weights at the end (to score this run's model on another scenario's success measure). */
  readonly served: WeightsSnapshot;
  readonly config: Config;
}

const median = (xs: number[]) => {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};

export function configFor(spec: Pick<RunSpec, 'kind' | 'seed' | 'canaryFile' | 'env'>, dir: string): Config {
  return loadConfig({
    KAFKA_BROKERS: '127.0.0.1:1',
    CHECKPOINT_DIR: dir,
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'silent',
    SEED: spec.seed,
    DP_SEED: spec.seed,
    ...KIND_ENV[spec.kind],
    ...(spec.canaryFile ? { CANARY_FILE: spec.canaryFile } : {}),
    ...(spec.env ?? {}),
  });
}

/** Predict in chunks with the served model (what /v1/predict answers, without the HTTP hop). */
export function servedPredictor(sidecar: Pick<Sidecar, 'serving'>): (payloads: readonly Payload[]) => number[][] {
  return (payloads) => {
    const out: number[][] = [];
    for (let i = 0; i < payloads.length; i += 256) out.push(...sidecar.serving.predict(payloads.slice(i, i + 256)));
    return out;
  };
}

export function accuracyOf(predict: (p: readonly Payload[]) => number[][], test: readonly Example[]): number {
  const probs = predict(test);
  let hits = 0;
  probs.forEach((p, i) => (hits += p.indexOf(Math.max(...p)) === test[i].label ? 1 : 0));
  return hits / test.length;
}

function newestCheckpointBytes(dir: string): number {
  const files = readdirSync(dir).filter((f) => /^ckpt-\d+\.tgck$/.test(f)).sort();
  return files.length === 0 ? 0 : statSync(path.join(dir, files[files.length - 1])).size;
}

export async function runStream(stream: Stream, spec: RunSpec): Promise<RunResult> {
  const started = Date.now();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tayguard-redteam-'));
  const config = configFor(spec, dir);
  const sidecar = await createSidecar(config, createLogger('silent'));
  const quarantined = new Set<number>();
  const sink: QuarantineSink = {
    send: async (messages) => {
      for (const m of messages) quarantined.add(Number(m.key.split('/').pop()));
    },
  };
  const pipeline = (sidecar as unknown as { buildPipeline(s: QuarantineSink): Pipeline }).buildPipeline(sink);
  // Time every screen per record and note which screen quarantined which message (by offset).
  const detectors = sidecar.screens.detectors;
  const n = stream.items.length;
  const costs = detectors.map(() => new Float64Array(n));
  const stageOf = new Map<number, string>();
  detectors.forEach((d, k) => {
    const inner = d.screen.bind(d);
    (d as { screen: typeof d.screen }).screen = (record: TrainingRecord, raw: RawMessage): Verdict => {
      const s = process.hrtime.bigint();
      const v = inner(record, raw);
      costs[k][Number(raw.offset)] += Number(process.hrtime.bigint() - s) / 1e3;
      if (v.kind === 'quarantine') stageOf.set(Number(raw.offset), d.name);
      return v;
    };
  });
  let oracleQueries = 0;
  let oracle: Oracle = async () => {
    throw new Error('this scenario has no oracle (spec.http is off)');
  };
  if (spec.http) {
    await sidecar.listen();
    const base = `http://127.0.0.1:${sidecar.port}`;
    oracle = async (inputs) => {
      oracleQueries += inputs.length;
      return publicPredict(base, inputs);
    };
  }
  const predict = servedPredictor(sidecar);
  const curve: CurvePoint[] = [];
  let checkpointBytes = 0;
  let screenStateBytes = 0;
  const checkpoint = async () => {
    await sidecar.checkpoint();
    checkpointBytes = Math.max(checkpointBytes, newestCheckpointBytes(dir));
    screenStateBytes = Math.max(screenStateBytes, Buffer.byteLength(JSON.stringify(sidecar.screens.toJSON())));
    if (curve.at(-1)?.at === handled) return; // the final checkpoint right after a periodic one
    curve.push({ at: handled, accuracy: accuracyOf(predict, spec.test), attackSuccess: spec.attackSuccess ? spec.attackSuccess(predict) : null });
  };
  const topic = config.topics.records;
  let handled = 0;
  try {
    for (let i = 0; i < n; i++) {
      const item: Item = stream.items[i];
      let value: string;
      let record: TrainingRecord | undefined;
      if (item.empty) value = '{}'; // not a record: the schema stage refuses it and it takes an empty slot
      else {
        const example = item.example ?? (await (item.build as NonNullable<Item['build']>)(oracle));
        record = {
          id: item.id,
          source: item.source,
          ts: item.recordTs ?? item.ts,
          label: example.label,
          ...(example.text !== undefined ? { text: example.text } : { features: example.features }),
          // The producer states each account's creation time, as a deployment's account records would (stream.ts).
          sourceMeta: { createdAt: new Date(item.createdAt).toISOString() },
        };
        value = JSON.stringify(record);
      }
      const raw: RawMessage = {
        topic,
        partition: 0,
        offset: String(i),
        key: Buffer.from(item.source),
        value: Buffer.from(value),
        timestamp: String(item.kafkaTs ?? item.ts),
      };
      if (item.screenOnly && record) screenOnly(detectors, record, raw, () => quarantined.add(i));
      else await pipeline.handle(raw);
      handled = i + 1;
      if (pipeline.handledSinceCheckpoint >= spec.serveEvery) await checkpoint();
      if (spec.onProgress && handled % 1000 === 0) spec.onProgress(handled, n);
    }
    await checkpoint();
  } finally {
    await sidecar.stop();
  }

  // Outcomes by role.
  const byStage: RunResult['quarantineByStage'] = {};
  let honestQ = 0;
  let poisonQ = 0;
  stream.items.forEach((item, i) => {
    if (!quarantined.has(i)) return;
    const stage = stageOf.get(i) ?? 'schema';
    byStage[stage] ??= { poison: 0, honest: 0, attacker: 0 };
    byStage[stage][item.role] += 1;
    if (item.role === 'honest') honestQ += 1;
    if (item.role === 'poison') poisonQ += 1;
  });
  const registry = sidecar.screens.registry;
  // An honest source's first record: a registry entry that starts later was forgotten and re-created (new again).
  const firstTs = new Map<string, number>();
  for (const x of stream.items) if (x.role === 'honest' && !firstTs.has(x.source)) firstTs.set(x.source, x.ts);
  // Trust lost: forgotten (re-created later, new again), blocked, struck for its own volume, or penalised enough to
  // cut its trust by a tenth or more (the factor 1/(1 + penalties) of filters/source-registry.ts `trust`, decayed to
  // the end of the stream). A gate rollback gives every source of the undone update its share of one penalty —
  // with ~300 sources a crumb of ~0.003 that changes no admission — so "any penalty" would count every honest
  // source of a clean stream as harmed. Honest quarantines are their own column.
  let lost = 0;
  for (const [s, t0] of firstTs) {
    const e = registry.get(s);
    const marks = registry.marks(s);
    if (!e || registry.isBlocked(s) || marks.strikes > 0 || marks.penalties >= 1 / 9 || e.firstSeen > t0 + 60_000) lost += 1;
  }
  const cost = screenCosts(stream, costs, detectors.map((d) => d.name));
  const gate = sidecar.gate;
  rmSync(dir, { recursive: true, force: true });
  const final = curve[curve.length - 1];
  return {
    records: n,
    accuracy: final.accuracy,
    attackSuccess: final.attackSuccess,
    honestQuarantine: honestQ / Math.max(1, stream.honestCount),
    poisonAdmitted: stream.poisonCount > 0 ? 1 - poisonQ / stream.poisonCount : null,
    trustLost: lost / Math.max(1, firstTs.size),
    ...cost,
    checkpointBytes,
    screenStateBytes,
    quarantineByStage: byStage,
    curve,
    gate: gate ? { undone: gate.rejected, kept: gate.accepted, rollbacks: gate.rollbackCount } : null,
    oracleQueries,
    seconds: (Date.now() - started) / 1000,
    backend: sidecar.status().backend,
    served: sidecar.serving.snapshot(),
    config,
  };
}

/** The screen chain alone, as Pipeline.decide runs it (first objection quarantines). */
function screenOnly(detectors: Sidecar['screens']['detectors'], record: TrainingRecord, raw: RawMessage, onQuarantine: () => void): void {
  for (const d of detectors) {
    if (d.screen(record, raw).kind === 'quarantine') {
      onQuarantine();
      return;
    }
  }
}

/**
 * Screening cost: for each screen, its median cost on the records the attacker crafted (poison, or campaign
 * reports whose content it chose), over the median honest record's cost through the whole chain. A median, not a
 * maximum: one record's time is dominated by GC pauses and JIT warm-up (toxicity's slowest clean mail in one pass
 * took 25–37 ms; timed three times, never over 1 ms). Without crafted records, the 90th percentile of all records.
 */
function screenCosts(stream: Stream, costs: Float64Array[], names: string[]) {
  const honest: number[] = [];
  stream.items.forEach((x, i) => {
    if (x.role === 'honest') honest.push(costs.reduce((a, c) => a + c[i], 0));
  });
  const base = Math.max(median(honest), 1e-3);
  let worst = 0;
  let top: string | null = null;
  const byStage: Record<string, number> = {};
  costs.forEach((c, k) => {
    const crafted: number[] = [];
    const all: number[] = [];
    stream.items.forEach((x, i) => {
      all.push(c[i]);
      if (x.role === 'poison' || x.crafted) crafted.push(c[i]);
    });
    const sorted = [...all].sort((a, b) => a - b);
    const v = crafted.length > 0 ? median(crafted) : sorted[Math.floor(0.9 * (sorted.length - 1))];
    byStage[names[k]] = Number(v.toFixed(1));
    if (v / base > worst) {
      worst = v / base;
      top = names[k];
    }
  });
  return { screenCostRatio: Number(worst.toFixed(2)), screenCostTop: top, medianRecordMicros: Number(base.toFixed(1)), screenMicrosByStage: byStage };
}
