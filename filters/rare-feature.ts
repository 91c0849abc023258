/**
 * Rare features turning common, tied to one label (`rare_feature_burst`): the signature of a backdoor trigger
 * (Gu et al. 2017, BadNets; Chen et al. 2017; for text, Dai et al. 2019), looked for in the MODEL's inputs
 * (feature-view.ts) over several time scales. rare-token.ts tracks words of ≥ 4 characters within one hour;
 * issue 10 passed it with a 3-letter trigger, with 40 different tokens sharing one hash bucket, and with a trigger
 * used once an hour. Here a "feature" is what the model reads:
 * - text: a hashed bucket of the featurizer (any token length; every token hashing there is the same feature to
 *   the model, so it is one feature here);
 * - dense: a coordinate far outside its usual range, high or low (|x − μ| ≥ `denseZ`·(σ + `denseFloor`·mean σ),
 *   μ and σ running per coordinate): a trigger patch of pixels that are normally dark, say.
 *
 * Counts are exponentially decayed per time scale of event time (`scalesMs`, default an hour, a day, a week),
 * kept per (feature, label), with forward decay (Cormode, Shkapenyuk, Srivastava & Xu 2009: weights grow as
 * e^{t/τ} and the arrays are rescaled now and then, so an update touches only the record's own features;
 * decayed-counts.ts). Each
 * pair of adjacent scales (short s, long L) asks: is (feature, label y) used now far more than before? The
 * expected count in the short scale is λ = C_s · (b + prior) / B, where C_s is the short
 * scale's record count and b / B the long scale's count of (feature, y) / of records AS OF one short scale ago
 * (a snapshot, so the burst being judged is not yet in its own baseline). A record is quarantined when one of its
 * features, with its label, has in some pair
 *   n ≥ `minCount`, n ≥ `minRatio`·λ, and a Poisson tail P(N ≥ n | λ) ≤ e^−`minSurprise` (Chernoff bound
 *   n − λ + n·ln(λ/n)),
 * and at least `minShare` of the feature's excess over expectation (all labels) carries the record's label.
 * score = n/λ, threshold = `minRatio`.
 *
 * - Sources, not records: a use counts only when the source is not among the last `sourceSlots` sources that
 *   used the feature, so one account repeating itself (or signing every mail with its own rare word) counts
 *   about once.
 * - A trigger never becomes "old": the long scales (the baselines) count only records this stage accepted, so
 *   quarantined uses never raise their own baseline, and a trigger trickled once an hour for days stays caught
 *   once caught (the short scales count everything).
 * - `labels` limits quarantine to those labels (a spam run's new URL reported as spam by many users is the system
 *   working; a trigger pushing spam to ham is the attack).
 *
 * Measured (test/filters/rare-feature.test.ts, TEXT_HASH_DIM 4096): a 3-letter trigger in a rarely used bucket and
 * 40 tokens sharing that bucket, 200 records in ~50 min, held from the 8th (97%; rare-token holds none); the same
 * trigger once an hour over days, from the 13th (80%); one in a bucket common words fill (~2% of mail), from the
 * ~100th (52%); an MNIST pixel patch from the 9th (96%); clean SpamAssassin at one mail per 2 s or per minute
 * 0–0.2%, MNIST 0.02%.
 *
 * State, fixed by settings and the model's width (see `stateBytes`): per scale a Float32 array of
 * features × labels (short scales: all records; long scales: accepted records, plus two snapshots), a
 * `sourceSlots`-deep register of source hashes per feature, and for dense models a running mean and variance per
 * coordinate. Labels ≥ `maxLabels` are not screened. Cost per record: linear in the capped features read
 * (`maxKeysPerRecord`).
 */
import { TayguardError } from '../core/errors';
import type { RawMessage, TrainingRecord } from '../core/record';
import { fnv1a, tokenize } from '../middleware/featurize';
import type { FeatureView } from './feature-view';
import { corrupt, decodeF32, encodeArray, type EventClock, type SourceRegistry } from './trust';
import { ACCEPT, type Detector, type Verdict } from './types';
import { laggedSnapshot, rescale, takeSnapshot, type Scale, type Snapshot } from './decayed-counts';

export interface RareFeatureSettings {
  /** Time scales (ms of event time), increasing; adjacent pairs are compared. */
  readonly scalesMs: readonly number[];
  readonly minCount: number;
  readonly minRatio: number;
  readonly minSurprise: number;
  readonly minShare: number;
  /** Records (accepted, decayed) the long scale's snapshot must hold before its pair is used. */
  readonly minBaseline: number;
  /** Pseudo-uses added to every (feature, label) baseline. */
  readonly prior: number;
  readonly maxKeysPerRecord: number;
  readonly sourceSlots: number;
  /** Labels screened: 0 … maxLabels − 1 (the state is sized by it). */
  readonly maxLabels: number;
  readonly denseZ: number;
  readonly denseFloor: number;
  /** Dense models: records that only teach the per-coordinate mean and spread before any key is counted. */
  readonly denseWarmup: number;
  readonly denseHorizon: number;
  readonly labels?: readonly number[];
}

export interface RareFeatureState {
  readonly keys: number;
  readonly labels: number;
  readonly scalesMs: readonly number[];
  /** Per short scale: [base, total, cells]. */
  readonly all: readonly (readonly [number, number, string])[];
  /** Per long scale: [base, total, cells, snapshots as [at, total, cells][] ]. */
  readonly accepted: readonly (readonly [number, number, string, readonly (readonly [number, number, string])[]])[];
  readonly register: string;
  /** base64 of the caught flags, one byte per (feature, label). */
  readonly flagged: string;
  readonly dense?: { readonly seen: number; readonly mean: string; readonly variance: string };
}

/** −log of the Chernoff bound on P(N ≥ n) for N ~ Poisson(λ), n > λ. */
export function poissonSurprise(n: number, lambda: number): number {
  if (n <= lambda) return 0;
  return -(n - lambda + n * Math.log(lambda / n));
}

export class RareFeatureDetector implements Detector {
  readonly name = 'rare-feature';
  readonly scope = 'cross-record' as const;
  private readonly keys: number;
  private readonly L: number;
  /** Short roles: scales 0 … N−2, all records. */
  private readonly all: Scale[];
  /** Long roles: scales 1 … N−1, accepted records, with snapshots lagged by the short partner's τ. */
  private readonly acc: Scale[];
  private readonly snaps: Snapshot[][];
  private readonly register: Uint32Array;
  /** Per (feature, label): 1 + the pair that caught it, while caught (see `flag`); 0 otherwise. */
  private readonly flagged: Uint8Array;
  private readonly mean?: Float64Array;
  private readonly variance?: Float64Array;
  private denseSeen = 0;
  /** This record's features (distinct), and whether its source was new to each (then it is counted). */
  private readonly cellBuf: Int32Array;
  private readonly countBuf: Uint8Array;

  constructor(
    readonly settings: RareFeatureSettings,
    private readonly deps: { readonly clock: EventClock; readonly registry: SourceRegistry; readonly features: FeatureView; readonly kind: 'text' | 'dense'; readonly dim: number },
  ) {
    const sc = settings.scalesMs;
    if (sc.length < 2 || sc.some((v, i) => !(v > 0) || (i > 0 && v <= sc[i - 1]))) {
      throw new TayguardError('CONFIG_INVALID', `detectors.rareFeature.scalesMs must list at least two increasing durations (got ${JSON.stringify(sc)})`);
    }
    this.keys = deps.kind === 'dense' ? 2 * deps.dim : deps.dim;
    this.L = settings.maxLabels;
    const cells = this.keys * this.L;
    const scale = (tau: number): Scale => ({ tau, base: 0, total: 0, cells: new Float32Array(cells) });
    this.all = sc.slice(0, -1).map(scale);
    this.acc = sc.slice(1).map(scale);
    this.snaps = this.acc.map(() => [
      { at: -Infinity, total: 0, cells: new Float32Array(cells) },
      { at: -Infinity, total: 0, cells: new Float32Array(cells) },
    ]);
    this.register = new Uint32Array(this.keys * settings.sourceSlots);
    this.flagged = new Uint8Array(cells);
    if (deps.kind === 'dense') {
      this.mean = new Float64Array(deps.dim);
      this.variance = new Float64Array(deps.dim);
    }
    this.cellBuf = new Int32Array(settings.maxKeysPerRecord);
    this.countBuf = new Uint8Array(settings.maxKeysPerRecord);
  }

  /** Bytes held by the counters, snapshots, register and dense statistics (fixed at construction). */
  get stateBytes(): number {
    const cells = this.keys * this.L * 4;
    return (this.all.length + this.acc.length * 3) * cells + this.register.byteLength + this.flagged.byteLength + (this.mean ? 16 * this.mean.length : 0);
  }

  screen(record: TrainingRecord, _raw?: RawMessage): Verdict {
    const s = this.settings;
    const t = this.deps.clock.timeOf(record);
    this.deps.registry.observe(record, t);
    const y = record.label;
    if (!Number.isInteger(y) || y < 0 || y >= this.L) return ACCEPT;
    for (const sc of this.all) rescale(sc, t);
    for (let i = 0; i < this.acc.length; i++) {
      rescale(this.acc[i], t);
      takeSnapshot(this.snaps[i], this.acc[i], this.all[i].tau, t);
    }
    const nc = this.featuresOf(record);
    if (nc < 0) {
      this.learnDense(record); // dense warm-up: learn each coordinate's range first
      return ACCEPT;
    }

    // Count the record in the short scales (all records), each cell only when the source is new to it.
    const src = fnv1a(record.source) || 1;
    for (const sc of this.all) {
      const w = Math.exp((t - sc.base) / sc.tau);
      sc.total += w;
      for (let i = 0; i < nc; i++) {
        if (sc === this.all[0]) this.countBuf[i] = this.newSource(this.cellBuf[i], src) ? 1 : 0;
        if (this.countBuf[i]) sc.cells[this.cellBuf[i] * this.L + y] += w;
      }
    }

    let hit: { k: number; pair: number; n: number; lambda: number; surprise: number } | undefined;
    for (let i = 0; i < nc && !hit; i++) {
      for (let p = 0; p < this.all.length; p++) {
        const r = this.judge(this.cellBuf[i], y, p, t);
        if (r) {
          hit = { k: this.cellBuf[i], pair: p, ...r };
          break;
        }
      }
    }
    const quarantine = hit !== undefined && (!s.labels || s.labels.includes(y));
    if (!quarantine) {
      for (const sc of this.acc) {
        const w = Math.exp((t - sc.base) / sc.tau);
        sc.total += w;
        for (let i = 0; i < nc; i++) if (this.countBuf[i]) sc.cells[this.cellBuf[i] * this.L + y] += w;
      }
      this.learnDense(record);
      return ACCEPT;
    }
    const h = hit as NonNullable<typeof hit>;
    this.flag(h.k, y, h.pair, t);
    const [short, long] = [s.scalesMs[h.pair], s.scalesMs[h.pair + 1]];
    return {
      kind: 'quarantine',
      reasons: [
        {
          stage: this.name,
          code: 'rare_feature_burst',
          message: `${this.describe(h.k, record)} with label ${y} was used by about ${h.n.toFixed(1)} sources in the last ${duration(short)} where ${h.lambda.toFixed(2)} were expected from the ${duration(long)} before (×${(h.n / h.lambda).toFixed(1)}, surprise ${h.surprise.toFixed(1)} nats); the limits are ×${s.minRatio}, ${s.minCount} uses and ${s.minSurprise} nats, with ≥ ${Math.round(100 * s.minShare)}% of the rise on one label`,
          score: h.n / h.lambda,
          threshold: s.minRatio,
        },
      ],
    };
  }

  /** The test for (feature k, label y) on adjacent pair p (short scale p, long scale p + 1). */
  private judge(k: number, y: number, p: number, t: number): { n: number; lambda: number; surprise: number } | undefined {
    const s = this.settings;
    const L = this.L;
    const short = this.all[p];
    const f = Math.exp(-(t - short.base) / short.tau);
    const n = short.cells[k * L + y] * f;
    if (n < s.minCount) {
      if (this.flagged[k * L + y] === p + 1 && n < s.minCount / 2) this.flagged[k * L + y] = 0;
      return undefined;
    }
    const snap = laggedSnapshot(this.snaps[p], this.all[p].tau, t);
    if (!snap || snap.total < s.minBaseline) return undefined;
    const norm = (short.total * f) / snap.total;
    const lambda = norm * (snap.cells[k * L + y] + s.prior);
    if (n < s.minRatio * lambda) return undefined;
    const surprise = poissonSurprise(n, lambda);
    if (surprise < s.minSurprise) return undefined;
    let rise = 0;
    for (let l = 0; l < L; l++) rise += Math.max(0, short.cells[k * L + l] * f - norm * (snap.cells[k * L + l] + s.prior));
    if (rise <= 0 || (n - lambda) / rise < s.minShare) return undefined;
    return { n, lambda, surprise };
  }

  /**
   * A (feature, label) caught for the first time in an episode: its uses of the short scale that caught it were
   * accepted until now and sit in the long scales' baselines; take them out (clamped at zero), so the admitted
   * head of a slow trickle does not become the norm it is judged against. The episode ends when that pair's short
   * count falls below half of `minCount`.
   */
  private flag(k: number, y: number, p: number, t: number): void {
    const c = k * this.L + y;
    const short = this.all[p];
    const n = short.cells[c] * Math.exp(-(t - short.base) / short.tau);
    if (this.flagged[c]) return;
    this.flagged[c] = p + 1;
    for (let i = p; i < this.acc.length; i++) {
      const sc = this.acc[i];
      sc.cells[c] = Math.max(0, sc.cells[c] - n * Math.exp((t - sc.base) / sc.tau));
      for (const snap of this.snaps[i]) snap.cells[c] = Math.max(0, snap.cells[c] - n);
    }
  }

  /** Is `src` new to feature k? (then remember it, oldest slot out). */
  private newSource(k: number, src: number): boolean {
    const slots = this.settings.sourceSlots;
    const at = k * slots;
    for (let i = 0; i < slots; i++) if (this.register[at + i] === src) return false;
    for (let i = slots - 1; i > 0; i--) this.register[at + i] = this.register[at + i - 1];
    this.register[at] = src;
    return true;
  }

  /** The record's features into cellBuf (distinct, at most maxKeysPerRecord); −1 while a dense model warms up. */
  private featuresOf(record: TrainingRecord): number {
    const s = this.settings;
    const row = this.deps.features(record);
    let n = 0;
    if (!row.dense || !this.mean || !this.variance) {
      // A sparse row's indices are distinct already.
      for (let i = 0; i < row.n && n < s.maxKeysPerRecord; i++) this.cellBuf[n++] = row.indices[i];
      return n;
    }
    if (this.denseSeen < s.denseWarmup) return -1;
    let meanSd = 0;
    for (let j = 0; j < this.variance.length; j++) meanSd += Math.sqrt(this.variance[j]);
    const floor = (s.denseFloor * meanSd) / this.variance.length;
    const x = row.dense;
    for (let j = 0; j < x.length && n < s.maxKeysPerRecord; j++) {
      const d = x[j] - this.mean[j];
      const lim = s.denseZ * (Math.sqrt(this.variance[j]) + floor);
      if (lim <= 0) continue;
      if (d >= lim) this.cellBuf[n++] = 2 * j;
      else if (-d >= lim) this.cellBuf[n++] = 2 * j + 1;
    }
    return n;
  }

  /** Running mean and variance per coordinate, from accepted records (a trigger does not widen its own range). */
  private learnDense(record: TrainingRecord): void {
    if (!this.mean || !this.variance) return;
    const row = this.deps.features(record);
    if (!row.dense) return;
    this.denseSeen += 1;
    const eta = 1 / Math.min(this.denseSeen, this.settings.denseHorizon);
    for (let j = 0; j < row.dense.length; j++) {
      const d = row.dense[j] - this.mean[j];
      this.mean[j] += eta * d;
      this.variance[j] += eta * (d * d * (1 - eta) - this.variance[j]);
    }
  }

  private describe(k: number, record: TrainingRecord): string {
    if (this.deps.kind === 'dense') return `coordinate ${k >> 1} ${k & 1 ? 'far below' : 'far above'} its usual range`;
    const example = tokenize(record.text ?? '').find((w) => fnv1a(w) % this.deps.dim === k);
    return `the model's hashed feature ${k}${example ? ` (e.g. token ${JSON.stringify(example.length > 40 ? `${example.slice(0, 40)}…` : example)})` : ''}`;
  }

  toJSON(): RareFeatureState {
    return {
      keys: this.keys,
      labels: this.L,
      scalesMs: [...this.settings.scalesMs],
      all: this.all.map((sc) => [sc.base, sc.total, encodeArray(sc.cells)] as const),
      accepted: this.acc.map((sc, i) => [sc.base, sc.total, encodeArray(sc.cells), this.snaps[i].map((sn) => [Number.isFinite(sn.at) ? sn.at : -1, sn.total, encodeArray(sn.cells)] as const)] as const),
      register: encodeArray(this.register),
      flagged: Buffer.from(this.flagged).toString('base64'),
      ...(this.mean && this.variance
        ? { dense: { seen: this.denseSeen, mean: encodeArray(Float32Array.from(this.mean)), variance: encodeArray(Float32Array.from(this.variance)) } }
        : {}),
    };
  }

  restore(state: RareFeatureState): void {
    if (!state || !Array.isArray(state.all) || !Array.isArray(state.accepted) || typeof state.register !== 'string') {
      throw corrupt(this.name, 'expected { keys, labels, scalesMs, all, accepted, register, flagged }');
    }
    if (state.keys !== this.keys || state.labels !== this.L || JSON.stringify(state.scalesMs) !== JSON.stringify(this.settings.scalesMs)) {
      throw corrupt(this.name, `state is for ${state.keys} features × ${state.labels} labels at scales ${JSON.stringify(state.scalesMs)}; the settings give ${this.keys} × ${this.L} at ${JSON.stringify(this.settings.scalesMs)} (were the model width, maxLabels or scalesMs changed?)`);
    }
    const cells = (b64: string) => {
      const a = decodeF32(b64);
      if (a.length !== this.keys * this.L) throw corrupt(this.name, `a counter array has ${a.length} cells; expected ${this.keys * this.L}`);
      return a;
    };
    if (state.all.length !== this.all.length || state.accepted.length !== this.acc.length) throw corrupt(this.name, 'scale count differs from the settings');
    state.all.forEach(([base, total, c], i) => Object.assign(this.all[i], { base, total, cells: cells(c) }));
    state.accepted.forEach(([base, total, c, snaps], i) => {
      Object.assign(this.acc[i], { base, total, cells: cells(c) });
      if (!Array.isArray(snaps) || snaps.length !== 2) throw corrupt(this.name, 'expected two snapshots per long scale');
      snaps.forEach(([at, stotal, sc], j) => Object.assign(this.snaps[i][j], { at: at < 0 ? -Infinity : at, total: stotal, cells: cells(sc) }));
    });
    const reg = Buffer.from(state.register, 'base64');
    if (reg.length !== this.register.byteLength) throw corrupt(this.name, `source register has ${reg.length} bytes; expected ${this.register.byteLength}`);
    new Uint8Array(this.register.buffer).set(reg);
    const flagged = Buffer.from(String(state.flagged ?? ''), 'base64');
    if (flagged.length !== this.flagged.length) throw corrupt(this.name, `caught flags have ${flagged.length} bytes; expected ${this.flagged.length}`);
    this.flagged.set(flagged);
    if (this.mean && this.variance) {
      if (!state.dense) throw corrupt(this.name, 'dense statistics missing');
      this.denseSeen = state.dense.seen;
      this.mean.set(decodeF32(state.dense.mean));
      this.variance.set(decodeF32(state.dense.variance));
    }
  }
}

function duration(ms: number): string {
  if (ms % 604_800_000 === 0) return ms === 604_800_000 ? 'week' : `${ms / 604_800_000} weeks`;
  if (ms % 86_400_000 === 0) return ms === 86_400_000 ? 'day' : `${ms / 86_400_000} days`;
  if (ms % 3_600_000 === 0) return ms === 3_600_000 ? 'hour' : `${ms / 3_600_000} h`;
  return `${Math.round(ms / 60_000)} min`;
}
