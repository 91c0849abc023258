/** The functions behind `tayguard epsilon` / `tayguard noise`, and the commands' error handling (no subprocess). */
import { Command, CommanderError } from 'commander';
import { registerPrivacyCommands, runEpsilon, runNoise } from '../../../src/cli/privacy-commands';

const base = { sampleRate: '0.01', noiseMultiplier: '1', steps: '1000', delta: '1e-5' };

test('epsilon: rdp answer with order, prv answer with null order', () => {
  const rdp = runEpsilon(base);
  expect(rdp.accountant).toBe('rdp');
  expect(Math.abs(rdp.epsilon - 2.1013652716) / 2.1013652716).toBeLessThan(1e-8);
  expect(rdp.order).toBeCloseTo(7.8, 12);
  const prv = runEpsilon({ ...base, accountant: 'prv' });
  expect(prv).toEqual({ epsilon: expect.any(Number), accountant: 'prv', order: null });
  expect(Math.abs(prv.epsilon - 1.8383716367)).toBeLessThanOrEqual(0.01);
});

test('noise: reproduces the Opacus reference', () => {
  expect(runNoise({ targetEpsilon: '3', sampleRate: '0.01', steps: '1000', delta: '1e-5' })).toEqual({ noiseMultiplier: 0.865478515625 });
});

test.each([
  [{ ...base, sampleRate: '1.5' }, /--sample-rate must be in \[0, 1\]/],
  [{ ...base, sampleRate: 'abc' }, /--sample-rate must be a number/],
  [{ ...base, noiseMultiplier: '0' }, /--noise-multiplier must be > 0/],
  [{ ...base, steps: '10.5' }, /--steps must be a positive integer/],
  [{ ...base, delta: '1' }, /--delta must be in \(0, 1\)/],
  [{ ...base, delta: '' }, /--delta must be a number/],
  [{ ...base, accountant: 'foo' }, /--accountant must be rdp or prv/],
  [{ sampleRate: '0.01', steps: '10', delta: '1e-5' }, /missing --noise-multiplier/],
])('epsilon rejects %o', (raw, message) => {
  expect(() => runEpsilon(raw)).toThrow(message);
});

function runCli(args: string[]): { out: string; err: string; exitCode: number } {
  const program = new Command('tayguard').exitOverride();
  let err = '';
  program.configureOutput({ writeErr: (s) => (err += s), writeOut: () => undefined });
  registerPrivacyCommands(program);
  const write = jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
  try {
    program.parse(['node', 'tayguard', ...args]);
    return { out: write.mock.calls.map((c) => String(c[0])).join(''), err, exitCode: 0 };
  } catch (e) {
    if (!(e instanceof CommanderError)) throw e;
    return { out: '', err, exitCode: e.exitCode };
  } finally {
    write.mockRestore();
  }
}

test('commands print JSON and one-line usage errors with a non-zero exit', () => {
  const ok = runCli(['epsilon', '--sample-rate', '0.01', '--noise-multiplier', '1', '--steps', '100', '--delta', '1e-5', '--json']);
  expect(ok.exitCode).toBe(0);
  const parsed = JSON.parse(ok.out);
  expect(Object.keys(parsed).sort()).toEqual(['accountant', 'epsilon', 'order']);
  expect(parsed.epsilon).toBeCloseTo(1.2141452108, 8);

  const noise = runCli(['noise', '--target-epsilon', '3', '--sample-rate', '0.01', '--steps', '1000', '--delta', '1e-5', '--json']);
  expect(JSON.parse(noise.out)).toEqual({ noiseMultiplier: 0.865478515625 });

  const human = runCli(['epsilon', '--sample-rate', '0.01', '--noise-multiplier', '1', '--steps', '100', '--delta', '1e-5']);
  expect(human.out).toMatch(/^epsilon = 1\.2141 .*order 8\.8/);

  const bad = runCli(['epsilon', '--sample-rate', '2', '--noise-multiplier', '1', '--steps', '100', '--delta', '1e-5']);
  expect(bad.exitCode).toBe(2);
  expect(bad.err.trim().split('\n')).toHaveLength(1);
  expect(bad.err).toMatch(/--sample-rate must be in \[0, 1\], got '2'/);

  const missing = runCli(['noise', '--sample-rate', '0.01', '--steps', '1000', '--delta', '1e-5']);
  expect(missing.exitCode).toBe(2);
  expect(missing.err).toMatch(/missing --target-epsilon/);
});
