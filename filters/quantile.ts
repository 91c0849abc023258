/**
 * Streaming quantile estimate in O(1) memory: the P² algorithm (Jain & Chlamtac, CACM 1985). Five markers
 * track the minimum, p/2, p, (1+p)/2 and maximum; marker heights move by piecewise-parabolic interpolation.
 * Cumulative (no forgetting): good for thresholds that should move slowly and cannot be dragged quickly by a
 * burst. Exact for the first five values.
 */
import { corrupt } from './trust';

/** Upper bound on a P² state's JSON: 17 numbers of at most 25 bytes and the five key names. */
export const P2_BYTES = 17 * 25 + 64;

export interface P2State {
  readonly p: number;
  readonly count: number;
  readonly q: readonly number[];
  readonly n: readonly number[];
  readonly np: readonly number[];
}

export class P2Quantile {
  private q: number[] = [];
  private n: number[] = [];
  private np: number[] = [];
  private readonly dn: number[];
  private _count = 0;

  constructor(readonly p: number) {
    if (!(p > 0 && p < 1)) throw new RangeError(`quantile must be in (0, 1); got ${p}`);
    this.dn = [0, p / 2, p, (1 + p) / 2, 1];
  }

  get count(): number {
    return this._count;
  }

  add(x: number): void {
    if (!Number.isFinite(x)) return;
    this._count += 1;
    const { q, n, np, dn, p } = this;
    if (this._count <= 5) {
      q.push(x);
      q.sort((a, b) => a - b);
      if (this._count === 5) {
        this.n = [1, 2, 3, 4, 5];
        this.np = [1, 1 + 2 * p, 1 + 4 * p, 3 + 2 * p, 5];
      }
      return;
    }
    let k: number;
    if (x < q[0]) {
      q[0] = x;
      k = 0;
    } else if (x >= q[4]) {
      q[4] = x;
      k = 3;
    } else {
      k = 0;
      while (k < 3 && x >= q[k + 1]) k++;
    }
    for (let i = k + 1; i < 5; i++) n[i] += 1;
    for (let i = 0; i < 5; i++) np[i] += dn[i];
    for (let i = 1; i <= 3; i++) {
      const d = np[i] - n[i];
      if ((d >= 1 && n[i + 1] - n[i] > 1) || (d <= -1 && n[i - 1] - n[i] < -1)) {
        const s = Math.sign(d);
        const par =
          q[i] +
          (s / (n[i + 1] - n[i - 1])) *
            ((n[i] - n[i - 1] + s) * ((q[i + 1] - q[i]) / (n[i + 1] - n[i])) + (n[i + 1] - n[i] - s) * ((q[i] - q[i - 1]) / (n[i] - n[i - 1])));
        q[i] = q[i - 1] < par && par < q[i + 1] ? par : q[i] + (s * (q[i + s] - q[i])) / (n[i + s] - n[i]);
        n[i] += s;
      }
    }
  }

  /** Current estimate; NaN before any value. */
  value(): number {
    if (this._count === 0) return NaN;
    if (this._count <= 5) return this.q[Math.min(this.q.length - 1, Math.ceil(this.p * this.q.length) - 1)];
    return this.q[2];
  }

  toJSON(): P2State {
    return { p: this.p, count: this._count, q: [...this.q], n: [...this.n], np: [...this.np] };
  }

  static restore(s: P2State): P2Quantile {
    if (!s || typeof s.p !== 'number' || typeof s.count !== 'number' || !Array.isArray(s.q)) throw corrupt('quantile', 'bad P² state');
    const out = new P2Quantile(s.p);
    out._count = s.count;
    out.q = [...s.q];
    out.n = [...s.n];
    out.np = [...s.np];
    return out;
  }
}
