import { OutlierDetector, textFeaturize } from '../../filters/outliers';
import { hashedTextFeaturizer } from '../../middleware/featurize';
import { splitSpamCorpus, shuffled } from '../../src/data/spam';
import type { TrainingRecord } from '../../core/record';
import seedrandom from 'seedrandom';
import { DEFAULT_OUTLIERS } from '../../filters/config';

const raw = { topic: 't', partition: 0, offset: '0', key: null, value: null };
const DIM = 1024;
const featurize = textFeaturize(hashedTextFeaturizer(DIM));
const make = () => new OutlierDetector({ ...DEFAULT_OUTLIERS, dim: DIM }, { featurize });
const { train, test } = splitSpamCorpus();
const toRec = (m: { id: string; label: number; text: string }, label = m.label): TrainingRecord => ({ id: m.id, source: 's', label, text: m.text });

/** One detector warmed on the training split (shared: warming is the slow part under jest). */
const warmed = make();
const warmFlags = shuffled(train, 'outliers').map((m) => warmed.screen(toRec(m), raw).kind);

function rate(det: OutlierDetector, recs: TrainingRecord[]) {
  const hits = recs.filter((r) => det.screen(r, raw).kind !== 'accept').length;
  return { hits, n: recs.length, pct: (100 * hits) / recs.length };
}

describe('outliers (sphere and slab)', () => {
  it('accepts everything during warm-up', () => {
    const d = make();
    for (const m of train.slice(0, 150)) expect(d.screen(toRec(m), raw).kind).toBe('accept');
  });

  it('flags few clean records after warm-up (training stream and held-out mails)', () => {
    const trainPct = (100 * warmFlags.filter((k) => k !== 'accept').length) / warmFlags.length;
    const snapshot = JSON.stringify(warmed);
    const d = make();
    d.restore(JSON.parse(snapshot));
    const ham = rate(d, test.filter((m) => m.label === 0).map((m) => toRec(m)));
    const spam = rate(d, test.filter((m) => m.label === 1).map((m) => toRec(m)));
    console.log(
      `outliers false positives: training stream ${trainPct.toFixed(2)}%; held-out ham ${ham.hits}/${ham.n} = ${ham.pct.toFixed(2)}%, spam ${spam.hits}/${spam.n} = ${spam.pct.toFixed(2)}%`,
    );
    expect(ham.pct).toBeLessThanOrEqual(2);
    expect(spam.pct).toBeLessThanOrEqual(2);
  });

  it('measures recall on text label flips and dictionary-stuffed texts (printed; weak on sparse text)', () => {
    const d = make();
    d.restore(JSON.parse(JSON.stringify(warmed)));
    const flips = rate(d, test.filter((m) => m.label === 1).map((m) => toRec(m, 0)));
    const rng = seedrandom('dict');
    const dict = ['viagra', 'mortgage', 'casino', 'loan', 'winner', 'pharmacy', 'replica', 'rolex', 'bitcoin', 'crypto', 'pills', 'cheap', 'discount', 'offer', 'free', 'bonus', 'lottery', 'inheritance'];
    const stuffed = Array.from({ length: 200 }, (_, i) => ({ id: `d${i}`, source: 'x', label: 0, text: Array.from({ length: 60 }, () => dict[Math.floor(rng() * dict.length)]).join(' ') }));
    const st = rate(d, stuffed);
    console.log(`outliers recall: flipped spam→ham ${flips.pct.toFixed(1)}%, dictionary-stuffed ${st.pct.toFixed(1)}%`);
    expect(flips.pct).toBeGreaterThan(0);
  });

  it('catches sphere and slab outliers in dense features', () => {
    const rng = seedrandom('dense');
    const gauss = () => Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
    const centre = [[0, 0, 0, 0], [3, 3, 0, 0]];
    const point = (label: number, shift = 0): TrainingRecord => ({ id: 'p', source: 's', label, features: centre[label].map((c, j) => c + gauss() * 0.5 + (j === 3 ? shift : 0)) });
    const d = new OutlierDetector({ ...DEFAULT_OUTLIERS, dim: 4, minPerClass: 200 }, { featurize: (r) => Float32Array.from(r.features ?? []) });
    let clean = 0;
    for (let i = 0; i < 3000; i++) if (d.screen(point(i % 2), raw).kind !== 'accept') clean++;
    console.log(`outliers dense: clean ${((100 * clean) / 3000).toFixed(2)}% flagged`);
    expect(clean / 3000).toBeLessThan(0.02);
    const far = d.screen(point(0, 10), raw); // far off in a direction unrelated to the classes: the sphere
    expect(far).toMatchObject({ kind: 'quarantine', reasons: [{ stage: 'outliers', code: 'sphere_outlier' }] });
    const flipped = { ...point(1), label: 0 }; // a class-1 point labelled 0: along the slab
    const v = d.screen(flipped, raw);
    expect(v.kind).toBe('quarantine');
    if (v.kind === 'quarantine') {
      expect(v.reasons.map((r) => r.code)).toContain('slab_outlier');
      for (const r of v.reasons) expect(r.score).toBeGreaterThan(r.threshold as number);
    }
  });

  it('round-trips (same verdicts) and rejects a state of another dimension', () => {
    const a = make();
    a.restore(JSON.parse(JSON.stringify(warmed)));
    const b = make();
    b.restore(JSON.parse(JSON.stringify(a)));
    const recs = test.slice(0, 50).map((m) => toRec(m));
    expect(recs.map((r) => b.screen(r, raw))).toEqual(recs.map((r) => a.screen(r, raw)));
    const other = new OutlierDetector({ ...DEFAULT_OUTLIERS, dim: 16 }, { featurize: textFeaturize(hashedTextFeaturizer(16)) });
    expect(() => other.restore(a.toJSON())).toThrow(/dim is 16/);
  });
});
