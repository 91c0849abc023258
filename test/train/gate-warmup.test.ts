/**
 * The plain-SGD gate's warm-up must not be calibrated by a flood that begins inside it. The series is the served
 * model's canary accuracy at each judgement of `npx tsx bench/attacks.ts --only A --no-dp --seeds 1` with the gate
 * alone (a trace of this session): the Tay-style flood began at the 7th of the 8 warm-up judgements. Counting its
 * falls as noise set a 36-point rollback margin (5 × 0.073) and the gate never rolled back; blanking the scores that
 * fell more than ROLLBACK_ACCURACY_DROP below the best so far leaves the noise of a model near its best.
 */
import { judgementNoise, nearBest, warmupNoise } from '../../train/gate-noise';

const FLOODED = [0.665, 0.82, 0.965, 0.965, 0.975, 0.98, 0.865, 0.775];
const SPAM_CLASS = [0, 0.493, 0.94, 0.925, 0.955, 0.97, 0.597, 0.328];
const CLEAN = [0.665, 0.82, 0.965, 0.965, 0.975, 0.98, 0.96, 0.975];

describe('the plain-SGD warm-up noise', () => {
  it('blanks only the scores more than the drop below the best so far', () => {
    expect(nearBest(FLOODED, 0.05).map((x) => (Number.isNaN(x) ? null : x))).toEqual([0.665, 0.82, 0.965, 0.965, 0.975, 0.98, null, null]);
    expect(nearBest(CLEAN, 0.05)).toEqual(CLEAN);
  });

  it('is not set by a flood inside the warm-up, and is unchanged on a clean warm-up', () => {
    const counted = warmupNoise(FLOODED, SPAM_CLASS.map((s) => [0.985, s]), 2);
    const settled = warmupNoise(FLOODED, SPAM_CLASS.map((s) => [0.985, s]), 2, 0.05);
    expect(5 * counted.overall).toBeGreaterThan(0.3); // the margin the flood bought itself
    expect(5 * settled.overall).toBeLessThan(0.05); // the 5-point rollback drop decides again
    expect(5 * settled.perClass[1]).toBeLessThan(0.25); // the spam canaries' 64-point fall now crosses it
    expect(warmupNoise(CLEAN, [], 0, 0.05).overall).toBeCloseTo(judgementNoise(CLEAN), 12);
  });
});
