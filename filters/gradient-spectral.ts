/**
 * Poison looked for where it acts: in the model's per-record gradients (`gradient_common_direction`). A
 * poisoning campaign works only by pushing the model in a common direction, so its records' gradients share
 * that direction whatever their surface form (varied tokens, paraphrases, different images): spectral
 * signatures (Tran, Li & Madry 2018) and Sever (Diakonikolas, Kamath, Kane, Li, Steinhardt & Stewart 2019) find
 * it as the top singular direction of the centred gradients and filter the records that project far along it,
 * once the spectrum shows that such a direction stands out.
 *
 * Streaming form, per label y, on the gradient of the current model (train/record-gradient.ts: the last Dense
 * layer's exact per-record gradient, a ⊗ (p − e_y)), clipped to `clipNorm` as the DP step clips it, and sketched
 * into `sketchDim` dimensions by a count sketch (Charikar, Chen & Farach-Colton 2002: inner products kept in
 * expectation, state independent of the model's size):
 * - a REFERENCE from sources the deployment trusts (trust.ts, trust ≥ `minTrust`): the running mean μ_y and
 *   per-coordinate variance σ²_y of their records' gradients (memory `horizon` records of the label);
 * - the STREAM of everyone else: the running mean of their gradients, m_y (same memory).
 * The campaign's common direction is d = m_y − μ_y: with a share ε of untrusted label-y records pushing Δ, d ≈ εΔ,
 * which is the top eigenvector of the untrusted records' second moment about the trusted mean (the spectral
 * signature; the mean shift gives it at O(sketchDim) per record, without an eigensolver). It "stands out" when
 *   T = ‖d‖² / (tr Σ_y · (1/n_stream + 1/n_ref)) ≥ `minShift`,
 * i.e. when the shift is `minShift` times what sampling noise gives two same-distribution means (T ≈ 1 for two
 * samples of one distribution; measured below 30 on clean SpamAssassin, where the model's own drift adds to it, and
 * 100–500 under a 5–10% label flip). Then each record is scored by its
 * projection on d, whitened by the reference's diagonal variance with shrinkage (w = d / (σ² + `shrink`·mean σ²):
 * diagonal LDA, which beats the raw projection on sparse text gradients), and quarantined above `slack` × the
 * `quantile` of that score over the last `scoreWindow` trusted records (fed clamped values like outliers.ts), so
 * on trusted traffic about 1 − `quantile` is held back while the alarm lasts, and nothing when it does not.
 * score = that projection, threshold = the quantile × slack.
 *
 * Measured (test/filters/gradient-spectral.test.ts and 3 more seeds, a real tfjs softmax regression training on
 * what the screen admits, sybils flipping varied spam to ham): 48–67% of the flips held at 5% and 10% of traffic,
 * 1.0–1.9% of honest records while the alarm lasts, none on clean traffic; MNIST 7s labelled 1: 73–83%, ≤ 0.13%.
 * Text flips are only partly separable record by record: each spam mail shares a small part of its words with the
 * rest, so its gradient's projection on the common direction overlaps the hardest honest ham.
 *
 * Per record, not per source: sybil floods send one or two records per account, so a per-source aggregate is a
 * per-record one for them, and DP's per-source unit (PRIVACY_UNIT=source) already bounds what one busy account
 * can do; per-record state is O(labels × sketchDim), per-source state would be O(sources × sketchDim).
 * Limits: a campaign from sources that are already trusted moves the reference with it (trust falls as their
 * records are quarantined by other stages, and the update gate penalises them); the screen is idle until trusted
 * sources have sent `minReference` records of a label; a label flip that is a small part of a label's untrusted
 * traffic raises T less (T grows with the square of the share).
 */
import type { RawMessage, TrainingRecord } from '../core/record';
import { fmix32 } from './hash';
import { corrupt, type EventClock, type SourceRegistry } from './trust';
import { ACCEPT, type Detector, type Verdict } from './types';

/** One record's last-layer gradient, factored: residual ⊗ [input; 1] (train/record-gradient.ts builds it). */
export interface RecordGradient {
  /** p − e_y, one value per class. */
  readonly residual: ArrayLike<number>;
  /** The last layer's input as non-zeros: `indices[0..n)`, `values[0..n)`. */
  readonly n: number;
  readonly indices: ArrayLike<number>;
  readonly values: ArrayLike<number>;
  /** Width of that input (the bias is input number `inputs`). */
  readonly inputs: number;
}

export interface GradientSettings {
  readonly sketchDim: number;
  readonly clipNorm: number;
  readonly horizon: number;
  readonly minTrust: number;
  readonly minReference: number;
  readonly minStream: number;
  readonly minShift: number;
  readonly quantile: number;
  /** Trusted records' scores the quantile is taken over (the most recent; the direction moves, so old scores go stale). */
  readonly scoreWindow: number;
  readonly slack: number;
  readonly shrink: number;
  readonly minModelRecords: number;
  readonly labels?: readonly number[];
}

export interface GradientDeps {
  readonly gradient: (record: TrainingRecord) => RecordGradient | undefined;
  /** Records the current model has trained on (a model at its initial weights has meaningless gradients). */
  readonly modelSeen?: () => number;
  readonly registry: SourceRegistry;
  readonly clock: EventClock;
}

/**
 * A weighted running mean with exponential memory of `horizon` records of the LABEL (both groups on one clock,
 * so the trusted and untrusted means cover the same stretch of the stream whatever their shares; otherwise the
 * model's own drift between their time spans would read as a shift). Forward decay: record i weighs
 * e^{(i − base)/horizon}, so the decay cancels in S/W and an update touches only the record's own sum.
 */
interface Moments {
  /** Σ w·g, Σ w, Σ w² (the last two give the effective sample size (Σw)²/Σw²). */
  readonly sum: Float64Array;
  w: number;
  w2: number;
}

interface LabelState {
  /** Records of this label seen (the clock of the running means) and the forward-decay base. */
  clock: number;
  base: number;
  readonly ref: Moments;
  /** Σ w·g² of the reference, per coordinate (its variance is Σw·g²/Σw − mean²). */
  readonly sq: Float64Array;
  readonly stream: Moments;
  readonly q: ScoreWindow;
  /** The stream mean restarted once the reference first had `minReference` records (see `screen`). */
  synced: boolean;
}

/**
 * The most recent scores in a ring, and their quantile (recomputed every 16 additions: a sort of at most
 * `size` values). Scores are added clamped at the threshold in force, as outliers.ts feeds its quantiles, so
 * quarantined records neither drag the threshold up nor, censored, let it ratchet down.
 */
class ScoreWindow {
  readonly values: Float64Array;
  count = 0;
  private cached = NaN;
  private stale = 0;

  constructor(
    size: number,
    private readonly p: number,
  ) {
    this.values = new Float64Array(size);
  }

  add(x: number): void {
    if (!Number.isFinite(x)) return;
    this.values[this.count % this.values.length] = x;
    this.count += 1;
    this.stale += 1;
  }

  value(): number {
    const n = Math.min(this.count, this.values.length);
    if (n === 0) return NaN;
    if (this.stale >= 16 || Number.isNaN(this.cached)) {
      const sorted = this.values.slice(0, n).sort();
      this.cached = sorted[Math.min(n - 1, Math.floor(this.p * n))];
      this.stale = 0;
    }
    return this.cached;
  }
}

export interface GradientState {
  readonly sketchDim: number;
  /** [label, clock, base, ref [Σw, Σw²], stream [Σw, Σw²], ref Σwg, ref Σwg², stream Σwg, scores (base64 float64), scores added, synced]. */
  readonly labels: readonly (readonly [number, number, number, readonly [number, number], readonly [number, number], string, string, string, string, number, 0 | 1])[];
}

export class GradientDetector implements Detector {
  readonly name = 'gradient';
  readonly scope = 'cross-record' as const;
  private readonly states = new Map<number, LabelState>();
  /** The shift statistic T of the last record screened (0 before warm-up), for metrics and tests. */
  lastShift = 0;
  private readonly g: Float64Array;
  /** Working array: the reference's per-coordinate variance for this record. */
  private readonly g2: Float64Array;
  private readonly w: Float64Array;
  private readonly mask: number;

  constructor(
    readonly settings: GradientSettings,
    private readonly deps: GradientDeps,
  ) {
    this.g = new Float64Array(settings.sketchDim);
    this.g2 = new Float64Array(settings.sketchDim);
    this.w = new Float64Array(settings.sketchDim);
    this.mask = settings.sketchDim - 1;
  }

  /** Bytes held: three sketch-sized float64 arrays per label seen, and two working arrays. */
  get stateBytes(): number {
    return this.states.size * 3 * 8 * this.settings.sketchDim + 2 * 8 * this.settings.sketchDim;
  }

  private state(label: number): LabelState {
    let st = this.states.get(label);
    if (!st) {
      const m = this.settings.sketchDim;
      const moments = (): Moments => ({ sum: new Float64Array(m), w: 0, w2: 0 });
      st = { clock: 0, base: 0, ref: moments(), sq: new Float64Array(m), stream: moments(), q: new ScoreWindow(this.settings.scoreWindow, this.settings.quantile), synced: false };
      this.states.set(label, st);
    }
    return st;
  }

  /** Advance the label's clock; rescale the forward-decay sums once their weights reach e^20. Returns this record's weight. */
  private tick(st: LabelState): number {
    const H = this.settings.horizon;
    st.clock += 1;
    if ((st.clock - st.base) / H > 20) {
      const f = Math.exp(-(st.clock - st.base) / H);
      for (const mo of [st.ref, st.stream]) {
        for (let j = 0; j < mo.sum.length; j++) mo.sum[j] *= f;
        mo.w *= f;
        mo.w2 *= f * f;
      }
      for (let j = 0; j < st.sq.length; j++) st.sq[j] *= f;
      st.base = st.clock;
    }
    return Math.exp((st.clock - st.base) / H);
  }

  /** Count sketch of the clipped gradient residual ⊗ [input; 1] into this.g; false when there is none. */
  private sketch(gr: RecordGradient): boolean {
    const g = this.g;
    g.fill(0);
    const res = gr.residual;
    let r2 = 0;
    for (let k = 0; k < res.length; k++) r2 += res[k] * res[k];
    let a2 = 1;
    for (let i = 0; i < gr.n; i++) a2 += gr.values[i] * gr.values[i];
    const norm = Math.sqrt(r2 * a2);
    if (!(norm > 0) || !Number.isFinite(norm)) return false;
    const c = Math.min(1, this.settings.clipNorm / norm);
    for (let i = 0; i <= gr.n; i++) {
      // Input i (the bias, constant 1, comes last), times each class's residual, into a signed bucket.
      const hi = Math.imul((i < gr.n ? gr.indices[i] : gr.inputs) + 1, 0x9e3779b1);
      const v = c * (i < gr.n ? gr.values[i] : 1);
      for (let k = 0; k < res.length; k++) {
        if (res[k] === 0) continue;
        const h = fmix32(hi ^ Math.imul(k + 1, 0x85ebca6b));
        g[h & this.mask] += (h >>> 31 ? -v : v) * res[k];
      }
    }
    return true;
  }

  screen(record: TrainingRecord, _raw?: RawMessage): Verdict {
    const s = this.settings;
    const t = this.deps.clock.timeOf(record);
    this.deps.registry.observe(record, t);
    const gr = this.deps.gradient(record);
    if (!gr || !this.sketch(gr)) return ACCEPT;
    const st = this.state(record.label);
    const weight = this.tick(st);
    const trusted = this.deps.registry.trust(record.source, t) >= s.minTrust;

    // The common direction d = stream mean − reference mean, its size against sampling noise, and the whitened
    // projection of this record's centred gradient on it.
    const m = s.sketchDim;
    const g = this.g;
    const w = this.w;
    const ref = st.ref;
    const str = st.stream;
    const nRef = ref.w2 > 0 ? (ref.w * ref.w) / ref.w2 : 0;
    if (!st.synced && nRef >= s.minReference) {
      // The two means must cover about the same stretch of the stream: at a cold start every source is untrusted,
      // so the stream mean would also hold the first model's gradients, which the reference never saw (measured on
      // clean mail: T ≈ 50 for a horizon after start-up). Restart the stream once the reference exists.
      str.sum.fill(0);
      str.w = 0;
      str.w2 = 0;
      st.synced = true;
    }
    const nStream = str.w2 > 0 ? (str.w * str.w) / str.w2 : 0;
    const warm = nRef >= s.minReference && nStream >= s.minStream && (this.deps.modelSeen?.() ?? Infinity) >= s.minModelRecords;
    let score = 0;
    let shift = 0;
    if (ref.w > 0 && str.w > 0) {
      let d2 = 0;
      let trace = 0;
      for (let j = 0; j < m; j++) {
        const mu = ref.sum[j] / ref.w;
        const v = Math.max(0, st.sq[j] / ref.w - mu * mu);
        const d = str.sum[j] / str.w - mu;
        d2 += d * d;
        trace += v;
        w[j] = d; // whitened below, once the trace (for the shrinkage floor) is known
        this.g2[j] = v;
      }
      const floor = (s.shrink * trace) / m;
      let wn = 0;
      for (let j = 0; j < m; j++) {
        w[j] /= this.g2[j] + floor;
        wn += w[j] * w[j];
      }
      wn = Math.sqrt(wn);
      if (wn > 0) for (let j = 0; j < m; j++) score += ((g[j] - ref.sum[j] / ref.w) * w[j]) / wn;
      shift = trace > 0 && nRef > 0 && nStream > 0 ? d2 / (trace * (1 / nStream + 1 / nRef)) : 0;
    }
    this.lastShift = warm ? shift : 0;
    const threshold = s.slack * st.q.value();
    const ready = warm && st.q.count >= Math.min(s.scoreWindow, s.minReference) && Number.isFinite(threshold);
    const quarantine = ready && shift >= s.minShift && score > threshold && (!s.labels || s.labels.includes(record.label));

    // Every record is judged against the means without itself (its own pull on d would raise its score).
    if (!trusted) this.add(st.stream, weight);
    if (trusted) st.q.add(score);
    if (trusted) {
      // Reference: every trusted record, held or not. Both groups are untrimmed: trimming only the reference at the
      // top of d would itself shift its mean away along d and keep the alarm on (measured: a clean stream stuck at
      // T ≈ 50 once a fluctuation crossed the limit).
      this.add(ref, weight);
      for (let j = 0; j < m; j++) st.sq[j] += weight * g[j] * g[j];
    }
    if (!quarantine) return ACCEPT;
    return {
      kind: 'quarantine',
      reasons: [
        {
          stage: this.name,
          code: 'gradient_common_direction',
          message: `this record's gradient lies ${score.toFixed(3)} along the direction in which label-${record.label} gradients from untrusted sources have moved away from trusted sources' (shift ${shift.toFixed(1)} times sampling noise, the limit is ${s.minShift}); ${Math.round(100 * s.quantile)}% of trusted sources' records lie within ${(threshold / s.slack).toFixed(3)} (limit ×${s.slack})`,
          score,
          threshold,
        },
      ],
    };
  }

  private add(mo: Moments, weight: number): void {
    for (let j = 0; j < this.g.length; j++) mo.sum[j] += weight * this.g[j];
    mo.w += weight;
    mo.w2 += weight * weight;
  }

  toJSON(): GradientState {
    const f64 = (a: Float64Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
    return {
      sketchDim: this.settings.sketchDim,
      labels: [...this.states].map(
        ([label, st]) =>
          [label, st.clock, st.base, [st.ref.w, st.ref.w2], [st.stream.w, st.stream.w2], f64(st.ref.sum), f64(st.sq), f64(st.stream.sum), f64(st.q.values), st.q.count, st.synced ? 1 : 0] as const,
      ),
    };
  }

  restore(state: GradientState): void {
    const m = this.settings.sketchDim;
    if (!state || !Array.isArray(state.labels)) throw corrupt(this.name, 'expected { sketchDim, labels }');
    if (state.sketchDim !== m) throw corrupt(this.name, `sketches have ${state.sketchDim} dimensions; the settings say ${m} (was sketchDim changed?)`);
    this.states.clear();
    const arr = (b64: string) => {
      const b = Buffer.from(b64, 'base64');
      if (b.length !== 8 * m) throw corrupt(this.name, `an array has ${b.length / 8} values; sketchDim is ${m}`);
      return new Float64Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
    };
    for (const row of state.labels) {
      if (!Array.isArray(row) || row.length !== 11) throw corrupt(this.name, 'bad label entry');
      const [label, clock, base, [rw, rw2], [sw, sw2], refSum, sq, streamSum, scores, added, synced] = row;
      const q = new ScoreWindow(this.settings.scoreWindow, this.settings.quantile);
      const b = Buffer.from(scores, 'base64');
      if (b.length !== 8 * this.settings.scoreWindow) throw corrupt(this.name, `the score window holds ${b.length / 8} values; scoreWindow is ${this.settings.scoreWindow} (was it changed?)`);
      q.values.set(new Float64Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)));
      q.count = added;
      this.states.set(label, { clock, base, ref: { sum: arr(refSum), w: rw, w2: rw2 }, sq: arr(sq), stream: { sum: arr(streamSum), w: sw, w2: sw2 }, q, synced: synced === 1 });
    }
  }
}
