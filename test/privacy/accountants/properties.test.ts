/** Properties every accountant must satisfy, plus argument validation and checkpoint round trips. */
import {
  Accountant,
  AccountantKind,
  PrvAccountant,
  RdpAccountant,
  accountantFromJSON,
  createAccountant,
  epsilonAfterStep,
  prvEpsilon,
  rdpEpsilon,
  rdpToEpsilon,
} from '../../../privacy/accountants';
import { hasCode } from '../../../src/errors';
import { computeRdp, OPACUS_ORDERS } from '../../../privacy/accountants/rdp';

const DELTA = 1e-5;
type Seg = { sampleRate: number; noiseMultiplier: number; steps: number };
const epsilonOf: Record<AccountantKind, (h: Seg[]) => number> = {
  rdp: (h) => rdpEpsilon(h, DELTA).epsilon,
  prv: (h) => prvEpsilon(h, DELTA).epsilon,
};
const seg = (sampleRate: number, noiseMultiplier: number, steps: number): Seg => ({ sampleRate, noiseMultiplier, steps });

describe.each(['rdp', 'prv'] as const)('%s accountant', (kind) => {
  const eps = epsilonOf[kind];
  // PRV values carry up to epsError of slack, so monotonicity is checked across clearly separated settings
  test('epsilon grows with steps', () => {
    expect(eps([seg(0.01, 1, 200)])).toBeLessThan(eps([seg(0.01, 1, 400)]));
    expect(eps([seg(0.01, 1, 400)])).toBeLessThan(eps([seg(0.01, 1, 800)]));
  });
  test('epsilon shrinks as sigma grows', () => {
    expect(eps([seg(0.01, 0.8, 300)])).toBeGreaterThan(eps([seg(0.01, 1.2, 300)]));
    expect(eps([seg(0.01, 1.2, 300)])).toBeGreaterThan(eps([seg(0.01, 2, 300)]));
  });
  test('epsilon grows with the sample rate', () => {
    expect(eps([seg(0.005, 1, 300)])).toBeLessThan(eps([seg(0.02, 1, 300)]));
    expect(eps([seg(0.02, 1, 300)])).toBeLessThan(eps([seg(0.05, 1, 300)]));
  });
  test('q = 0 and an empty history spend nothing', () => {
    expect(eps([seg(0, 1, 1000)])).toBe(0);
    expect(eps([])).toBe(0);
    // q = 0 segments do not change a history's epsilon
    expect(eps([seg(0.01, 1, 100), seg(0, 0.5, 50)])).toBeCloseTo(eps([seg(0.01, 1, 100)]), 12);
  });
  test('[(q, s, a), (q, s, b)] equals [(q, s, a + b)]', () => {
    const split = eps([seg(0.01, 1, 120), seg(0.01, 1, 380)]);
    const whole = eps([seg(0.01, 1, 500)]);
    expect(Math.abs(split - whole)).toBeLessThan(1e-10 * whole);
  });
  test('heterogeneous history lies between its homogeneous extremes and is order independent', () => {
    const mixed = eps([seg(0.01, 1, 200), seg(0.02, 1.5, 200)]);
    const reversed = eps([seg(0.02, 1.5, 200), seg(0.01, 1, 200)]);
    expect(Math.abs(mixed - reversed)).toBeLessThan(1e-9);
    expect(mixed).toBeGreaterThan(eps([seg(0.01, 1, 200)]));
    expect(mixed).toBeGreaterThan(eps([seg(0.02, 1.5, 200)]));
    expect(mixed).toBeLessThan(eps([seg(0.01, 1, 200)]) + eps([seg(0.02, 1.5, 200)]));
  });

  test('step / history / epsilonAfter / toJSON / fromJSON', () => {
    const acc: Accountant = createAccountant(kind);
    expect(acc.getEpsilon(DELTA).epsilon).toBe(0);
    for (let i = 0; i < 10; i++) acc.step(0.01, 1);
    acc.step(0.02, 1.5, 30);
    acc.step(0.02, 1.5, 20);
    expect(acc.history).toEqual([seg(0.01, 1, 10), seg(0.02, 1.5, 50)]);
    const before = acc.getEpsilon(DELTA);
    const peek = epsilonAfterStep(acc, 0.01, 1, DELTA);
    expect(acc.history).toHaveLength(2); // not mutated
    expect(peek.epsilon).toBeGreaterThan(before.epsilon);
    acc.step(0.01, 1);
    expect(acc.getEpsilon(DELTA).epsilon).toBeCloseTo(peek.epsilon, 12);

    const state = JSON.parse(JSON.stringify(acc));
    expect(state).toEqual({ kind, version: 1, history: acc.history });
    const restored = kind === 'rdp' ? RdpAccountant.fromJSON(state) : PrvAccountant.fromJSON(state);
    expect(restored.history).toEqual(acc.history);
    expect(restored.getEpsilon(DELTA)).toEqual(acc.getEpsilon(DELTA));
    expect(accountantFromJSON(state).kind).toBe(kind);
  });

  test('bad inputs throw ARGUMENT_INVALID with a clear message', () => {
    const acc = createAccountant(kind);
    const cases: [() => unknown, RegExp][] = [
      [() => acc.step(-0.1, 1), /sample rate/],
      [() => acc.step(1.01, 1), /sample rate/],
      [() => acc.step(Number.NaN, 1), /sample rate/],
      [() => acc.step(0.1, 0), /noise multiplier/],
      [() => acc.step(0.1, -1), /noise multiplier/],
      [() => acc.step(0.1, Infinity), /noise multiplier/],
      [() => acc.step(0.1, 1, 1.5), /steps/],
      [() => acc.step(0.1, 1, 0), /steps/],
      [() => acc.getEpsilon(0), /delta/],
      [() => acc.getEpsilon(1), /delta/],
      [() => acc.getEpsilon(-1e-5), /delta/],
      [() => acc.epsilonAfter(0.1, 1, 2), /delta/],
    ];
    for (const [fn, message] of cases) {
      let thrown: unknown;
      try {
        fn();
      } catch (err) {
        thrown = err;
      }
      expect(hasCode(thrown, 'ARGUMENT_INVALID')).toBe(true);
      expect((thrown as Error).message).toMatch(message);
    }
    expect(acc.history).toEqual([]); // nothing recorded by failed calls
  });

  test('corrupt checkpoint state throws CHECKPOINT_CORRUPT', () => {
    const from = kind === 'rdp' ? RdpAccountant.fromJSON : PrvAccountant.fromJSON;
    const bad = [null, {}, { kind, version: 2, history: [] }, { kind, version: 1, history: [{ sampleRate: 2, noiseMultiplier: 1, steps: 1 }] },
      { kind, version: 1, history: [{ sampleRate: null, noiseMultiplier: 1, steps: 1 }] }, { kind: kind === 'rdp' ? 'prv' : 'rdp', version: 1, history: [] }];
    for (const state of bad) expect(() => from(state)).toThrow(expect.objectContaining({ code: 'CHECKPOINT_CORRUPT' }));
  });
});

test('RDP: 1e5 steps at sigma = 0.5 is finite and sane', () => {
  const { epsilon, order } = rdpEpsilon([seg(0.01, 0.5, 100_000)], DELTA);
  expect(Number.isFinite(epsilon)).toBe(true);
  expect(epsilon).toBeGreaterThan(50);
  expect(epsilon).toBeLessThan(1000);
  expect(order).toBeGreaterThan(1);
  // small-sigma, small-q: still increasing in steps and below the no-subsampling bound
  expect(epsilon).toBeGreaterThan(rdpEpsilon([seg(0.01, 0.5, 50_000)], DELTA).epsilon);
  expect(epsilon).toBeLessThan(rdpEpsilon([seg(1, 0.5, 100_000)], DELTA).epsilon);
});

test('PRV: 1e5 steps at sigma = 0.5 answers sanely with a coarser epsError, and refuses clearly by default', () => {
  // 1e5 steps need a mesh of ~5e-6 at epsError 0.01 (16M points): refused with advice rather than exhausting memory
  expect(() => prvEpsilon([seg(0.001, 0.5, 100_000)], DELTA)).toThrow(/raise epsError|use the RDP accountant/);
  const { epsilon } = prvEpsilon([seg(0.001, 0.5, 100_000)], DELTA, 0.1);
  const rdp = rdpEpsilon([seg(0.001, 0.5, 100_000)], DELTA).epsilon;
  expect(Number.isFinite(epsilon)).toBe(true);
  expect(epsilon).toBeGreaterThan(0);
  expect(epsilon).toBeLessThan(rdp);
}, 30_000);

test('PRV: smaller epsError gives a tighter bound', () => {
  const h = [seg(0.01, 1, 500)];
  const coarse = prvEpsilon(h, DELTA, 0.05).epsilon;
  const fine = prvEpsilon(h, DELTA, 0.005).epsilon;
  expect(fine).toBeLessThan(coarse);
  expect(coarse - fine).toBeLessThan(0.05);
});

test('RDP conversion: Balle et al. 2020 Thm 21 on a hand-computed case', () => {
  // single order alpha = 2, rdp = 0.5, delta = 1e-5: eps = 0.5 - (log 1e-5 + log 2) + log(1/2)
  const expected = 0.5 - (Math.log(1e-5) + Math.log(2)) + Math.log(0.5);
  expect(rdpToEpsilon([2], [0.5], 1e-5)).toEqual({ epsilon: expected, order: 2 });
  expect(() => rdpToEpsilon([2, 3], [0.5], 1e-5)).toThrow(/equal length/);
});

describe('PRV noise search shortcut', () => {
  it('returns exactly the σ of the plain Opacus loop over fine PRV evaluations', () => {
    // The same loop as getNoiseMultiplier, with every evaluation a fine PRV pass (no coarse shortcut).
    const { prvEpsilon: fine, getNoiseMultiplier: search } = require('../../../privacy/accountants');
    const plain = (target: number, q: number, steps: number, delta: number) => {
      const at = (s: number) => fine([{ sampleRate: q, noiseMultiplier: s, steps }], delta).epsilon;
      let epsHigh = Infinity;
      let lo = 0;
      let hi = 10;
      while (epsHigh > target) {
        hi *= 2;
        epsHigh = at(hi);
      }
      while (target - epsHigh > 0.01) {
        const s = (lo + hi) / 2;
        const e = at(s);
        if (e < target) {
          hi = s;
          epsHigh = e;
        } else lo = s;
      }
      return hi;
    };
    for (const [target, q, steps] of [[3, 0.01, 1000], [1, 0.02, 200]] as const) {
      expect(search({ targetEpsilon: target, delta: 1e-5, sampleRate: q, steps, accountant: 'prv' })).toBe(plain(target, q, steps, 1e-5));
    }
  });
});

describe('RDP orders above 63', () => {
  it('tighten small-q, large-σ cases and stay an upper bound of the PRV figure', () => {
    const h = [{ sampleRate: 0.001, noiseMultiplier: 4, steps: 50 }];
    const opacusGrid = rdpToEpsilon(OPACUS_ORDERS, computeRdp(0.001, 4, 50, OPACUS_ORDERS), 1e-6);
    const full = rdpEpsilon(h, 1e-6);
    expect(opacusGrid.order).toBe(63); // the old grid's edge: the optimum lies beyond it
    expect(opacusGrid.epsilon).toBeCloseTo(0.1401, 3);
    expect(full.order).toBe(192);
    expect(full.epsilon).toBeCloseTo(0.0399, 3);
    // Still a valid bound: never below the (near-exact) PRV upper bound minus its own error.
    expect(full.epsilon).toBeGreaterThan(prvEpsilon(h, 1e-6, 0.01).epsilon - 0.01);
    // Adding orders can only lower ε, never raise it.
    for (const [q, s, t] of [[0.01, 1, 100], [0.05, 1, 50], [0.2, 2.24, 50], [1, 5, 100]] as const) {
      const hh = [{ sampleRate: q, noiseMultiplier: s, steps: t }];
      expect(rdpEpsilon(hh, 1e-6).epsilon).toBeLessThanOrEqual(rdpToEpsilon(OPACUS_ORDERS, computeRdp(q, s, t, OPACUS_ORDERS), 1e-6).epsilon);
    }
  });
});
