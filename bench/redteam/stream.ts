/**
 * Streams for the red-team benchmark (bench/redteam.ts): a clean stream of labelled examples from ~300
 * established sources on a realistic event-time timeline, with an attacker's records mixed in. Pure data, seeded;
 * no model and no Kafka. An attacker record may be built only when it is sent (`build`), so that an attacker can
 * consult the public model at that moment (the oracle-guided flood).
 *
 * Timeline (as bench/attack-scenarios.ts): the first `historyFraction` of the clean examples is the sources'
 * history, spread evenly over the `historyDays` before the live phase (every established source is days old when
 * it starts); the live phase runs at one record every `liveStepMs` of event time, attack records included; a
 * trickle of new, clean users (`newUserShare` of live clean records, 1–2 records each) joins during it. Attack
 * records land in the attack window (the last `attackWindowFraction` of the live clean records), interleaved
 * uniformly at random or, for `spacedMs`, one every so often. Attacker accounts may warm up first: correct
 * records sent `ageDays` before the live phase (as a patient attacker ages its accounts).
 */
import seedrandom from 'seedrandom';
import { orderPreservingMix } from '../attack-scenarios';

/** A model input: text for MODEL=text, features for MODEL=dense. */
export interface Payload {
  readonly text?: string;
  readonly features?: readonly number[];
}

export interface Example extends Payload {
  readonly label: number;
}

/** A record as produced to `<prefix>.records` (the record contract), with the Kafka timestamp it is sent with. */
export interface Rec extends Example {
  readonly id: string;
  readonly source: string;
  readonly ts: number;
}

/** honest: a real user's record; attacker: sent by the attacker but correct (warm-up); poison: the attack itself. */
export type Role = 'honest' | 'attacker' | 'poison';

/** What the attacker may ask of the public model: exactly what POST /v1/predict answers (see oracle.ts). */
export type Oracle = (inputs: readonly Payload[]) => Promise<readonly PublicPrediction[]>;

export interface PublicPrediction {
  readonly label: number;
  /** Absent when the endpoint answers labels only. */
  readonly probabilities?: readonly number[];
}

export interface Item {
  readonly role: Role;
  readonly source: string;
  readonly ts: number;
  readonly id: string;
  /** The example, or how to build it when it is sent (the oracle-guided attacker). */
  readonly example?: Example;
  readonly build?: (oracle: Oracle) => Promise<Example>;
  /** The Kafka message timestamp when the producer set it apart from `ts` (clock hijack with CreateTime). */
  readonly kafkaTs?: number;
  /** The record's own `ts` field when it differs from the event time it was sent at (clock hijack). */
  readonly recordTs?: number;
  /** Push through the screens only, not the trainer (the 100,000-account sybil flush: see harness.ts). */
  readonly screenOnly?: boolean;
  /** Content the attacker chose, sent by honest users (campaign reports): counted with the poison for cost. */
  readonly crafted?: boolean;
  /** The counterfactual's stand-in for an attacker message: consumed, not trained (an empty DP slot). */
  readonly empty?: boolean;
  /** When the account was created, as the deployment's producer states it (`sourceMeta.createdAt`, ms). */
  readonly createdAt: number;
}

export interface Timeline {
  readonly sources: number;
  readonly historyFraction: number;
  readonly historyDays: number;
  readonly liveStepMs: number;
  readonly newUserShare: number;
  readonly attackWindowFraction: number;
  readonly liveStart: number;
}

export const DEFAULT_TIMELINE: Timeline = {
  sources: 300,
  historyFraction: 0.4,
  historyDays: 10,
  liveStepMs: 2000,
  newUserShare: 0.05,
  attackWindowFraction: 0.5,
  liveStart: Date.UTC(2026, 10, 1),
};

export const DAY = 24 * 3600_000;
export const HOUR = 3600_000;

/** An attacker's record before it has a time: a fixed example or a builder, from one of its accounts. */
export interface AttackDraft {
  readonly source: string;
  readonly example?: Example;
  readonly build?: (oracle: Oracle) => Promise<Example>;
  readonly role?: Role;
  readonly kafkaOffsetMs?: number;
  readonly recordOffsetMs?: number;
  readonly screenOnly?: boolean;
}

export interface AttackPlan {
  /** Records in the attack window, in sending order. */
  readonly live: readonly AttackDraft[];
  /** Correct records each attacker account sends before (ageing its accounts): at liveStart − ageDays. */
  readonly warmup?: readonly AttackDraft[];
  readonly ageDays?: number;
  /** Place the live attack records one every `spacedMs` of event time from the window's start (slow attacks). */
  readonly spacedMs?: number;
  /** Another live rate (the slow backdoor spreads the live phase over days). */
  readonly liveStepMs?: number;
  /** Honest records in the attack window whose role stays honest but which the scenario built (campaign reports). */
  readonly honestLive?: readonly AttackDraft[];
}

export interface Stream {
  readonly items: Item[];
  readonly poisonCount: number;
  readonly honestCount: number;
}

const pad = (n: number, w = 3) => String(n).padStart(w, '0');

export function shuffle<T>(items: readonly T[], rng: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

export function pick<T>(items: readonly T[], rng: () => number): T {
  return items[Math.floor(rng() * items.length)];
}

/** Number of attack records that makes them `share` of all records, given `clean` clean ones. */
export function attackCount(share: number, clean: number): number {
  return Math.round((share * clean) / (1 - share));
}

interface Slot {
  role: Role;
  source: string;
  example?: Example;
  build?: (oracle: Oracle) => Promise<Example>;
  kafkaOffsetMs?: number;
  recordOffsetMs?: number;
  screenOnly?: boolean;
  crafted?: boolean;
  ts?: number;
}

/**
 * The stream: `clean` examples (already in this seed's order) on the timeline, the plan's records mixed in.
 * `seed` draws source assignments and the interleaving.
 */
export function buildStream(clean: readonly Example[], plan: AttackPlan, seed: string, t: Timeline = DEFAULT_TIMELINE): Stream {
  const rng = seedrandom(`${seed}/stream`);
  const nHistory = Math.round(clean.length * t.historyFraction);
  const history: Slot[] = clean.slice(0, nHistory).map((e, i) => ({ role: 'honest', source: `src-${pad(i % t.sources)}`, example: e }));
  let newUsers = 0;
  let pendingNew: string | undefined;
  const live: Slot[] = clean.slice(nHistory).map((e) => {
    let source: string;
    if (pendingNew && rng() < 0.5) {
      source = pendingNew;
      pendingNew = undefined;
    } else if (rng() < t.newUserShare) {
      source = `newuser-${pad(newUsers++, 4)}`;
      pendingNew = source;
    } else source = `src-${pad(Math.floor(rng() * t.sources))}`;
    return { role: 'honest', source, example: e };
  });
  const start = Math.round(live.length * (1 - t.attackWindowFraction));
  const toSlot = (d: AttackDraft, role: Role): Slot => ({ role: d.role ?? role, source: d.source, example: d.example, build: d.build, kafkaOffsetMs: d.kafkaOffsetMs, recordOffsetMs: d.recordOffsetMs, screenOnly: d.screenOnly });
  // Honest records the scenario adds (campaign reports) are mixed into the window like honest traffic.
  const window = orderPreservingMix(live.slice(start), (plan.honestLive ?? []).map((d) => ({ ...toSlot(d, 'honest'), crafted: true })), rng);
  const attack = plan.live.map((d) => toSlot(d, 'poison'));
  const liveStep = plan.liveStepMs ?? t.liveStepMs;
  let liveSlots: Slot[];
  if (plan.spacedMs !== undefined) {
    // Honest traffic keeps its pace; attack records are placed one per `spacedMs` from the window's start.
    const windowStart = t.liveStart + start * liveStep;
    attack.forEach((s, i) => (s.ts = windowStart + (i + 0.5) * plan.spacedMs!));
    liveSlots = [...live.slice(0, start), ...window];
    liveSlots.forEach((s, i) => (s.ts = t.liveStart + i * liveStep));
    liveSlots = mergeByTime(liveSlots, attack);
  } else {
    liveSlots = [...live.slice(0, start), ...orderPreservingMix(window, attack, rng)];
    liveSlots.forEach((s, i) => (s.ts = t.liveStart + i * liveStep));
  }
  const historyStart = t.liveStart - t.historyDays * DAY;
  const step = (t.liveStart - historyStart) / Math.max(1, history.length);
  history.forEach((s, i) => (s.ts = Math.round(historyStart + i * step)));
  const warm = (plan.warmup ?? []).map((d) => toSlot(d, 'attacker'));
  // Warm-up records are sent over an hour, ageDays before the live phase (0: at the attack window's start).
  const age = plan.ageDays ?? 0;
  const warmStart = age > 0 ? t.liveStart - age * DAY : t.liveStart + start * liveStep - HOUR;
  warm.forEach((s, i) => (s.ts = Math.round(warmStart + (i * HOUR) / Math.max(1, warm.length))));
  const slots = mergeByTime([...history, ...liveSlots], warm);
  const created = accountCreation(slots, seed);
  const counters = new Map<string, number>();
  const items: Item[] = slots.map((s) => {
    const n = counters.get(s.source) ?? 0;
    counters.set(s.source, n + 1);
    const ts = s.ts as number;
    return {
      role: s.role,
      source: s.source,
      ts,
      id: `${s.source}-${n}`,
      ...(s.example ? { example: s.example } : {}),
      ...(s.build ? { build: s.build } : {}),
      ...(s.kafkaOffsetMs !== undefined ? { kafkaTs: ts + s.kafkaOffsetMs } : {}),
      ...(s.recordOffsetMs !== undefined ? { recordTs: ts + s.recordOffsetMs } : {}),
      ...(s.screenOnly ? { screenOnly: true } : {}),
      ...(s.crafted ? { crafted: true } : {}),
      createdAt: created.get(s.source) as number,
    };
  });
  return { items, poisonCount: items.filter((x) => x.role === 'poison').length, honestCount: items.filter((x) => x.role === 'honest').length };
}


/**
 * When each account was created, as a deployment's own account records would say (the producer sends it as
 * `sourceMeta.createdAt`; docs/threat-model.md: the deployment's word, never the user's). Established honest
 * sources (`src-…`) were created up to two years before their first record here (uniform, seeded: most are older
 * than a month, a few are not); every other account — new users, the attacker's accounts, sybils — was created when
 * it first sent, so an attacker ages an account only by creating it early (its warm-up records, `ageDays`).
 * Compromised established accounts keep their honest creation time.
 */
function accountCreation(slots: readonly Slot[], seed: string): Map<string, number> {
  const rng = seedrandom(`${seed}/accounts`);
  const out = new Map<string, number>();
  for (const s of slots) {
    if (out.has(s.source)) continue;
    const first = s.ts as number;
    out.set(s.source, s.source.startsWith('src-') ? Math.round(first - rng() * 730 * DAY) : first);
  }
  return out;
}

/** Merge two time-ordered lists by `ts` (stable: on a tie the first list's slot goes first). */
function mergeByTime(a: readonly Slot[], b: readonly Slot[]): Slot[] {
  const sb = [...b].sort((x, y) => (x.ts as number) - (y.ts as number));
  const out: Slot[] = [];
  let j = 0;
  for (const s of a) {
    while (j < sb.length && (sb[j].ts as number) < (s.ts as number)) out.push(sb[j++]);
    out.push(s);
  }
  while (j < sb.length) out.push(sb[j++]);
  return out;
}

/** Account names for an attacker: `n` sources with a prefix no honest source uses. */
export function accounts(prefix: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}-${pad(i, 4)}`);
}

/**
 * The clean run that a scenario is judged against: the same stream with every message the attacker sent or wrote
 * (poison, warm-ups, crafted reports) emptied — still consumed, never trained, like the DP schedule's zero-out
 * neighbour (docs/privacy.md, "the schedule"). Steps run at the same messages, the coins fall on the same slots and
 * (DP_SEED) the noise is the same, so the difference between the two runs is the attack's content alone; a clean
 * stream without those messages would take fewer steps, and a DP model that has taken fewer steps is a worse one.
 * Screen-only messages (the sybil flush) never took a slot and are left out.
 */
export function counterfactual(stream: Stream): Stream {
  const items: Item[] = stream.items
    .filter((x) => !x.screenOnly)
    .map((x) => (x.role === 'honest' && !x.crafted ? x : { role: 'attacker', source: x.source, ts: x.ts, id: x.id, empty: true, createdAt: x.createdAt }));
  return { items, poisonCount: 0, honestCount: items.filter((x) => x.role === 'honest').length };
}
