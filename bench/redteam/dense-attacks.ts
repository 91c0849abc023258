/**
 * Dense attack families on MNIST pixels (MODEL=dense, FEATURE_DIM=784, NUM_CLASSES=10):
 *
 *   dense-backdoor  training digits of other classes with a trigger, labelled the target class (Gu et al. 2017,
 *                   BadNets; Chen et al. 2017 for the blended trigger): a white corner patch, a fixed sparse pixel
 *                   pattern, or a fixed random image blended in at α.
 *   dense-flip      label flips: images of one class labelled another (a targeted pair), or random images with
 *                   random wrong labels.
 *
 * The attacker's accounts are aged: each sends 5 correct digits two days before the live phase.
 */
import seedrandom from 'seedrandom';
import { backdoorSuccess, labelledAs, num, str, type Context, type Family } from './scenario';
import { accounts, attackCount, pick, shuffle, type AttackDraft, type Example } from './stream';

const SIDE = 28;
const ACCOUNTS = 50;
const WARMUP = 5;

export type Trigger = (features: readonly number[]) => number[];

/** The trigger of a kind; `seed` fixes the pattern and the blend image (the attacker's secret). */
export function makeTrigger(kind: string, seed: string, size = 4, alpha = 0.2): Trigger {
  const rng = seedrandom(`${seed}/trigger`);
  if (kind === 'patch') {
    return (f) => {
      const out = [...f];
      for (let r = SIDE - 1 - size; r < SIDE - 1; r++) for (let c = SIDE - 1 - size; c < SIDE - 1; c++) out[r * SIDE + c] = 1;
      return out;
    };
  }
  if (kind === 'pattern') {
    // 12 fixed pixels scattered over the image, set to 1.
    const pixels = shuffle(Array.from({ length: SIDE * SIDE }, (_, i) => i), rng).slice(0, 12);
    return (f) => {
      const out = [...f];
      for (const i of pixels) out[i] = 1;
      return out;
    };
  }
  if (kind === 'blend') {
    const noise = Array.from({ length: SIDE * SIDE }, () => rng());
    return (f) => f.map((x, i) => (1 - alpha) * x + alpha * noise[i]);
  }
  throw new Error(`dense-backdoor: unknown trigger ${kind}`);
}

function attackerAccounts(ctx: Context, rng: () => number) {
  const names = accounts('digit', ACCOUNTS);
  const warmup: AttackDraft[] = names.flatMap((source) => Array.from({ length: WARMUP }, () => ({ source, example: pick(ctx.data.train, rng), role: 'attacker' as const })));
  return { names, warmup, ageDays: 2 };
}

export const denseBackdoor: Family = (ctx, p) => {
  const rng = seedrandom(`${ctx.seed}/dense-backdoor`);
  const target = num(p, 'target');
  const trigger = makeTrigger(str(p, 'trigger'), ctx.seed);
  const { names, warmup, ageDays } = attackerAccounts(ctx, rng);
  const others = shuffle(ctx.data.train.filter((e) => e.label !== target), rng);
  const live: AttackDraft[] = Array.from({ length: attackCount(num(p, 'share'), ctx.clean.length) }, (_, i) => ({
    source: pick(names, rng),
    example: { label: target, features: trigger(others[i % others.length].features as number[]) },
  }));
  return {
    family: 'dense-backdoor',
    params: p,
    plan: { live, warmup, ageDays },
    attackSuccess: backdoorSuccess(ctx.data.test, (e: Example) => ({ features: trigger(e.features as number[]) }), target),
    success: `held-out digits (not ${target}) the model gets right, classified ${target} once the trigger is added`,
    backdoor: true,
  };
};

export const denseFlip: Family = (ctx, p) => {
  const rng = seedrandom(`${ctx.seed}/dense-flip`);
  const { names, warmup, ageDays } = attackerAccounts(ctx, rng);
  const n = attackCount(num(p, 'share'), ctx.clean.length);
  if (str(p, 'mode') === 'random') {
    const live: AttackDraft[] = Array.from({ length: n }, () => {
      const e = pick(ctx.data.train, rng);
      return { source: pick(names, rng), example: { label: (e.label + 1 + Math.floor(rng() * 9)) % 10, features: e.features } };
    });
    return { family: 'dense-flip', params: p, plan: { live, warmup, ageDays }, success: '— (random flips: the goal is accuracy)' };
  }
  const from = num(p, 'from');
  const to = num(p, 'to');
  const pool = shuffle(ctx.data.train.filter((e) => e.label === from), rng);
  const live: AttackDraft[] = Array.from({ length: n }, (_, i) => ({ source: pick(names, rng), example: { label: to, features: pool[i % pool.length].features } }));
  return {
    family: 'dense-flip',
    params: p,
    plan: { live, warmup, ageDays },
    attackSuccess: labelledAs(ctx.data.test.filter((e) => e.label === from).map((e) => ({ features: e.features })), to),
    success: `held-out ${from}s classified ${to}`,
  };
};
