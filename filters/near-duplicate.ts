/**
 * Near-duplicates in FEATURE space (`near_duplicate_features`): the same content from many sources, judged on
 * the vector the model trains on (feature-view.ts), not on raw tokens. campaign.ts compares word shingles with
 * MinHash, so swapping every third token of a campaign text takes its agreement from ≥ 0.6 to 0.28 and the
 * campaign never fires (issue 10); in feature space such a paraphrase keeps two thirds of its mass and stays
 * close. The same code runs on dense feature vectors (near-identical images from many accounts).
 *
 * Method:
 * - SimHash (Charikar 2002, "Similarity estimation techniques from rounding algorithms"): `bits` random
 *   hyperplanes through the CENTRE of the stream (a running mean of the projections, so words or pixels every
 *   record has do not make everything look alike); a record's signature is the side of each hyperplane it lies
 *   on. Two vectors at angle θ differ in each bit with probability θ/π, so the Hamming distance estimates the
 *   angle and cos(π·h/bits) the cosine. The hyperplanes are ±1 per (feature, bit), derived from a hash of the
 *   feature index: nothing to store, the same in every process.
 * - Online clustering against centroids: a record joins the nearest cluster whose centre (the sum of its members'
 *   unit-length centred projections: the projection of their mean direction) is within `minCosine`; otherwise it
 *   starts a new one. The signatures' Hamming distance only shortlists clusters (within three standard errors of
 *   the limit); the cosine of the float projections decides, which is several times less noisy than the sign
 *   estimate at 128 bits. Against a centroid a paraphrase keeps its shared part (each variant shares 2/3 of its
 *   words with the original, the mean keeps the original), so variants stay closer to the centroid (cosine ≈
 *   0.7–0.9) than to each other (≈ 0.4–0.7), and honest mail rarely comes that close to anything but a template.
 * - A cluster remembers its members' (time, source, label) within `windowMs`; a record is quarantined when its
 *   cluster holds at least `minSources` distinct sources in the window (this record included). score = distinct
 *   sources, threshold = `minSources`. One source repeating itself is the rate caps' business. `labels` limits
 *   quarantine to those labels (a crowd reporting one spam run as spam is the system working; the same mail
 *   pushed as ham from many accounts is the attack): every record is still clustered.
 *
 * Defaults, measured in test/filters/near-duplicate.test.ts (minCosine by kind, minSources 15): a 200-copy
 * paraphrased campaign (every third word, or a random third, swapped for ordinary words) is held from its 15th copy
 * (93% / 85% of copies; MinHash holds none); clean SpamAssassin mail from 300 users 0.9–1.4% (all newsletters and
 * daily digests many users receive: true near-duplicates); near-identical MNIST digits from 100 accounts 86%;
 * streams of ordinary 1s (the most alike digit) 0.2%. minCosine 0.6 or minSources 5 held 5–16% of clean mail. *
 * State, bounded by settings (see `stateBytes`): the centre (`bits` floats); at most `maxSingles` one-member
 * clusters and `maxGroups` clusters of two or more, each least recently used first (a campaign's cluster is a
 * group once two of its records met, so a stream of unrelated records pushes out singles, not the campaign);
 * each cluster `bits` floats and at most `maxMembers` members. Cost per record: the projection, linear in the
 * capped non-zeros (`maxFeatures`; about `bits`/2 additions per non-zero), and one Hamming distance (`bits`/32
 * words, read from one flat array) per cluster.
 */
import { TayguardError } from '../core/errors';
import type { RawMessage, TrainingRecord } from '../core/record';
import { fnv1a } from '../middleware/featurize';
import type { FeatureView } from './feature-view';
import { fmix32 } from './hash';
import { corrupt, decodeF32, encodeArray, type EventClock, type SourceRegistry } from './trust';
import { ACCEPT, type Detector, type Verdict } from './types';

export interface NearDuplicateSettings {
  /** Signature length (hyperplanes): a multiple of 32. The angle estimate's standard error is about π·√(h(1−h)/bits). */
  readonly bits: number;
  /** Join a cluster at this estimated cosine to its centre or above; undefined = by model kind (text 0.7, dense 0.9). */
  readonly minCosine?: number;
  readonly windowMs: number;
  readonly minSources: number;
  /** Rows with fewer non-zeros are not clustered ("thanks!" is not a campaign); dense rows always have enough. */
  readonly minFeatures: number;
  /** Non-zeros of a row read at most (cost bound). */
  readonly maxFeatures: number;
  /** Records that only feed the centre before any clustering (at a cold start the centre is meaningless). */
  readonly warmupRecords: number;
  /** Memory of the running centre (records). */
  readonly centreHorizon: number;
  readonly maxSingles: number;
  readonly maxGroups: number;
  readonly maxMembers: number;
  readonly labels?: readonly number[];
}

/** Defaults of `minCosine` by model kind, measured in test/filters/near-duplicate.test.ts (see the README table). */
export const NEAR_DUPLICATE_COSINE = { text: 0.7, dense: 0.9 } as const;

interface Member {
  readonly t: number;
  readonly src: number;
  readonly label: number;
}

interface Cluster {
  readonly id: number;
  readonly sum: Float32Array;
  /** ‖sum‖, kept with it. */
  norm: number;
  /** Its signature's place in the slab (`sig` is a view of it), so a scan reads one flat array. */
  readonly slot: number;
  readonly sig: Uint32Array;
  members: Member[];
  last: number;
}

export interface NearDuplicateState {
  readonly bits: number;
  readonly seen: number;
  readonly nextId: number;
  readonly centre: string;
  /** [id, last, sum (base64 float32), members as [t, source hash, label][]], singles then groups, least recent first. */
  readonly singles: readonly (readonly [number, number, string, readonly (readonly [number, number, number])[]])[];
  readonly groups: readonly (readonly [number, number, string, readonly (readonly [number, number, number])[]])[];
}

/** Bits set in a 32-bit word (Hacker's Delight 5-1). */
function popcount(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}

export class NearDuplicateDetector implements Detector {
  readonly name = 'near-duplicate';
  readonly scope = 'cross-record' as const;
  private readonly words: number;
  /** Hamming distance below which a cluster's float cosine is computed (the sign estimate's 3σ margin). */
  private readonly prefilter: number;
  /** Hyperplane signs per (feature, word), precomputed when the table is small (dense models). */
  private readonly table: Uint32Array | undefined;
  private readonly centre: Float64Array;
  private readonly proj: Float64Array;
  private readonly unit: Float32Array;
  private readonly sig: Uint32Array;
  private singles = new Map<number, Cluster>();
  private groups = new Map<number, Cluster>();
  /** All clusters' signatures, `words` per slot; `bySlot` says which cluster (if any) holds each slot. */
  private readonly slab: Uint32Array;
  private readonly bySlot: (Cluster | undefined)[];
  private readonly freeSlots: number[];
  private seen = 0;
  private nextId = 0;
  readonly minCosine: number;

  constructor(
    readonly settings: NearDuplicateSettings,
    private readonly deps: { readonly clock: EventClock; readonly registry: SourceRegistry; readonly features: FeatureView; readonly kind: 'text' | 'dense'; readonly dim: number },
  ) {
    if (settings.bits % 32 !== 0 || settings.bits <= 0) throw new TayguardError('CONFIG_INVALID', `detectors.nearDuplicate.bits must be a positive multiple of 32 (got ${settings.bits})`);
    this.words = settings.bits / 32;
    this.minCosine = settings.minCosine ?? NEAR_DUPLICATE_COSINE[deps.kind];
    const h = Math.acos(Math.max(-1, Math.min(1, this.minCosine))) / Math.PI;
    this.prefilter = Math.ceil(settings.bits * (h + 3 * Math.sqrt((h * (1 - h)) / settings.bits)));
    this.centre = new Float64Array(settings.bits);
    this.proj = new Float64Array(settings.bits);
    this.unit = new Float32Array(settings.bits);
    this.sig = new Uint32Array(this.words);
    const capacity = settings.maxSingles + settings.maxGroups + 2; // + a single being promoted, + one being added
    this.slab = new Uint32Array(capacity * this.words);
    this.bySlot = new Array<Cluster | undefined>(capacity).fill(undefined);
    this.freeSlots = Array.from({ length: capacity }, (_, i) => capacity - 1 - i);
    if (deps.dim * this.words <= 1 << 20) {
      this.table = new Uint32Array(deps.dim * this.words);
      for (let j = 0; j < deps.dim; j++) for (let w = 0; w < this.words; w++) this.table[j * this.words + w] = this.plane(j, w);
    }
  }

  /** 32 hyperplane signs (bit set = +1) for feature j, word w: a fixed hash, so every process agrees. */
  private plane(j: number, w: number): number {
    return fmix32(Math.imul(j + 1, 0x9e3779b1) ^ fmix32(w + 0x51ed270b));
  }

  /** Approximate bytes held (typed arrays and members), for the state budget. */
  get stateBytes(): number {
    const s = this.settings;
    const perCluster = s.bits * 4 + this.words * 4 + s.maxMembers * 24 + 64;
    return s.bits * 8 * 2 + (this.table?.byteLength ?? 0) + (this.singles.size + this.groups.size) * perCluster;
  }

  /** Clusters held (singles + groups), for tests and metrics. */
  get size(): number {
    return this.singles.size + this.groups.size;
  }

  screen(record: TrainingRecord, _raw?: RawMessage): Verdict {
    const s = this.settings;
    const t = this.deps.clock.timeOf(record);
    this.deps.registry.observe(record, t);
    this.expire(t);
    const row = this.deps.features(record);
    if (row.n === 0) return ACCEPT;
    // Project the row onto the hyperplanes (cost: bits per non-zero, over at most maxFeatures non-zeros).
    const p = this.proj;
    p.fill(0);
    const n = Math.min(row.n, s.maxFeatures);
    // p_b = Σ_i v_i·(±1) = 2·Σ_{i: sign +} v_i − Σ_i v_i: visit only the set bits of each sign word.
    let total = 0;
    for (let i = 0; i < n; i++) {
      const j = row.indices[i];
      const v = row.values[i];
      total += v;
      for (let w = 0; w < this.words; w++) {
        let signs = this.table ? this.table[j * this.words + w] : this.plane(j, w);
        const base = w * 32;
        while (signs !== 0) {
          p[base + 31 - Math.clz32(signs & -signs)] += 2 * v;
          signs &= signs - 1;
        }
      }
    }
    for (let b = 0; b < s.bits; b++) p[b] -= total;
    // Centre (running mean of projections = projection of the running mean: the map is linear).
    this.seen += 1;
    const eta = 1 / Math.min(this.seen, s.centreHorizon);
    let sq = 0;
    for (let b = 0; b < s.bits; b++) {
      const c = p[b] - this.centre[b];
      this.centre[b] += eta * c;
      p[b] = c;
      sq += c * c;
    }
    if (this.seen <= s.warmupRecords || n < s.minFeatures || sq === 0) return ACCEPT;
    const inv = 1 / Math.sqrt(sq);
    this.sig.fill(0);
    for (let b = 0; b < s.bits; b++) {
      this.unit[b] = p[b] * inv;
      if (p[b] > 0) this.sig[b >>> 5] |= 1 << (b & 31);
    }

    // Candidates by Hamming distance (a loose prefilter: the sign estimate is noisy), then the nearest by the
    // cosine of the float projections, which estimates the angle far more tightly.
    let best: Cluster | undefined;
    let bestCos = this.minCosine;
    const limit = this.prefilter;
    const words = this.words;
    const slab = this.slab;
    for (let slot = 0; slot < this.bySlot.length; slot++) {
      const c = this.bySlot[slot];
      if (!c) continue;
      let d = 0;
      for (let w = 0, at = slot * words; w < words && d <= limit; w++, at++) d += popcount(this.sig[w] ^ slab[at]);
      if (d > limit) continue;
      let dot = 0;
      for (let b = 0; b < s.bits; b++) dot += this.unit[b] * c.sum[b];
      const cos = c.norm > 0 ? dot / c.norm : 0;
      if (cos >= bestCos) {
        bestCos = cos;
        best = c;
      }
    }
    const src = fnv1a(record.source);
    const member: Member = { t, src, label: record.label };
    if (!best) {
      this.addSingle(t, member);
      return ACCEPT;
    }
    this.join(best, member);
    const sources = new Set<number>();
    for (const m of best.members) if (m.t > t - s.windowMs) sources.add(m.src);
    if (sources.size < s.minSources || (s.labels && !s.labels.includes(record.label))) return ACCEPT;
    const cos = bestCos;
    return {
      kind: 'quarantine',
      reasons: [
        {
          stage: this.name,
          code: 'near_duplicate_features',
          message: `near-duplicate in the model's feature space (cosine ≈ ${cos.toFixed(2)} to the centre of a cluster, ≥ ${this.minCosine}) arrived from ${sources.size} distinct sources within ${Math.round(s.windowMs / 60_000)} min; the limit is ${s.minSources - 1}`,
          score: sources.size,
          threshold: s.minSources,
        },
      ],
    };
  }

  /** A cluster in a free slot of the slab. */
  private place(id: number, sum: Float32Array, sig: Uint32Array, members: Member[], last: number): Cluster {
    const slot = this.freeSlots.pop() as number;
    const view = this.slab.subarray(slot * this.words, (slot + 1) * this.words);
    view.set(sig);
    let sq = 0;
    for (let b = 0; b < sum.length; b++) sq += sum[b] * sum[b];
    const c: Cluster = { id, sum, norm: Math.sqrt(sq), slot, sig: view, members, last };
    this.bySlot[slot] = c;
    return c;
  }

  /** Forget the least recently used cluster of a pool (or a given one), freeing its slot. */
  private drop(pool: Map<number, Cluster>, id = pool.keys().next().value as number): void {
    const c = pool.get(id);
    if (!c) return;
    pool.delete(id);
    this.bySlot[c.slot] = undefined;
    this.freeSlots.push(c.slot);
  }

  private addSingle(t: number, member: Member): void {
    const c = this.place(this.nextId++, Float32Array.from(this.unit), this.sig, [member], t);
    this.singles.set(c.id, c);
    while (this.singles.size > this.settings.maxSingles) this.drop(this.singles);
  }

  /** Add a member: the centre moves to the new mean direction; a single becomes a group; least recent first. */
  private join(c: Cluster, member: Member): void {
    const s = this.settings;
    c.sig.fill(0);
    let sq = 0;
    for (let b = 0; b < s.bits; b++) {
      c.sum[b] += this.unit[b];
      sq += c.sum[b] * c.sum[b];
      if (c.sum[b] > 0) c.sig[b >>> 5] |= 1 << (b & 31);
    }
    c.norm = Math.sqrt(sq);
    c.members.push(member);
    if (c.members.length > s.maxMembers) c.members.splice(0, c.members.length - s.maxMembers);
    c.last = member.t;
    // Move to the most recent end of the groups (a single becomes a group); the slot stays.
    this.singles.delete(c.id);
    this.groups.delete(c.id);
    this.groups.set(c.id, c);
    while (this.groups.size > s.maxGroups) this.drop(this.groups);
  }

  /** Forget clusters with no member in the window (least recently used first, so stop at the first recent one). */
  private expire(t: number): void {
    const horizon = t - this.settings.windowMs;
    for (const pool of [this.singles, this.groups]) {
      for (const [id, c] of pool) {
        if (c.last > horizon) break;
        this.drop(pool, id);
      }
    }
  }

  toJSON(): NearDuplicateState {
    const dump = (pool: Map<number, Cluster>) =>
      [...pool.values()].map((c) => [c.id, c.last, encodeArray(c.sum), c.members.map((m) => [m.t, m.src, m.label] as const)] as const);
    return { bits: this.settings.bits, seen: this.seen, nextId: this.nextId, centre: encodeArray(Float32Array.from(this.centre)), singles: dump(this.singles), groups: dump(this.groups) };
  }

  restore(state: NearDuplicateState): void {
    const s = this.settings;
    if (!state || typeof state.seen !== 'number' || !Array.isArray(state.singles) || !Array.isArray(state.groups) || typeof state.centre !== 'string') {
      throw corrupt(this.name, 'expected { bits, seen, nextId, centre, singles, groups }');
    }
    if (state.bits !== s.bits) throw corrupt(this.name, `signatures have ${state.bits} bits; the settings say ${s.bits} (was bits changed?)`);
    const centre = decodeF32(state.centre);
    if (centre.length !== s.bits) throw corrupt(this.name, `centre has ${centre.length} values; bits is ${s.bits}`);
    this.centre.set(centre);
    this.seen = state.seen;
    this.nextId = state.nextId;
    for (const pool of [this.singles, this.groups]) for (const id of [...pool.keys()]) this.drop(pool, id);
    const load = (rows: NearDuplicateState['singles'], pool: Map<number, Cluster>, max: number) => {
      for (const row of rows.slice(-max)) {
        if (!Array.isArray(row) || row.length !== 4 || !Array.isArray(row[3])) throw corrupt(this.name, 'bad cluster entry');
        const [id, last, sum64, members] = row;
        const sum = decodeF32(sum64);
        if (sum.length !== s.bits) throw corrupt(this.name, `cluster centre has ${sum.length} values; bits is ${s.bits}`);
        const sig = new Uint32Array(this.words);
        for (let b = 0; b < s.bits; b++) if (sum[b] > 0) sig[b >>> 5] |= 1 << (b & 31);
        pool.set(id, this.place(id, sum, sig, members.slice(-s.maxMembers).map(([t, src, label]) => ({ t, src, label })), last));
      }
    };
    load(state.singles, this.singles, s.maxSingles);
    load(state.groups, this.groups, s.maxGroups);
  }
}
