import { StreamingPoissonSampler, createUniformSource, fixedDatasetBatches } from '../../../privacy/sampler';
import { hasCode } from '../../../core/errors';

describe('StreamingPoissonSampler', () => {
  it('keeps every record for exactly W steps and never exposes it to more', () => {
    const W = 7;
    const q = 0.3;
    const s = new StreamingPoissonSampler<number>({ sampleRate: q, window: W, rng: createUniformSource({ seed: 'exposure' }) });
    const admittedAt = new Map<number, number>();
    const inBatch = new Map<number, number[]>();
    let id = 0;
    for (let step = 0; step < 300; step++) {
      const arrivals = step % 5; // uneven arrivals
      for (let a = 0; a < arrivals; a++) {
        admittedAt.set(id, s.steps);
        s.admit(id++);
      }
      const b = s.nextBatch();
      expect(b.step).toBe(step);
      for (const r of b.records) {
        const steps = inBatch.get(r) ?? [];
        steps.push(b.step);
        inBatch.set(r, steps);
      }
    }
    for (const [r, steps] of inBatch) {
      const a = admittedAt.get(r) as number;
      for (const t of steps) {
        expect(t).toBeGreaterThanOrEqual(a);
        expect(t).toBeLessThan(a + W);
      }
    }
    // records admitted long enough ago are gone; the pool holds only the last W steps' arrivals
    for (const e of s.entries()) expect(admittedAt.get(e.record)).toBeGreaterThanOrEqual(s.steps - W);
  });

  it('includes each pooled record with probability q (binomial bound)', () => {
    const q = 0.2;
    const W = 10;
    const s = new StreamingPoissonSampler<number>({ sampleRate: q, window: W, rng: createUniformSource({ seed: 'rate' }) });
    for (let i = 0; i < 2000; i++) s.admit(i);
    let included = 0;
    let trials = 0;
    for (let t = 0; t < W; t++) {
      trials += s.poolSize;
      included += s.nextBatch().records.length;
    }
    expect(s.poolSize).toBe(0);
    expect(trials).toBe(2000 * W);
    const sd = Math.sqrt(trials * q * (1 - q));
    expect(Math.abs(included - trials * q)).toBeLessThan(5 * sd);
  });

  it('is reproducible only when seeded, and uses crypto by default', () => {
    expect(createUniformSource().kind).toBe('crypto');
    const a = createUniformSource({ seed: 1 });
    const b = createUniformSource({ seed: 1 });
    expect(a.kind).toBe('seeded');
    expect([a.next(), a.next()]).toEqual([b.next(), b.next()]);
  });

  it('round-trips through JSON (pool, ages and seeded coin stream)', () => {
    const s = new StreamingPoissonSampler<{ id: string }>({ sampleRate: 0.5, window: 3, rng: createUniformSource({ seed: 'json' }) });
    for (let i = 0; i < 20; i++) s.admit({ id: `r${i}` });
    s.nextBatch();
    const state = JSON.parse(JSON.stringify(s.toJSON()));
    const restored = StreamingPoissonSampler.fromJSON<{ id: string }>(state, createUniformSource({ state: state.rngState }));
    expect(restored.steps).toBe(1);
    expect(restored.entries()).toEqual(s.entries());
    expect(restored.nextBatch()).toEqual(s.nextBatch());
  });

  it('rejects a checkpoint whose record would outlive its window', () => {
    const state = { version: 1, sampleRate: 0.1, window: 2, step: 0, pool: [{ record: 1, remaining: 5 }] };
    expect(() => StreamingPoissonSampler.fromJSON(state)).toThrow(expect.objectContaining({ code: 'CHECKPOINT_CORRUPT' }));
    try {
      new StreamingPoissonSampler({ sampleRate: 0, window: 1 });
    } catch (err) {
      expect(hasCode(err, 'ARGUMENT_INVALID')).toBe(true);
    }
  });
});

describe('fixedDatasetBatches', () => {
  it('yields T batches with inclusion rate ≈ q', () => {
    const n = 1000;
    const q = 0.05;
    const T = 200;
    let total = 0;
    let count = 0;
    for (const b of fixedDatasetBatches(n, q, T, createUniformSource({ seed: 'fixed' }))) {
      count++;
      total += b.length;
      for (let i = 1; i < b.length; i++) expect(b[i]).toBeGreaterThan(b[i - 1]);
      if (b.length > 0) expect(b[b.length - 1]).toBeLessThan(n);
    }
    expect(count).toBe(T);
    const sd = Math.sqrt(n * T * q * (1 - q));
    expect(Math.abs(total - n * T * q)).toBeLessThan(5 * sd);
  });
});
