/**
 * `tayguard config check`, run as a child process the way an operator runs it: exit codes, the fix on a bad
 * setting, and a window's ε checked against Opacus's figure for the same mechanism and against the loader's
 * own refusal boundary.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { rdpEpsilon } from '../../privacy/accountants';
import { sourceSampleRate } from '../../privacy/budget';

const ROOT = path.resolve(__dirname, '../..');
const TOKEN = 'a-secret-admin-token-0123456789';

function check(env: Record<string, string>, ...args: string[]) {
  // A clean environment (PATH only): what the operator sets is all the command sees.
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin/tayguard.js'), 'config', 'check', ...args], {
    cwd: mkdtempSync(path.join(tmpdir(), 'tayguard-config-')),
    env: { PATH: process.env.PATH ?? '', ...env },
    encoding: 'utf8',
    timeout: 60000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

// Opacus 1.5.4's ε for q=0.01, σ=1, 1000 steps, δ=1e-5 (test/fixtures/reference, with its provenance).
const reference = readFileSync(path.join(ROOT, 'test/fixtures/reference/accountant_reference.csv'), 'utf8')
  .split('\n')
  .find((l) => l.startsWith('0.01,1.0,1000,1e-05,'))!
  .split(',')
  .map(Number);
const [, , , , EPS_RDP, ORDER, EPS_PRV] = reference;
// 1,000 steps of 32 messages pool 32,032 records: at MAX_TEXT_CHARS=1000 their worst case fits CHECKPOINT_MAX_BYTES.
const MECHANISM = { KAFKA_BROKERS: 'kafka-0:9092,kafka-1:9092', SAMPLE_RATE: '0.01', NOISE_MULTIPLIER: '1', WINDOW_STEPS: '1000', DELTA: '1e-5', MAX_TEXT_CHARS: '1000' };

describe('tayguard config check', () => {
  it('accepts a valid environment: exit 0, the effective config without the admin token, one window at Opacus ε', () => {
    const r = check({ ...MECHANISM, ADMIN_TOKEN: TOKEN }, '--json');
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain(TOKEN);
    const report = JSON.parse(r.stdout);
    expect(report.ok).toBe(true);
    expect(report.config.kafka.brokers).toEqual(['kafka-0:9092', 'kafka-1:9092']);
    expect(report.config.http.adminToken).toBe(`<set, ${TOKEN.length} chars>`);
    expect(report.fromEnvironment.sort()).toEqual(['ADMIN_TOKEN', ...Object.keys(MECHANISM)].sort());
    expect(report.window.epsilonRdp).toBeCloseTo(EPS_RDP, 7);
    expect(report.window.rdpOrder).toBe(ORDER);
    // PRV: Opacus's figure within the accountants' eps_error (0.01) of ours.
    expect(Math.abs(report.window.epsilonPrv - EPS_PRV)).toBeLessThan(0.02);
    // ACCOUNTANT unset: a new ledger decides with PRV (src/config.ts).
    expect([report.window.accountant, report.window.accountantSet, report.window.epsilon]).toEqual(['prv', false, report.window.epsilonPrv]);
  });

  it('prints one screen for a person, and names a misspelt setting it would ignore', () => {
    const r = check({ ...MECHANISM, ADMIN_TOKEN: TOKEN, NOISE_MULTIPLER: '3' });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^configuration OK/);
    expect(r.stdout).toMatch(/privacy\.epsilonLimit\s+8\n/);
    expect(r.stdout).toContain(`one window = 1000 steps at q=0.01, σ=1: ε = ${Number(EPS_RDP.toPrecision(4))} (RDP, order ${ORDER})`);
    expect(r.stdout).toContain('warning: NOISE_MULTIPLER is not a tayguard setting and is ignored: did you mean NOISE_MULTIPLIER?');
  });

  it('says what the schedule means at the operator\'s traffic rate (--rate), and refuses a rate that is not one', () => {
    const report = JSON.parse(check({ KAFKA_BROKERS: 'k:9092' }, '--json', '--rate', '4').stdout);
    // Text defaults: S = 32, W = 50, q = 0.2, d = 0.95 → 1,600 messages a window, 320 records a step, 160 + 640.
    expect(report.schedule).toMatchObject({ stepEveryMessages: 32, windowMessages: 1600, expectedBatch: 320, freshnessMessages: 800 });
    expect(report.schedule.atRate).toEqual({ messagesPerSecond: 4, stepEverySeconds: 8, windowSeconds: 400, freshnessSeconds: 200 });
    const slow = check({ KAFKA_BROKERS: 'k:9092', STEP_EVERY_RECORDS: '4000', WINDOW_STEPS: '5', MAX_TEXT_CHARS: '100' }, '--rate', '0.5');
    expect(slow.code).toBe(0);
    expect(slow.stdout).toMatch(/at 0\.5 messages\/s: a step every 2\.2 h, a window lasts .* h/);
    expect(slow.stdout).toMatch(/advice: at 0\.5 messages\/s a new pattern takes about \d+\.\d h to show: lower STEP_EVERY_RECORDS/);
    const noisy = check({ KAFKA_BROKERS: 'k:9092', STEP_EVERY_RECORDS: '8' });
    expect(noisy.stdout).toMatch(/advice: each step averages only q·W·S = 80 expected records/);
    const bad = check({ KAFKA_BROKERS: 'k:9092' }, '--rate', 'fast');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--rate: "fast" is not a positive number of messages per second/);
  });

  it('refuses a bad setting with exit 2, CONFIG_INVALID and the fix', () => {
    const r = check({ KAFKA_BROKERS: 'localhost:9092', PORT: '99999', SCREENS: 'echo,typo' });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^tayguard: CONFIG_INVALID: invalid configuration/);
    expect(r.stderr).toMatch(/PORT: .*65535 — fix it, or unset PORT for the default \(8080\)/);
    expect(r.stderr).toMatch(/SCREENS\.1: each screen must be one of rate-caps, echo/);
    const missing = check({}, '--json');
    expect(missing.code).toBe(2);
    expect(JSON.parse(missing.stdout)).toEqual({ ok: false, code: 'CONFIG_INVALID', problems: [expect.stringMatching(/^KAFKA_BROKERS: required/)] });
  });

  it.each([['unset (PRV)', {}], ['rdp', { ACCOUNTANT: 'rdp' }], ['prv', { ACCOUNTANT: 'prv' }]] as const)(
    'prints the window ε the loader refuses a limit below (ACCOUNTANT %s)',
    (_name, accountant) => {
      const report = JSON.parse(check({ ...MECHANISM, ...accountant }, '--json').stdout);
      const eps = report.window.epsilon;
      expect(eps).toBe(report.window.accountant === 'rdp' ? report.window.epsilonRdp : report.window.epsilonPrv);
      const below = check({ ...MECHANISM, ...accountant, EPSILON_LIMIT: String(eps * 0.999) });
      expect(below.code).toBe(2);
      expect(below.stderr).toMatch(/EPSILON_LIMIT \([\d.]+\) is below the ε of one record's window .*raise NOISE_MULTIPLIER \(npx tayguard noise --target-epsilon/);
      expect(check({ ...MECHANISM, ...accountant, EPSILON_LIMIT: String(eps * 1.001) }).code).toBe(0);
    },
  );

  it('for PRIVACY_UNIT=source, gives the whole windows an always-active source fits in the limit', () => {
    const r = check({ KAFKA_BROKERS: 'localhost:9092', PRIVACY_UNIT: 'source', SAMPLE_RATE: '0.05', NOISE_MULTIPLIER: '2' }, '--json');
    expect(r.code).toBe(0);
    const w = JSON.parse(r.stdout).window;
    const q = sourceSampleRate(0.05, 4);
    expect(w.sampleRate).toBeCloseTo(q, 12);
    const eps = (windows: number) => rdpEpsilon([{ sampleRate: q, noiseMultiplier: 2, steps: windows * 50 }], 1e-6).epsilon;
    expect(w.windowsPerSource).toBeGreaterThanOrEqual(1);
    expect(eps(w.windowsPerSource)).toBeLessThanOrEqual(8);
    expect(eps(w.windowsPerSource + 1)).toBeGreaterThan(8);
  });

  it('checks what serve would meet at start-up: detector settings, files and directories (--env-only skips files)', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'tayguard-config-files-'));
    const notADir = path.join(dir, 'file');
    writeFileSync(notADir, 'x');
    const env = { KAFKA_BROKERS: 'localhost:9092', CANARY_FILE: path.join(dir, 'missing.jsonl'), CHECKPOINT_DIR: path.join(notADir, 'checkpoints'), SCREENS_CONFIG: '{"toxicity":{"blocklist":3}}' };
    const r = check(env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/SCREENS_CONFIG: detectors\.toxicity\.blocklist: .*expected array/);
    expect(r.stderr).toMatch(/CANARY_FILE: .*missing\.jsonl cannot be read \(ENOENT\)/);
    expect(r.stderr).toMatch(/CHECKPOINT_DIR: .* is not writable \(ENOTDIR/);
    const envOnly = check({ ...env, SCREENS_CONFIG: '{}' }, '--env-only');
    expect(envOnly.code).toBe(0);
  });
  it('prints the checkpoint budget and the worst case, and refuses a worst case over the budget naming the knobs', () => {
    const ok = check({ KAFKA_BROKERS: 'kafka-0:9092' });
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/checkpoint: worst case model [\d.]+ MiB \+ DP pool 42\.6 MiB \(1632 slots × 27328 bytes\) \+ screen state 32\.0 MiB .* = 86\.\d MiB; budget CHECKPOINT_MAX_BYTES = 384\.0 MiB/);
    const json = JSON.parse(check({ KAFKA_BROKERS: 'kafka-0:9092' }, '--json').stdout);
    expect(json.checkpoint.budgetBytes).toBe(384 * 1024 * 1024);
    expect(json.checkpoint.worstCase.total).toBeGreaterThan(80 * 1024 * 1024);
    const tight = check({ KAFKA_BROKERS: 'kafka-0:9092', STEP_EVERY_RECORDS: '400' });
    expect(tight.code).toBe(2);
    expect(tight.stderr).toMatch(/CHECKPOINT_MAX_BYTES: the worst-case checkpoint .* exceeds CHECKPOINT_MAX_BYTES \(384\.0 MiB\): raise CHECKPOINT_MAX_BYTES, or lower the DP pool: TEXT_READ_CHARS/);
  });
});
