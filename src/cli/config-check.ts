/**
 * `tayguard config check`: validate the environment the way `tayguard serve` would, without starting anything,
 * print the effective configuration and what one privacy window costs in ε.
 *
 *   tayguard config check [--json] [--env-only] [--rate <messages/s>]
 *
 * Exit codes follow the CLI's convention: 0 valid, 2 invalid (CONFIG_INVALID, one line per problem with its
 * fix). The rules are the config loader's own (src/config.ts) plus the checks `serve` would otherwise only meet
 * at start-up: SCREENS_CONFIG against the detectors' schema, and the files and directories named by the
 * settings (skipped with --env-only, e.g. when checking a Kubernetes ConfigMap on a laptop).
 */
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { configSchema, loadConfig, type Config, type Env } from '../config';
import { TayguardError } from '../../core/errors';
import { prvEpsilon, rdpEpsilon } from '../../privacy/accountants';
import { sourceSampleRate } from '../../privacy/budget';
import { parseDetectorSettings } from '../../filters/config';
import { WITNESS_OFF } from '../config-witness';
import { formatScheduleAdvice, scheduleAdvice, type ScheduleAdvice } from './schedule-advice';
import { checkCheckpointBudget, configModelParams, configScreenStateBytes, describeWorstCase, worstCaseCheckpoint, type CheckpointWorstCase } from '../checkpoint/budget';

/** Read outside src/config.ts (src/tf.ts); listed so a typo of it is caught too. */
const OTHER_SETTINGS = ['TFJS_BACKEND'] as const;

export interface WindowCost {
  readonly unit: 'record' | 'source';
  readonly steps: number;
  /** Per-step inclusion probability: q for a record, 1-(1-q)^k for a source. */
  readonly sampleRate: number;
  readonly noiseMultiplier: number;
  readonly delta: number;
  readonly epsilonRdp: number;
  readonly rdpOrder: number | null;
  /** null when the PRV grid would be too large (the ledger then uses RDP, also a valid bound). */
  readonly epsilonPrv: number | null;
  /** The accountant a new ledger decides with (ACCOUNTANT; unset = PRV) and its figure. */
  readonly accountant: 'rdp' | 'prv';
  /** False when ACCOUNTANT is unset: an existing checkpoint's ledger then keeps the accountant it was kept with. */
  readonly accountantSet: boolean;
  readonly epsilon: number;
  readonly epsilonLimit: number;
  /** unit=source: whole windows a continuously active source can take part in before it is refused (RDP). */
  readonly windowsPerSource: number | null;
}

export interface CheckReport {
  readonly ok: true;
  /** The loader's Config with ADMIN_TOKEN replaced by its length. */
  readonly config: unknown;
  /** Settings taken from the environment; all others are defaults. */
  readonly fromEnvironment: readonly string[];
  /** null with DP_ENABLED=false: no ε is claimed. */
  readonly window: WindowCost | null;
  /** What S and W mean in messages (and in seconds at --rate); null with DP_ENABLED=false. */
  readonly schedule: ScheduleAdvice | null;
  /** CHECKPOINT_MAX_BYTES and the worst-case checkpoint from the configuration (src/checkpoint/budget.ts). */
  readonly checkpoint: { readonly budgetBytes: number; readonly worstCase: CheckpointWorstCase; readonly modelKnown: boolean };
  readonly warnings: readonly string[];
}

const KNOWN = [...Object.keys(configSchema.shape), ...OTHER_SETTINGS];

/** ε of one window of the configured mechanism, by both accountants (the same composition the loader checks). */
export function windowCost(privacy: NonNullable<Config['privacy']>): WindowCost {
  const source = privacy.unit === 'source';
  const q = source ? sourceSampleRate(privacy.sampleRate, privacy.maxRecordsPerSource) : privacy.sampleRate;
  const segment = { sampleRate: q, noiseMultiplier: privacy.noiseMultiplier, steps: privacy.window };
  const rdp = rdpEpsilon([segment], privacy.delta);
  let prv: number | null = null;
  try {
    prv = prvEpsilon([segment], privacy.delta).epsilon;
  } catch {
    prv = null;
  }
  let windowsPerSource: number | null = null;
  if (source) {
    // A source active in n consecutive windows composes n·W steps; find the largest n within the limit.
    const within = (n: number) => rdpEpsilon([{ ...segment, steps: n * privacy.window }], privacy.delta).epsilon <= privacy.epsilonLimit;
    let lo = 0;
    let hi = 1;
    while (within(hi) && hi < 1e9) hi *= 2;
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      if (within(mid)) lo = mid;
      else hi = mid;
    }
    windowsPerSource = lo;
  }
  // The loader's rule (src/config.ts): PRV unless ACCOUNTANT=rdp, RDP where PRV's grid would be too large.
  const accountant = privacy.accountant ?? 'prv';
  const epsilon = accountant === 'prv' && prv !== null ? prv : rdp.epsilon;
  return {
    unit: privacy.unit,
    steps: privacy.window,
    sampleRate: q,
    noiseMultiplier: privacy.noiseMultiplier,
    delta: privacy.delta,
    epsilonRdp: rdp.epsilon,
    rdpOrder: rdp.order,
    epsilonPrv: prv,
    accountant,
    accountantSet: privacy.accountant !== undefined,
    epsilon,
    epsilonLimit: privacy.epsilonLimit,
    windowsPerSource,
  };
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return row[b.length];
}

/** Variables that look like a misspelt setting: tayguard would silently ignore them. */
export function likelyTypos(env: Env): string[] {
  const out: string[] = [];
  for (const name of Object.keys(env).sort()) {
    if (KNOWN.includes(name) || !/^[A-Z][A-Z0-9_]{3,}$/.test(name)) continue;
    // Short names only one edit away (HOME is two from HOST and must not be flagged).
    const limit = name.length <= 6 ? 1 : 2;
    const near = KNOWN.filter((k) => editDistance(name, k) <= limit);
    if (near.length > 0) out.push(`${name} is not a tayguard setting and is ignored: did you mean ${near.join(' or ')}?`);
  }
  return out;
}

/** The default of a setting as the schema gives it, for "unset it" advice; undefined when it has none. */
function defaultOf(name: string): unknown {
  const field = (configSchema.shape as Record<string, { safeParse(v: unknown): { success: boolean; data?: unknown } }>)[name];
  const r = field?.safeParse(undefined);
  return r?.success ? r.data : undefined;
}

/** The loader's problem lines, each with the default to fall back to where there is one. */
function withFixes(error: TayguardError): TayguardError {
  const lines = error.message.split('\n');
  const fixed = lines.map((line) => {
    const m = /^ {2}([A-Z][A-Z0-9_]+): /.exec(line);
    if (!m) return line;
    const d = defaultOf(m[1]);
    // Only single-setting problems have this `NAME: ` form; rules between settings carry their own fix.
    if (d === undefined) return line;
    return `${line} — fix it, or unset ${m[1]} for the default (${Array.isArray(d) ? d.join(',') : String(d)})`;
  });
  return new TayguardError('CONFIG_INVALID', fixed.join('\n'), { cause: error });
}

/** Problems `serve` would meet only at start-up: detector settings, files, directories. */
function startupProblems(config: Config, checkFiles: boolean): string[] {
  const problems: string[] = [];
  try {
    parseDetectorSettings(config.screens.settings);
  } catch (e) {
    // The detectors' message is a heading plus one indented line per problem; keep the problems.
    const lines = (e as Error).message.split('\n').slice(1).map((l) => l.trim());
    problems.push(`SCREENS_CONFIG: ${lines.join('; ')} (schema: filters/config.ts; README "Poisoning screens")`);
  }
  if (!checkFiles) return problems;
  const readable = (name: string, file: string, what: string) => {
    try {
      accessSync(file, constants.R_OK);
    } catch (e) {
      problems.push(`${name}: ${file} cannot be read (${(e as NodeJS.ErrnoException).code}): ${what}`);
    }
  };
  if (config.gate) readable('CANARY_FILE', config.gate.canaryFile, 'point it at a JSONL file of trusted records, or unset it to run without the update gate');
  if (config.model.path) readable('MODEL_PATH', path.join(config.model.path, 'model.json'), 'point it at a directory holding a tfjs model.json and its weights');
  if (config.witness?.dataFile) readable('WITNESS_DATA', config.witness.dataFile, 'point it at a JSONL file of public or consented labelled records, or unset it');
  if (config.witness?.modelPath) readable('WITNESS_MODEL_PATH', path.join(config.witness.modelPath, 'pretrain.json'), 'point it at a directory written by `tayguard pretrain --public … --out DIR`, or unset it');
  for (const [name, dir] of [['CHECKPOINT_DIR', config.checkpoint.dir], ['MODEL_DIR', config.checkpoint.modelDir]] as const) {
    // The sidecar creates missing directories, so what must be writable is the nearest one that exists.
    let existing = path.resolve(dir);
    while (!existsSync(existing) && path.dirname(existing) !== existing) existing = path.dirname(existing);
    const isDir = existsSync(existing) && statSync(existing).isDirectory();
    if (!isDir) {
      problems.push(`${name}: ${dir} is not writable (ENOTDIR at ${existing}): give the service user a writable directory (a volume in a container)`);
      continue;
    }
    try {
      accessSync(existing, constants.W_OK);
    } catch (e) {
      problems.push(`${name}: ${dir} is not writable (${(e as NodeJS.ErrnoException).code ?? 'error'} at ${existing}): give the service user a writable directory (a volume in a container)`);
    }
  }
  return problems;
}

export function checkConfig(env: Env, options: { checkFiles?: boolean; rate?: number } = {}): CheckReport {
  let config: Config;
  try {
    config = loadConfig(env);
  } catch (e) {
    throw TayguardError.is(e) && e.code === 'CONFIG_INVALID' ? withFixes(e) : e;
  }
  const problems = startupProblems(config, options.checkFiles ?? true);
  const params = configModelParams(config);
  const worstCase = worstCaseCheckpoint(config, { modelParams: params ?? 0, screenStateBytes: configScreenStateBytes(config) });
  try {
    checkCheckpointBudget(worstCase, config.ops.checkpointBudgetBytes);
  } catch (e) {
    problems.push(`CHECKPOINT_MAX_BYTES: ${(e as Error).message}`);
  }
  if (problems.length > 0) {
    throw new TayguardError('CONFIG_INVALID', `invalid configuration (fix these environment variables; see README "Configuration"):\n  ${problems.join('\n  ')}`);
  }
  const warnings = likelyTypos(env);
  if (config.privacy?.seed) warnings.push('DP_SEED is set: DP noise and sampling are reproducible and INSECURE; unset it outside tests and replays');
  if (!config.privacy) warnings.push('DP_ENABLED=false: training is plain SGD and no ε is claimed');
  if (!config.http.adminToken) warnings.push('ADMIN_TOKEN is not set: the admin API (quarantine review and release, source blocking) is off');
  if (config.witness === null) warnings.push(`witness screen off: ${WITNESS_OFF}`);
  else if (!config.screens.enabled.includes('witness')) warnings.push('trusted data is configured but SCREENS leaves out witness: add it to judge labels by a model nobody outside can query');
  if (config.screens.enabled.includes('label-consistency')) {
    warnings.push('label-consistency judges records by the model POST /v1/predict serves: an attacker can query it until a record passes (oracle-exposed); the witness screen judges by a model nobody outside can query');
  }
  if (env.PREDICT_PROBABILITY_STEP !== undefined && env.PREDICT_PROBABILITY_STEP !== '' && config.http.predictOutput.mode !== 'coarse') {
    warnings.push(`PREDICT_PROBABILITY_STEP is set but PREDICT_OUTPUT=${config.http.predictOutput.mode}: the step is used only with PREDICT_OUTPUT=coarse`);
  }
  const redacted = { ...config, http: { ...config.http, adminToken: config.http.adminToken ? `<set, ${config.http.adminToken.length} chars>` : undefined } };
  return {
    ok: true,
    config: redacted,
    fromEnvironment: KNOWN.filter((k) => env[k] !== undefined && env[k] !== ''),
    window: config.privacy ? windowCost(config.privacy) : null,
    schedule: scheduleAdvice(config, options.rate),
    checkpoint: { budgetBytes: config.ops.checkpointBudgetBytes, worstCase, modelKnown: params !== undefined },
    warnings,
  };
}

const fmt = (x: number) => Number(x.toPrecision(4)).toString();

function flatten(value: unknown, prefix = '', out: [string, string][] = []): [string, string][] {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else if (value !== undefined) {
    out.push([prefix, Array.isArray(value) ? value.join(',') || '(none)' : value === null ? 'off' : String(value)]);
  }
  return out;
}

export function formatReport(r: CheckReport): string {
  const lines = [`configuration OK (${r.fromEnvironment.length} setting(s) from the environment, the rest defaults)`, ''];
  const rows = flatten(r.config);
  const width = Math.max(...rows.map(([k]) => k.length));
  for (const [k, v] of rows) lines.push(`  ${k.padEnd(width)}  ${v}`);
  lines.push('', `from the environment: ${r.fromEnvironment.join(', ') || '(nothing)'}`, '');
  const w = r.window;
  if (!w) lines.push('privacy: none (DP_ENABLED=false): plain SGD, no ε is claimed');
  else {
    const rate = w.unit === 'source' ? `q_source=${fmt(w.sampleRate)} (1-(1-q)^k)` : `q=${fmt(w.sampleRate)}`;
    lines.push(
      `privacy: one window = ${w.steps} steps at ${rate}, σ=${w.noiseMultiplier}: ε = ${fmt(w.epsilonRdp)} (RDP, order ${w.rdpOrder}), ` +
        `${w.epsilonPrv === null ? 'PRV unavailable' : `${fmt(w.epsilonPrv)} (PRV)`} at δ=${w.delta < 1e-3 ? w.delta.toExponential() : w.delta}; the ledger decides with ${w.accountant.toUpperCase()}${w.accountantSet ? '' : ' (ACCOUNTANT unset: PRV for a new ledger, an existing checkpoint keeps its own)'}: ε = ${fmt(w.epsilon)} of the limit ${w.epsilonLimit}`,
    );
    lines.push(
      w.unit === 'record'
        ? `  every record takes part in exactly one window, so each record's ε is ${fmt(w.epsilon)}; the stream can run indefinitely at these settings`
        : `  a source is charged at q_source for every step while it has records in the pool: one that always has is refused after ${w.windowsPerSource} whole window(s) (${w.windowsPerSource! * w.steps} steps, by RDP)`,
    );
  }
  if (r.schedule) lines.push(...formatScheduleAdvice(r.schedule));
  const c = r.checkpoint;
  lines.push(
    `checkpoint: worst case ${describeWorstCase(c.worstCase)}${c.modelKnown ? '' : ' (without MODEL_PATH\'s model: serve adds it at start-up)'}; budget CHECKPOINT_MAX_BYTES = ${(c.budgetBytes / (1024 * 1024)).toFixed(1)} MiB`,
  );
  for (const warning of r.warnings) lines.push(`warning: ${warning}`);
  return `${lines.join('\n')}\n`;
}

export function registerConfigCommands(program: Command): void {
  const config = program.command('config').description('configuration tools');
  config
    .command('check')
    .description('validate the environment as `serve` would, print the effective config and what one privacy window costs in ε (exit 2 when invalid)')
    .option('--json', 'print {"ok", "config", "fromEnvironment", "window", "schedule", "warnings"} (or {"ok":false,"code","problems"}) as JSON')
    .option('--env-only', 'skip the checks of files and directories (CANARY_FILE, MODEL_PATH, WITNESS_DATA, WITNESS_MODEL_PATH, CHECKPOINT_DIR, MODEL_DIR)')
    .option('--rate <messages/s>', 'your traffic rate: print the step interval, window length and freshness in time')
    .action((opts: { json?: boolean; envOnly?: boolean; rate?: string }) => {
      try {
        const rate = opts.rate === undefined ? undefined : Number(opts.rate);
        if (rate !== undefined && !(rate > 0 && Number.isFinite(rate))) {
          throw new TayguardError('CONFIG_INVALID', `invalid configuration:\n  --rate: "${opts.rate}" is not a positive number of messages per second (e.g. --rate 50)`);
        }
        const report = checkConfig(process.env, { checkFiles: !opts.envOnly, rate });
        process.stdout.write(opts.json ? `${JSON.stringify(report)}\n` : formatReport(report));
      } catch (e) {
        if (!TayguardError.is(e) || e.code !== 'CONFIG_INVALID') throw e;
        const problems = e.message.split('\n').slice(1).map((l) => l.trim());
        if (opts.json) process.stdout.write(`${JSON.stringify({ ok: false, code: e.code, problems })}\n`);
        process.stderr.write(`tayguard: ${e.code}: ${e.message}\n`);
        process.exitCode = 2;
      }
    });
}
