/**
 * Coordinated campaigns, two signals over a sliding window:
 *
 * - `near_duplicate_campaign`: the same text with small edits from at least `minSources` distinct sources.
 *   Texts become sets of word shingles (`shingle` consecutive tokens); MinHash (Broder 1997) signatures of
 *   `bands × rows` values estimate Jaccard similarity; LSH banding finds candidates in O(bands) lookups (pairs
 *   with Jaccard s collide in some band with probability 1 − (1 − s^rows)^bands), and candidates are confirmed by
 *   the signature agreement ≥ `minSimilarity`. Later arrivals are quarantined once the cluster spans
 *   `minSources` sources; score = distinct sources (this one included). One source repeating itself is the rate
 *   caps' business, not this stage's. Texts under `minTokens` words are not compared ("thanks!" is not a campaign).
 * - `new_source_label_burst`: many sources first seen recently (trust.ts "new") all pushing one label. Each new
 *   source in the window casts one vote, its first label; a record from a new source is quarantined when at least
 *   `burst.minNewSources` new sources are in the window, its label holds at least `burst.minShare` of their
 *   votes, and that share is `burst.minZ` standard errors above the label's long-run share of all traffic
 *   (exponentially decayed counts, half-life `burst.baselineHalfLife` records): a one-sided binomial z-score,
 *   which is the score. Cold start (every source new) is fine: the baseline is all traffic, so ordinary new
 *   users match it.
 *
 * Every record (accepted or not) is indexed, so a campaign stays visible after it is first caught. Memory is
 * bounded by time (window), count (`maxEntries`, `maxBucket`) and checkpoint bytes (`maxStateBytes`, oldest first:
 * entries and votes are per record and leave with the window anyway). Each record is read up to `maxTokens` words
 * (and 12 characters a word before tokenising), so its cost is linear in a capped input.
 */
import { tokenize, fnv1a } from '../middleware/featurize';
import type { RawMessage, TrainingRecord } from '../core/record';
import { corrupt, decodeU32, encodeArray, type EventClock, type SourceRegistry } from './trust';
import { ACCEPT, type Detector, type Verdict } from './types';
import { fmix32 } from './hash';
import { jsonBytes } from './evidence';

export interface CampaignSettings {
  readonly windowMs: number;
  readonly shingle: number;
  readonly bands: number;
  readonly rows: number;
  readonly minSimilarity: number;
  readonly minSources: number;
  readonly minTokens: number;
  readonly maxTokens: number;
  readonly maxEntries: number;
  readonly maxBucket: number;
  readonly maxCandidates: number;
  /** Checkpoint bytes the index and the votes may take (an upper-bound estimate, see evidence.ts). */
  readonly maxStateBytes: number;
  /**
   * Quarantine near-duplicates only when they carry one of these labels; undefined = any label. Every record is
   * still indexed. For a spam filter, many users reporting the same spam as spam is the system working, while the
   * same mail pushed as ham from many accounts is the attack: `[0]` keeps the first and screens the second.
   */
  readonly labels?: readonly number[];
  readonly burst: {
    readonly enabled: boolean;
    readonly minNewSources: number;
    readonly minShare: number;
    readonly minZ: number;
    readonly baselineHalfLife: number;
    readonly minBaseline: number;
  };
}


interface Entry {
  readonly seq: number;
  readonly t: number;
  readonly source: string;
  readonly sig: Uint32Array;
  readonly keys: number[];
  readonly bytes: number;
}

interface NewVote {
  readonly t: number;
  readonly source: string;
  readonly bytes: number;
}

/** JSON bound of a non-negative safe integer and its separator. */
const INT_BYTES = 17;

export interface CampaignState {
  readonly seq: number;
  readonly entries: readonly (readonly [number, number, string, string])[];
  readonly votes: readonly (readonly [number, string])[];
  readonly voteLabels: readonly (readonly [string, number, number])[];
  readonly baseline: readonly (readonly [number, number])[];
}


export class CampaignDetector implements Detector {
  readonly name = 'campaign';
  readonly scope = 'cross-record' as const;
  private readonly seeds: Uint32Array;
  private readonly index: Map<number, number[]>[];
  private readonly entries = new Map<number, Entry>();
  private seq = 0;
  /** Records from new sources in the window, oldest first (each source votes once: its first label). */
  private votes: NewVote[] = [];
  private voteHead = 0;
  /** source → [label voted, records in window]. */
  private readonly voteOf = new Map<string, [number, number]>();
  /** label → new sources voting for it. */
  private readonly votesFor = new Map<number, number>();
  /** label → decayed record count (all traffic). */
  private readonly baseline = new Map<number, number>();
  private readonly decay: number;
  private entryBytes = 0;
  private voteBytes = 0;
  private readonly sigBytes: number;

  constructor(
    readonly settings: CampaignSettings,
    private readonly deps: { readonly clock: EventClock; readonly registry: SourceRegistry },
  ) {
    const n = settings.bands * settings.rows;
    this.seeds = new Uint32Array(n);
    let x = 0x9e3779b9;
    for (let i = 0; i < n; i++) {
      x = fmix32(x + 0x6d2b79f5 + i);
      this.seeds[i] = x;
    }
    this.index = Array.from({ length: settings.bands }, () => new Map<number, number[]>());
    this.decay = Math.pow(0.5, 1 / settings.burst.baselineHalfLife);
    this.sigBytes = 4 * Math.ceil((4 * n) / 3) + 3;
  }

  /** Upper bound on the JSON bytes of `toJSON()`: entries, the vote log, the voters, the baseline. */
  get stateBytes(): number {
    // A voter row ([source, label, count]) is a vote row ([t, source]) plus one number, and there are at most as many.
    return 128 + this.entryBytes + 3 * this.voteBytes + this.baseline.size * 2 * 25;
  }

  /** Oldest first, entries or votes (whichever holds more), until within `maxStateBytes`. */
  private enforceBytes(): void {
    while (this.stateBytes > this.settings.maxStateBytes) {
      const votes = this.votes.length - this.voteHead;
      if (this.entries.size > 0 && (this.entryBytes >= 3 * this.voteBytes || votes === 0)) this.remove(this.entries.values().next().value as Entry);
      else if (votes > 0) this.dropOldestVote();
      else return;
    }
  }

  private dropOldestVote(): void {
    const v = this.votes[this.voteHead++];
    this.voteBytes -= v.bytes;
    const c = this.voteOf.get(v.source);
    if (c && --c[1] <= 0) {
      this.voteOf.delete(v.source);
      this.votesFor.set(c[0], (this.votesFor.get(c[0]) ?? 1) - 1);
    }
  }

  /** MinHash signature of a text's word shingles; undefined when the text is too short to compare. */
  signature(text: string): Uint32Array | undefined {
    const s = this.settings;
    // Only the first maxTokens words are read: cut the text before tokenising it (12 characters a word is far above
    // the average, so no short-worded text loses words), so a 20,000-character record costs what a mail does.
    const tokens = tokenize(text.length > s.maxTokens * 12 ? text.slice(0, s.maxTokens * 12) : text);
    if (tokens.length < s.minTokens) return undefined;
    const n = Math.min(tokens.length, s.maxTokens);
    const th = new Uint32Array(n);
    for (let i = 0; i < n; i++) th[i] = fnv1a(tokens[i]);
    const k = Math.min(s.shingle, n);
    const seen = new Set<number>();
    const sig = new Uint32Array(this.seeds.length).fill(0xffffffff);
    for (let i = 0; i + k <= n; i++) {
      let h = 0x811c9dc5;
      for (let j = 0; j < k; j++) h = Math.imul(h ^ th[i + j], 0x01000193);
      h >>>= 0;
      if (seen.has(h)) continue;
      seen.add(h);
      for (let f = 0; f < sig.length; f++) {
        const v = fmix32(h ^ this.seeds[f]);
        if (v < sig[f]) sig[f] = v;
      }
    }
    return sig;
  }

  private bandKeys(sig: Uint32Array): number[] {
    const { bands, rows } = this.settings;
    const keys = new Array<number>(bands);
    for (let b = 0; b < bands; b++) {
      let h = Math.imul(0x811c9dc5 ^ b, 0x01000193);
      for (let r = 0; r < rows; r++) h = fmix32(h ^ sig[b * rows + r]);
      keys[b] = h;
    }
    return keys;
  }

  screen(record: TrainingRecord, _raw?: RawMessage): Verdict {
    const s = this.settings;
    const t = this.deps.clock.timeOf(record);
    this.deps.registry.observe(record, t);
    this.evict(t);

    const sig = record.text ? this.signature(record.text) : undefined;
    if (sig) {
      const keys = this.bandKeys(sig);
      const sources = new Set<string>([record.source]);
      const checked = new Set<number>();
      let bestSim = 0;
      search: for (let b = 0; b < keys.length; b++) {
        const bucket = this.index[b].get(keys[b]);
        if (!bucket) continue;
        for (let i = bucket.length - 1; i >= 0; i--) {
          const seq = bucket[i];
          if (checked.has(seq)) continue;
          checked.add(seq);
          const e = this.entries.get(seq);
          if (!e || sources.has(e.source)) continue;
          let same = 0;
          for (let f = 0; f < sig.length; f++) if (sig[f] === e.sig[f]) same++;
          const sim = same / sig.length;
          if (sim >= s.minSimilarity) {
            sources.add(e.source);
            bestSim = Math.max(bestSim, sim);
          }
          if (checked.size >= s.maxCandidates) break search;
        }
      }
      this.insert(t, record.source, sig, keys);
      if (sources.size >= s.minSources && (!s.labels || s.labels.includes(record.label))) {
        this.vote(record, t);
        return {
          kind: 'quarantine',
          reasons: [
            {
              stage: this.name,
              code: 'near_duplicate_campaign',
              message: `near-duplicate text (≥ ${Math.round(100 * s.minSimilarity)}% shingle overlap, best ${Math.round(100 * bestSim)}%) arrived from ${sources.size} distinct sources within ${Math.round(s.windowMs / 60_000)} min; the limit is ${s.minSources - 1}`,
              score: sources.size,
              threshold: s.minSources,
            },
          ],
        };
      }
    }
    return this.vote(record, t);
  }

  private insert(t: number, source: string, sig: Uint32Array, keys: number[]): void {
    const seq = this.seq++;
    const bytes = 2 * INT_BYTES + jsonBytes(source) + this.sigBytes + 4;
    this.entries.set(seq, { seq, t, source, sig, keys, bytes });
    this.entryBytes += bytes;
    for (let b = 0; b < keys.length; b++) {
      let bucket = this.index[b].get(keys[b]);
      if (!bucket) this.index[b].set(keys[b], (bucket = []));
      bucket.push(seq);
      if (bucket.length > this.settings.maxBucket) bucket.shift();
    }
    while (this.entries.size > this.settings.maxEntries) this.remove(this.entries.values().next().value as Entry);
    this.enforceBytes();
  }

  private remove(e: Entry): void {
    this.entries.delete(e.seq);
    this.entryBytes -= e.bytes;
    for (let b = 0; b < e.keys.length; b++) {
      const bucket = this.index[b].get(e.keys[b]);
      if (!bucket) continue;
      const at = bucket[0] === e.seq ? 0 : bucket.indexOf(e.seq);
      if (at >= 0) bucket.splice(at, 1);
      if (bucket.length === 0) this.index[b].delete(e.keys[b]);
    }
  }

  private evict(t: number): void {
    const horizon = t - this.settings.windowMs;
    for (const e of this.entries.values()) {
      if (e.t > horizon) break;
      this.remove(e);
    }
    while (this.voteHead < this.votes.length && this.votes[this.voteHead].t <= horizon) this.dropOldestVote();
    if (this.voteHead > 1024 && this.voteHead * 2 > this.votes.length) {
      this.votes = this.votes.slice(this.voteHead);
      this.voteHead = 0;
    }
  }

  /** Update the label baseline and the new-source votes; quarantine a burst. */
  private vote(record: TrainingRecord, t: number): Verdict {
    const b = this.settings.burst;
    let total = 0;
    for (const [k, v] of this.baseline) {
      const d = v * this.decay;
      this.baseline.set(k, d);
      total += d;
    }
    this.baseline.set(record.label, (this.baseline.get(record.label) ?? 0) + 1);
    total += 1;
    if (!b.enabled || !this.deps.registry.isNew(record.source, t)) return ACCEPT;

    const bytes = INT_BYTES + jsonBytes(record.source) + 4;
    this.votes.push({ t, source: record.source, bytes });
    this.voteBytes += bytes;
    const cur = this.voteOf.get(record.source);
    if (cur) cur[1] += 1;
    else {
      this.voteOf.set(record.source, [record.label, 1]);
      this.votesFor.set(record.label, (this.votesFor.get(record.label) ?? 0) + 1);
    }
    // Bound the vote log like the index.
    while (this.votes.length - this.voteHead > this.settings.maxEntries) this.dropOldestVote();
    this.enforceBytes();

    const label = this.voteOf.get(record.source)?.[0] ?? record.label;
    const n = this.voteOf.size;
    if (n < b.minNewSources || total < b.minBaseline) return ACCEPT;
    const x = this.votesFor.get(label) ?? 0;
    const share = x / n;
    const p = Math.min(0.99, Math.max(0.01, (this.baseline.get(label) ?? 0) / total));
    const z = (x - n * p) / Math.sqrt(n * p * (1 - p));
    if (share < b.minShare || z < b.minZ) return ACCEPT;
    return {
      kind: 'quarantine',
      reasons: [
        {
          stage: this.name,
          code: 'new_source_label_burst',
          message: `${x} of ${n} sources first seen in the last ${Math.round(this.settings.windowMs / 60_000)} min push label ${label} (${(100 * share).toFixed(0)}%; label ${label} is ${(100 * p).toFixed(0)}% of traffic): z = ${z.toFixed(1)}, the limit is ${b.minZ}`,
          score: z,
          threshold: b.minZ,
        },
      ],
    };
  }

  /** Entries currently indexed (for tests and metrics). */
  get size(): number {
    return this.entries.size;
  }

  toJSON(): CampaignState {
    return {
      seq: this.seq,
      entries: [...this.entries.values()].map((e) => [e.seq, e.t, e.source, encodeArray(e.sig)] as const),
      votes: this.votes.slice(this.voteHead).map((v) => [v.t, v.source] as const),
      voteLabels: [...this.voteOf].map(([src, [label, count]]) => [src, label, count] as const),
      baseline: [...this.baseline],
    };
  }

  restore(state: CampaignState): void {
    if (!state || typeof state.seq !== 'number' || !Array.isArray(state.entries) || !Array.isArray(state.votes)) {
      throw corrupt(this.name, 'expected { seq, entries, votes, voteLabels, baseline }');
    }
    const n = this.seeds.length;
    this.entries.clear();
    for (const m of this.index) m.clear();
    this.seq = 0;
    this.entryBytes = 0;
    for (const [seq, t, source, sig64] of state.entries) {
      const sig = decodeU32(sig64);
      if (sig.length !== n) throw corrupt(this.name, `signature has ${sig.length} values; bands × rows is ${n} (were they changed?)`);
      this.seq = seq;
      this.insert(t, source, sig, this.bandKeys(sig));
    }
    this.seq = state.seq;
    this.votes = state.votes.map(([t, source]) => ({ t, source, bytes: INT_BYTES + jsonBytes(source) + 4 }));
    this.voteBytes = this.votes.reduce((n, v) => n + v.bytes, 0);
    this.voteHead = 0;
    this.voteOf.clear();
    this.votesFor.clear();
    for (const [src, label, count] of state.voteLabels) {
      this.voteOf.set(src, [label, count]);
      this.votesFor.set(label, (this.votesFor.get(label) ?? 0) + 1);
    }
    this.baseline.clear();
    for (const [k, v] of state.baseline) this.baseline.set(k, v);
    this.enforceBytes();
  }
}
