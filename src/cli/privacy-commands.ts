/**
 * `tayguard epsilon` and `tayguard noise`: privacy calculators over the accountants in privacy/accountants.
 *
 *   tayguard epsilon --sample-rate 0.01 --noise-multiplier 1 --steps 1000 --delta 1e-5 [--accountant prv] [--json]
 *   tayguard noise --target-epsilon 3 --sample-rate 0.01 --steps 1000 --delta 1e-5 [--accountant rdp] [--json]
 *
 * Options (including required ones) are validated here rather than by commander so every bad or missing
 * value gets one line saying what is wrong; usage errors exit with 2 (the CLI's convention), failures with 1.
 */
import type { Command } from 'commander';
import { TayguardError } from '../../core/errors';
import { AccountantKind, getNoiseMultiplier, prvEpsilon, rdpEpsilon } from '../../privacy/accountants';

export interface EpsilonAnswer {
  epsilon: number;
  accountant: AccountantKind;
  order: number | null;
}

export interface NoiseAnswer {
  noiseMultiplier: number;
}

type RawOptions = Record<string, string | boolean | undefined>;

const usage = (message: string): TayguardError => new TayguardError('ARGUMENT_INVALID', message);

function number(raw: RawOptions, flag: string, key: string): number {
  const text = raw[key];
  if (text === undefined || typeof text !== 'string') throw usage(`missing --${flag}`);
  const value = text.trim() === '' ? NaN : Number(text);
  if (!Number.isFinite(value)) throw usage(`--${flag} must be a number, got '${text}'`);
  return value;
}

function accountantOf(raw: RawOptions): AccountantKind {
  const value = raw.accountant ?? 'rdp';
  if (value !== 'rdp' && value !== 'prv') throw usage(`--accountant must be rdp or prv, got '${String(value)}'`);
  return value;
}

function integer(raw: RawOptions, flag: string, key: string): number {
  const value = number(raw, flag, key);
  if (!Number.isSafeInteger(value) || value < 1) throw usage(`--${flag} must be a positive integer, got '${String(raw[key])}'`);
  return value;
}

function probability(raw: RawOptions, flag: string, key: string, open: boolean): number {
  const value = number(raw, flag, key);
  const ok = open ? value > 0 && value < 1 : value >= 0 && value <= 1;
  if (!ok) throw usage(`--${flag} must be in ${open ? '(0, 1)' : '[0, 1]'}, got '${String(raw[key])}'`);
  return value;
}

function positive(raw: RawOptions, flag: string, key: string): number {
  const value = number(raw, flag, key);
  if (!(value > 0)) throw usage(`--${flag} must be > 0, got '${String(raw[key])}'`);
  return value;
}

/** What `tayguard epsilon` computes, from its raw (string) options. */
export function runEpsilon(raw: RawOptions): EpsilonAnswer {
  const sampleRate = probability(raw, 'sample-rate', 'sampleRate', false);
  const noiseMultiplier = positive(raw, 'noise-multiplier', 'noiseMultiplier');
  const steps = integer(raw, 'steps', 'steps');
  const delta = probability(raw, 'delta', 'delta', true);
  const accountant = accountantOf(raw);
  const history = [{ sampleRate, noiseMultiplier, steps }];
  const result = accountant === 'rdp' ? rdpEpsilon(history, delta) : prvEpsilon(history, delta);
  return { epsilon: result.epsilon, accountant, order: result.order };
}

/** What `tayguard noise` computes, from its raw (string) options. */
export function runNoise(raw: RawOptions): NoiseAnswer {
  const targetEpsilon = positive(raw, 'target-epsilon', 'targetEpsilon');
  const sampleRate = probability(raw, 'sample-rate', 'sampleRate', false);
  const steps = integer(raw, 'steps', 'steps');
  const delta = probability(raw, 'delta', 'delta', true);
  const accountant = accountantOf(raw);
  return { noiseMultiplier: getNoiseMultiplier({ targetEpsilon, delta, sampleRate, steps, accountant }) };
}

/** Run `compute`, print its answer, and turn errors into one-line usage (exit 2) or failure (exit 1) messages. */
function answer<T>(command: Command, json: boolean, compute: () => T, human: (value: T) => string): void {
  let value: T;
  try {
    value = compute();
  } catch (err) {
    if (TayguardError.is(err) && err.code === 'ARGUMENT_INVALID') {
      command.error(`error: ${err.message} (see 'tayguard ${command.name()} --help')`, { exitCode: 2, code: 'tayguard.argumentInvalid' });
    }
    const message = TayguardError.is(err) ? `${err.code}: ${err.message}` : String((err as Error)?.message ?? err);
    command.error(`error: ${message}`, { exitCode: 1, code: 'tayguard.failed' });
  }
  process.stdout.write(json ? `${JSON.stringify(value)}\n` : `${human(value)}\n`);
}

export function registerPrivacyCommands(program: Command): void {
  program
    .command('epsilon')
    .description('privacy spent (epsilon at delta) by DP-SGD with Poisson sampling')
    .option('--sample-rate <q>', '(required) Poisson sampling rate in [0, 1] (batch size / dataset size)')
    .option('--noise-multiplier <sigma>', '(required) noise std / clipping norm, > 0')
    .option('--steps <n>', '(required) number of training steps, a positive integer')
    .option('--delta <d>', '(required) target delta in (0, 1), below 1/dataset size')
    .option('--accountant <kind>', 'rdp (Mironov et al. 2019) or prv (Gopi et al. 2021)', 'rdp')
    .option('--json', 'print {"epsilon", "accountant", "order"} as JSON')
    .action(function (this: Command, opts: RawOptions) {
      answer(this, opts.json === true, () => runEpsilon(opts), (a) => {
        const order = a.order === null ? '' : ` (best RDP order ${a.order})`;
        return `epsilon = ${a.epsilon.toFixed(4)} at delta = ${String(opts.delta)} [${a.accountant}]${order}`;
      });
    });

  program
    .command('noise')
    .description('noise multiplier that keeps epsilon under a target (Opacus get_noise_multiplier bisection)')
    .option('--target-epsilon <eps>', '(required) epsilon budget, > 0')
    .option('--sample-rate <q>', '(required) Poisson sampling rate in (0, 1]')
    .option('--steps <n>', '(required) number of training steps, a positive integer')
    .option('--delta <d>', '(required) target delta in (0, 1)')
    .option('--accountant <kind>', 'rdp or prv', 'rdp')
    .option('--json', 'print {"noiseMultiplier"} as JSON')
    .action(function (this: Command, opts: RawOptions) {
      answer(this, opts.json === true, () => runNoise(opts), (a) => `noise multiplier = ${a.noiseMultiplier}`);
    });
}
