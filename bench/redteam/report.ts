/**
 * The issue's targets, judged on a scenario's figures against the clean run with the same configuration and
 * seed, the attacker's score used to pick the worst setting of each family, and the markdown report.
 *
 * Targets (issue 10, item 8), at ≤ 20% poisoned traffic: accuracy within 2 points of the clean run; backdoor
 * success ≤ 10%; honest quarantine ≤ 2%; no screen over 5× the median record's screening cost; checkpoint size
 * within its configured budget.
 */
import type { Config } from '../../src/config';
import type { CurvePoint } from './harness';

export const TARGETS = { accuracyDrop: 0.02, backdoorSuccess: 0.1, honestQuarantine: 0.02, screenCostRatio: 5 };

/** One scenario run's figures, as the JSON reports them. */
export interface Row {
  name: string;
  family: string;
  params: Record<string, number | string>;
  config: 'defaults' | 'defaults+gate';
  seed: string;
  accuracy: number;
  cleanAccuracy: number;
  attackSuccess: number | null;
  /** The same success measure on the clean run's model (what the model does without the attack). */
  cleanAttackSuccess: number | null;
  honestQuarantine: number;
  cleanHonestQuarantine: number;
  trustLost: number;
  cleanTrustLost: number;
  screenCostRatio: number;
  screenCostTop: string | null;
  screenMicrosByStage: Record<string, number>;
  medianRecordMicros: number;
  checkpointBytes: number;
  cleanCheckpointBytes: number;
  checkpointBudget: number | null;
  screenStateBytes: number;
  poisonShare: number;
  poisonAdmitted: number | null;
  backdoor: boolean;
  /** What attack success means in this family. */
  success: string;
  judged: boolean;
  records: number;
  curve: CurvePoint[];
  /** The counterfactual's curve, at the same messages. */
  cleanCurve: CurvePoint[];
  gate: { undone: number; kept: number; rollbacks: number } | null;
  attacker?: Record<string, number>;
  quarantineByStage: Record<string, { poison: number; honest: number; attacker: number }>;
  seconds: number;
}

/**
 * The checkpoint's configured byte budget: CHECKPOINT_MAX_BYTES (config.ops.checkpointBudgetBytes,
 * src/checkpoint/budget.ts). The null branch stays for results of builds without one ("no budget").
 */
export function checkpointBudget(config: Config): number | null {
  const budget: unknown = config.ops.checkpointBudgetBytes;
  return typeof budget === 'number' && Number.isFinite(budget) ? budget : null;
}

export interface Verdicts {
  accuracy: boolean;
  backdoor: boolean | null;
  honestQuarantine: boolean;
  screenCost: boolean;
  checkpoint: boolean;
}

export type Figures = Pick<Row, 'accuracy' | 'cleanAccuracy' | 'attackSuccess' | 'honestQuarantine' | 'screenCostRatio' | 'checkpointBytes' | 'checkpointBudget' | 'backdoor'>;

export function verdicts(r: Figures): Verdicts {
  return {
    accuracy: r.cleanAccuracy - r.accuracy <= TARGETS.accuracyDrop,
    backdoor: r.backdoor ? (r.attackSuccess ?? 0) <= TARGETS.backdoorSuccess : null,
    honestQuarantine: r.honestQuarantine <= TARGETS.honestQuarantine,
    screenCost: r.screenCostRatio <= TARGETS.screenCostRatio,
    checkpoint: r.checkpointBudget !== null && r.checkpointBytes <= r.checkpointBudget,
  };
}

/**
 * The attacker's objective for picking the worst setting: the largest ratio of a figure to its target (above 1 =
 * that target fails), plus a tenth of the attack's own success to break ties between settings that fail nothing.
 * The checkpoint counts as its growth over the clean run when no budget is configured.
 */
export function score(r: Row): number {
  const ratios = [
    (r.cleanAccuracy - r.accuracy) / TARGETS.accuracyDrop,
    r.honestQuarantine / TARGETS.honestQuarantine,
    r.screenCostRatio / TARGETS.screenCostRatio,
    r.checkpointBudget !== null ? r.checkpointBytes / r.checkpointBudget : r.checkpointBytes / Math.max(1, r.cleanCheckpointBytes),
  ];
  if (r.backdoor) ratios.push((r.attackSuccess ?? 0) / TARGETS.backdoorSuccess);
  return Math.max(...ratios) + 0.1 * (r.attackSuccess ?? 0);
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

/** Means over the reporting seeds of one family and configuration (curves point by point). */
export function summarise(rows: readonly Row[]) {
  const m = (f: (r: Row) => number | null) => {
    const xs = rows.map(f).filter((x): x is number => x !== null);
    return xs.length === 0 ? null : Number(mean(xs).toFixed(4));
  };
  const first = rows[0];
  const points = Math.min(...rows.map((r) => r.curve.length));
  const figures: Figures = {
    accuracy: m((r) => r.accuracy) as number,
    cleanAccuracy: m((r) => r.cleanAccuracy) as number,
    attackSuccess: m((r) => r.attackSuccess),
    honestQuarantine: m((r) => r.honestQuarantine) as number,
    screenCostRatio: m((r) => r.screenCostRatio) as number,
    checkpointBytes: Math.max(...rows.map((r) => r.checkpointBytes)),
    checkpointBudget: first.checkpointBudget,
    backdoor: first.backdoor,
  };
  return {
    family: first.family,
    config: first.config,
    params: first.params,
    seeds: rows.map((r) => r.seed),
    ...figures,
    accuracyDrop: Number((figures.cleanAccuracy - figures.accuracy).toFixed(4)),
    worstSeedAccuracyDrop: Number(Math.max(...rows.map((r) => r.cleanAccuracy - r.accuracy)).toFixed(4)),
    cleanAttackSuccess: m((r) => r.cleanAttackSuccess),
    cleanHonestQuarantine: m((r) => r.cleanHonestQuarantine),
    trustLost: m((r) => r.trustLost),
    cleanTrustLost: m((r) => r.cleanTrustLost),
    screenCostTop: first.screenCostTop,
    cleanCheckpointBytes: Math.max(...rows.map((r) => r.cleanCheckpointBytes)),
    screenStateBytes: Math.max(...rows.map((r) => r.screenStateBytes)),
    poisonShare: m((r) => r.poisonShare),
    poisonAdmitted: m((r) => r.poisonAdmitted),
    judged: first.judged,
    success: first.success,
    gate: first.gate ? { undone: m((r) => r.gate?.undone ?? 0), kept: m((r) => r.gate?.kept ?? 0), rollbacks: m((r) => r.gate?.rollbacks ?? 0) } : null,
    damageOverTime: Array.from({ length: points }, (_, i) => ({ at: rows[0].curve[i].at, accuracy: m((r) => r.curve[i].accuracy), cleanAccuracy: m((r) => r.cleanCurve[i]?.accuracy ?? null), attackSuccess: m((r) => r.curve[i].attackSuccess) })),
    targets: first.judged ? verdicts(figures) : null,
  };
}

export type Summary = ReturnType<typeof summarise>;

const pct = (x: number | null | undefined, d = 1) => (x === null || x === undefined ? '—' : `${(100 * x).toFixed(d)}%`);
const mb = (b: number) => `${(b / 1e6).toFixed(1)} MB`;
const mark = (v: boolean | null | undefined) => (v === null || v === undefined ? '—' : v ? 'pass' : '**FAIL**');

interface CleanRow {
  kind: string;
  seed: string;
  config: string;
  accuracy: number;
  honestQuarantine: number;
  trustLost: number;
  checkpointBytes: number;
  screenStateBytes: number;
  gate: { undone: number; kept: number; rollbacks: number } | null;
}

export function markdown(r: { command: string; date: string; machine: { cores: number; backend: string; node: string }; seconds: number; settings: Record<string, unknown>; worstByFamily: Summary[]; clean: CleanRow[]; tuning: { family: string; params: unknown; score: number; seeds: string[] }[] }): string {
  const L: string[] = ['# Red-team benchmark', ''];
  L.push(`\`${r.command}\` — ${r.date}, ${r.machine.cores} cores, ${r.machine.backend} backend, Node ${r.machine.node}, ${r.seconds} s.`, '');
  L.push(`Settings: ${Object.entries(r.settings).map(([k, v]) => `${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`).join('; ')}.`, '');
  L.push('Worst case of each family (the setting that scored worst on the tuning seeds), means over the reporting seeds. Each run is compared with its clean counterpart: the same stream with every message the attacker sent or wrote emptied (consumed, never trained), so steps, coins and DP noise are the same and the difference is the attack\'s alone. Targets at ≤ 20% poisoned traffic: accuracy within 2 points of the clean run (same configuration and seeds); backdoor success ≤ 10%; honest quarantine ≤ 2%; no screen over 5× the median record\'s screening cost; checkpoint within its configured budget.', '');
  L.push('| family | config | worst setting | poison share | accuracy (clean) | attack success (clean model) | honest quarantine (clean) | trust lost (clean) | screen cost ×median (screen) | checkpoint (clean) | accuracy | backdoor | quarantine | cost | checkpoint |');
  L.push('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const s of r.worstByFamily) {
    const t = s.targets;
    L.push(
      `| ${s.family} | ${s.config} | ${Object.entries(s.params).map(([k, v]) => `${k}=${v}`).join(' ')} | ${pct(s.poisonShare)} | ${pct(s.accuracy)} (${pct(s.cleanAccuracy)}) | ${pct(s.attackSuccess)} (${pct(s.cleanAttackSuccess)}) | ${pct(s.honestQuarantine, 2)} (${pct(s.cleanHonestQuarantine, 2)}) | ${pct(s.trustLost)} (${pct(s.cleanTrustLost)}) | ${s.screenCostRatio.toFixed(1)}× (${s.screenCostTop ?? '—'}) | ${mb(s.checkpointBytes)} (${mb(s.cleanCheckpointBytes)}) | ${t ? mark(t.accuracy) : 'not judged'} | ${t ? mark(t.backdoor) : '—'} | ${t ? mark(t.honestQuarantine) : '—'} | ${t ? mark(t.screenCost) : '—'} | ${t ? (s.checkpointBudget === null ? '**FAIL** (no budget)' : mark(t.checkpoint)) : '—'} |`,
    );
  }
  L.push('', 'Clean runs (reporting seeds; what every scenario is compared with):', '');
  L.push('| task | config | seed | accuracy | honest quarantine | trust lost | checkpoint | screen state | gate: steps undone / kept |', '|---|---|---|---|---|---|---|---|---|');
  for (const c of r.clean) {
    L.push(`| ${c.kind} | ${c.config} | ${c.seed} | ${pct(c.accuracy)} | ${pct(c.honestQuarantine, 2)} | ${pct(c.trustLost)} | ${mb(c.checkpointBytes)} | ${(c.screenStateBytes / 1e3).toFixed(0)} kB | ${c.gate ? `${c.gate.undone} / ${c.gate.kept}` : '—'} |`);
  }
  L.push('', 'Attack success, per family:', '');
  const seen = new Set<string>();
  for (const s of r.worstByFamily) {
    if (seen.has(s.family)) continue;
    seen.add(s.family);
    L.push(`- **${s.family}**: ${s.success}.`);
  }
  L.push('', 'Damage over time (the served model after each checkpoint, at that many messages: accuracy, clean run\'s accuracy in brackets / attack success):', '');
  for (const s of r.worstByFamily) {
    L.push(`- ${s.family}, ${s.config}: ${s.damageOverTime.map((p) => `${p.at}: ${pct(p.accuracy)} (${pct(p.cleanAccuracy)})${p.attackSuccess !== null ? ` / ${pct(p.attackSuccess)}` : ''}`).join(' · ')}`);
  }
  L.push('', 'How to read this:', '');
  L.push('- Every record goes through the real sidecar record path in one process (createSidecar with the config loader\'s defaults: schema, event time from the Kafka timestamp, the default screens, dedup, the DP trainer, the update gate as a step stage when CANARY_FILE is set, the checkpoint encoder and store, the served moving average); no Kafka. The attacker queries the real HTTP app (POST /v1/predict) on a local port.');
  L.push('- Consumption runs at full speed (a busy stream or a replay): the wall-clock quiet-stream ticks do not run, and the sidecar checkpoints and publishes every 500 records (its 5 s timer at ~100 records/s). DP_SEED is the run\'s seed: the noise is reproducible, not secure.');
  L.push('- The clean figure of a scenario is its counterfactual, not a shorter clean stream: a DP model that has taken fewer steps is a worse one (a 3,000-record clean stream scores 3–5 points below the same stream with 750 empty slots), which would credit every attack with the extra steps its records cause.');
  L.push('- The sybil flush (100,000 + 1,000 one-record accounts in five minutes) goes through the screens only: its effect is on their state; training on it would take minutes per run. It needs ~97% of this stream, so it is reported, not judged.');
  L.push('- Trust lost: the share of honest sources that end the stream forgotten (new again), blocked, struck for their own volume, or penalised by the update gate enough to cut their trust by a tenth or more (a rollback gives each source of the undone update its share of one penalty; with ~300 sources that is a crumb no admission notices, so it is not counted).');
  L.push('- Screening cost: for each screen, the median µs on the records the attacker crafted, over the median honest record\'s µs through the whole chain (one record\'s time is dominated by GC pauses: toxicity\'s slowest clean mail took 25–37 ms in one pass and under 1 ms when timed three times).');
  L.push('- Checkpoint: the newest checkpoint file\'s size (the DP pool keeps each pooled record\'s text or features), against CHECKPOINT_MAX_BYTES (the configured budget; start-up refuses a configuration whose worst case exceeds it).');
  L.push('- Attackers who have read the defences: the oracle flood\'s spread setting pads so that every 40-token window reads as acceptable to the public model (the witness\'s parts rule judges windows); the reverse flood reports honest mail as spam; the dos family\'s slow-path setting is made of the words that send echo and toxicity down their slowest paths.');
  L.push('- The attacker\'s choice is tuned under the defaults only (a second tuning under the gate would double the run); the same setting is then reported with the gate.');
  L.push('', 'Tuning (attacker\'s score: the largest figure/target ratio, > 1 fails a target, + 0.1 × attack success; mean over the tuning seeds, configuration "defaults"):', '');
  L.push('| family | setting | score |', '|---|---|---|');
  for (const t of r.tuning) L.push(`| ${t.family} | ${JSON.stringify(t.params)} | ${t.score.toFixed(2)} |`);
  return `${L.join('\n')}\n`;
}
