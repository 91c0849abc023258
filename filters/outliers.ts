/**
 * Sphere and slab defences (Steinhardt, Koh & Liang 2017, "Certified defenses for data poisoning attacks"),
 * streaming. Per class y, a centroid μ_y of feature vectors (the `featurize` dependency; for text the hashed,
 * L2-normalised features of middleware/featurize.ts):
 * - sphere (`sphere_outlier`): ‖x − μ_y‖ beyond `slack` × the class's running `quantile` of that distance;
 * - slab (`slab_outlier`): |⟨x − μ_y, u⟩| beyond `slack` × its running quantile, where u is the unit vector from
 *   the centroid of the other classes to μ_y. A label flip (a spam text labelled ham) sits near the wrong
 *   centroid, i.e. far along u, even when the sphere is too loose to notice.
 * The centroids are trimmed means: only records this stage accepts update them (running mean with memory
 * `horizon`, i.e. an exponential moving average once the class has `horizon` records). The quantiles (P², see
 * quantile.ts) see every record's value clamped at the current threshold, so quarantined outliers neither
 * drag the threshold up nor (being censored) let it shrink. Warm-up: a class is not screened until it has
 * `minPerClass` accepted records; the slab needs a second warmed-up class. Poison that arrives during warm-up
 * is not caught here (the rate, campaign and content stages are active from the first record).
 *
 * Measured on SpamAssassin text (hashed features, dim 1024): the sphere never fires — sparse unit vectors are
 * all about equally far from a centroid — and the slab catches few single label flips (≈ 3% of spam sent as
 * ham at the defaults; 38% at quantile 0.99 but then 3% of clean ham is held). On text, treat this stage as a
 * backstop; on dense features (MODEL=dense) the sphere is the useful half.
 */
import type { RawMessage, TrainingRecord } from '../core/record';
import { P2_BYTES, P2Quantile, type P2State } from './quantile';
import { corrupt, decodeF32, encodeArray } from './trust';
import { ACCEPT, type Detector, type Reason, type Verdict } from './types';

export interface OutlierSettings {
  readonly dim: number;
  readonly quantile: number;
  readonly slack: number;
  readonly minPerClass: number;
  readonly horizon: number;
  readonly sphere: boolean;
  readonly slab: boolean;
  /** Recompute slab directions after this many accepted records. */
  readonly refreshEvery: number;
}


interface ClassState {
  count: number;
  mean: Float32Array;
  sphereQ: P2Quantile;
  slabQ: P2Quantile;
  /** Cached unit slab direction (undefined until a second class is warm). */
  dir?: Float32Array;
}

export interface OutlierState {
  readonly classes: readonly { label: number; count: number; mean: string; dir?: string; sphere: P2State; slab: P2State }[];
  readonly acceptedSinceRefresh: number;
}

export type Featurize = (record: TrainingRecord) => Float32Array;

export class OutlierDetector implements Detector {
  readonly name = 'outliers';
  readonly scope = 'cross-record' as const;
  private readonly classes = new Map<number, ClassState>();
  private acceptedSinceRefresh = 0;

  constructor(
    readonly settings: OutlierSettings,
    private readonly deps: { readonly featurize: Featurize },
  ) {}

  private cls(label: number): ClassState {
    let c = this.classes.get(label);
    if (!c) {
      c = { count: 0, mean: new Float32Array(this.settings.dim), sphereQ: new P2Quantile(this.settings.quantile), slabQ: new P2Quantile(this.settings.quantile) };
      this.classes.set(label, c);
    }
    return c;
  }

  private warm(c: ClassState): boolean {
    return c.count >= this.settings.minPerClass;
  }

  private refreshDirections(): void {
    this.acceptedSinceRefresh = 0;
    const warm = [...this.classes.values()].filter((c) => this.warm(c));
    for (const c of this.classes.values()) {
      const others = warm.filter((o) => o !== c);
      if (!this.warm(c) || others.length === 0) {
        c.dir = undefined;
        continue;
      }
      const dir = c.dir ?? new Float32Array(this.settings.dim);
      const total = others.reduce((s, o) => s + o.count, 0);
      let sq = 0;
      for (let j = 0; j < dir.length; j++) {
        let m = 0;
        for (const o of others) m += (o.mean[j] * o.count) / total;
        dir[j] = c.mean[j] - m;
        sq += dir[j] * dir[j];
      }
      const inv = sq > 0 ? 1 / Math.sqrt(sq) : 0;
      for (let j = 0; j < dir.length; j++) dir[j] *= inv;
      c.dir = sq > 0 ? dir : undefined;
    }
  }

  screen(record: TrainingRecord, _raw?: RawMessage): Verdict {
    const s = this.settings;
    const x = this.deps.featurize(record);
    if (x.length !== s.dim) throw new RangeError(`outliers: featurize returned ${x.length} values; dim is ${s.dim}`);
    const c = this.cls(record.label);
    let sq = 0;
    let proj = 0;
    const dir = c.dir;
    for (let j = 0; j < x.length; j++) {
      const d = x[j] - c.mean[j];
      sq += d * d;
      if (dir) proj += d * dir[j];
    }
    const dist = Math.sqrt(sq);
    const slabDist = Math.abs(proj);
    const reasons: Reason[] = [];
    const feedFrom = Math.min(10, s.minPerClass);
    // A tail quantile from a handful of values is noise: each test also waits for enough values of its own.
    const enough = Math.max(feedFrom, Math.ceil(s.minPerClass / 2));
    const sphereThr = s.slack * c.sphereQ.value();
    const slabThr = s.slack * c.slabQ.value();
    const active = this.warm(c);
    if (active && s.sphere && c.sphereQ.count >= enough && dist > sphereThr) {
      reasons.push({
        stage: this.name,
        code: 'sphere_outlier',
        message: `features are ${dist.toFixed(3)} from the class-${record.label} centroid; ${Math.round(100 * s.quantile)}% of class-${record.label} records are within ${(sphereThr / s.slack).toFixed(3)} (limit ×${s.slack})`,
        score: dist,
        threshold: sphereThr,
      });
    }
    if (active && s.slab && dir && c.slabQ.count >= enough && slabDist > slabThr) {
      reasons.push({
        stage: this.name,
        code: 'slab_outlier',
        message: `features lie ${slabDist.toFixed(3)} from the class-${record.label} centroid along the direction between classes (${proj < 0 ? 'towards' : 'away from'} the other classes); ${Math.round(100 * s.quantile)}% of class-${record.label} records are within ${(slabThr / s.slack).toFixed(3)} (limit ×${s.slack})`,
        score: slabDist,
        threshold: slabThr,
      });
    }
    // Quantiles see every value, clamped at the current threshold (see header).
    if (c.count >= feedFrom) {
      c.sphereQ.add(Number.isFinite(sphereThr) ? Math.min(dist, sphereThr) : dist);
      if (dir) c.slabQ.add(Number.isFinite(slabThr) ? Math.min(slabDist, slabThr) : slabDist);
    }
    if (reasons.length > 0) return { kind: 'quarantine', reasons };
    c.count += 1;
    const eta = 1 / Math.min(c.count, s.horizon);
    for (let j = 0; j < x.length; j++) c.mean[j] += eta * (x[j] - c.mean[j]);
    if (++this.acceptedSinceRefresh >= s.refreshEvery || (c.count === s.minPerClass && !c.dir)) this.refreshDirections();
    return ACCEPT;
  }

  /** Upper bound on the JSON bytes of `toJSON()`: per class two base64 vectors of `dim` floats and two P² states. Fixed by the configuration (dim × classes). */
  get stateBytes(): number {
    return 64 + this.classes.size * (2 * (4 * Math.ceil((4 * this.settings.dim) / 3) + 16) + 2 * P2_BYTES + 96);
  }

  toJSON(): OutlierState {
    return {
      classes: [...this.classes].map(([label, c]) => ({
        label,
        count: c.count,
        mean: encodeArray(c.mean),
        ...(c.dir ? { dir: encodeArray(c.dir) } : {}),
        sphere: c.sphereQ.toJSON(),
        slab: c.slabQ.toJSON(),
      })),
      acceptedSinceRefresh: this.acceptedSinceRefresh,
    };
  }

  restore(state: OutlierState): void {
    if (!state || !Array.isArray(state.classes)) throw corrupt(this.name, 'expected { classes: [...] }');
    this.classes.clear();
    for (const k of state.classes) {
      const mean = decodeF32(k.mean);
      if (mean.length !== this.settings.dim) throw corrupt(this.name, `centroid has ${mean.length} values; dim is ${this.settings.dim}`);
      const dir = k.dir ? decodeF32(k.dir) : undefined;
      if (dir && dir.length !== this.settings.dim) throw corrupt(this.name, `slab direction has ${dir.length} values; dim is ${this.settings.dim}`);
      this.classes.set(k.label, { count: k.count, mean, dir, sphereQ: P2Quantile.restore(k.sphere), slabQ: P2Quantile.restore(k.slab) });
    }
    this.acceptedSinceRefresh = state.acceptedSinceRefresh ?? 0;
  }
}

/** The text featurize dependency: hashed features (middleware/featurize.ts) into a fresh row. */
export function textFeaturize(featurizer: { readonly dim: number; encodeInto(p: { text?: string; features?: readonly number[] }, out: Float32Array, offset: number): void }): Featurize {
  return (record) => {
    const out = new Float32Array(featurizer.dim);
    featurizer.encodeInto(record, out, 0);
    return out;
  };
}
