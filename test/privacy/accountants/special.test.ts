/** Special functions and the FFT against high-precision references (mpmath at 40 digits) and a naive DFT. */
import { fft, realFft, realIfft } from '../../../privacy/accountants/fft';
import { erfc, logAdd, logErfc, logSub } from '../../../privacy/accountants/special';

const ERFC: [number, number][] = [
  [-30, 2.0], [-5, 1.9999999999984625402], [-1.2, 1.9103139782296353684], [-0.3, 1.3286267594591274162], [0, 1.0],
  [1e-8, 0.99999998871620832904], [0.2, 0.77729741078952153382], [0.7, 0.32219880616258155772],
  [1.49, 0.035102135156795788985], [1.51, 0.032723251871288363061], [2.5, 0.00040695201744495893956],
  [4, 1.5417257900280018852e-8], [6, 2.1519736712498913117e-17], [10, 2.088487583762544757e-45], [26, 5.6631924088561428465e-296],
];
const LOG_ERFC: [number, number][] = [
  [0.5, -0.73501112983708440303], [3, -10.720363041981112568], [20, -403.56934333410423496], [40, -1604.2615566532735557],
  [100, -10005.177585122664333], [1e4, -100000009.7827053199], [1e9, -1000000000000000021.3],
];

test.each(ERFC)('erfc(%p) to 5e-15 relative', (x, expected) => {
  expect(Math.abs(erfc(x) - expected) / expected).toBeLessThan(5e-15);
});

test.each(LOG_ERFC)('logErfc(%p) to 1e-15 relative', (x, expected) => {
  expect(Math.abs(logErfc(x) - expected) / Math.abs(expected)).toBeLessThan(1e-15);
});

test('logErfc agrees with log(erfc) where both are representable', () => {
  for (const x of [-3, -0.5, 0.1, 1, 1.5, 2, 5, 15, 25]) expect(logErfc(x)).toBeCloseTo(Math.log(erfc(x)), 13);
});

test('log-space add and subtract', () => {
  expect(logAdd(Math.log(2), Math.log(3))).toBeCloseTo(Math.log(5), 15);
  expect(logAdd(-Infinity, 1)).toBe(1);
  expect(logAdd(1000, 1000)).toBeCloseTo(1000 + Math.log(2), 12);
  expect(logSub(Math.log(5), Math.log(3))).toBeCloseTo(Math.log(2), 15);
  expect(logSub(1, 1)).toBe(-Infinity);
  expect(logSub(1, 2)).toBeNull();
  expect(logSub(2000, 1)).toBe(2000);
});

test('FFTs agree with a naive DFT and invert', () => {
  const n = 128;
  const x = Float64Array.from({ length: n }, (_, i) => Math.sin(i * 0.37) + (i % 7) / 10);
  const spec = realFft(x);
  const cr = Float64Array.from(x);
  const ci = new Float64Array(n);
  fft(cr, ci);
  for (let k = 0; k <= n / 2; k++) {
    let sr = 0;
    let si = 0;
    for (let j = 0; j < n; j++) {
      sr += x[j] * Math.cos((-2 * Math.PI * j * k) / n);
      si += x[j] * Math.sin((-2 * Math.PI * j * k) / n);
    }
    expect(Math.abs(spec.re[k] - sr)).toBeLessThan(1e-11);
    expect(Math.abs(spec.im[k] - si)).toBeLessThan(1e-11);
    expect(Math.abs(cr[k] - sr)).toBeLessThan(1e-11);
    expect(Math.abs(ci[k] - si)).toBeLessThan(1e-11);
  }
  const back = realIfft(spec.re, spec.im, n);
  fft(cr, ci, true);
  for (let j = 0; j < n; j++) {
    expect(Math.abs(back[j] - x[j])).toBeLessThan(1e-13);
    expect(Math.abs(cr[j] - x[j])).toBeLessThan(1e-13);
  }
});
