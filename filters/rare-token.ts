/**
 * Coordinated rare tokens (`coordinated_rare_token`): the signature of a backdoor trigger (Chen et al. 2017,
 * "Targeted backdoor attacks on deep learning systems using data poisoning"; Gu et al. 2017, BadNets; for text,
 * Dai et al. 2019). A token that had (almost) no history suddenly appears in records from many distinct sources,
 * overwhelmingly with one label. A record is quarantined when it carries a token that is
 *
 *   (a) young: the long-run history knew it at most `maxPriorUses` times when it started being tracked, and that
 *       was at most `youthMs` ago (a burst comes right after a trigger's first use; a new legitimate word spreads
 *       at its own pace and graduates into the history first). A flagged token stays young while in use;
 *   (b) spread: used by at least `minSources` distinct sources within `windowMs` (this record included);
 *   (c) one-sided: at least `minShare` of its uses in the window carry this record's label.
 *
 * score = distinct sources, threshold = `minSources`.
 *
 * State, all bounded:
 * - `history`: a count-min sketch (Cormode & Muthukrishnan 2005) of how many records used each token, `depth`
 *   rows of `width` saturating 8-bit counters, conservative update, halved every `agingRecords` records
 *   (TinyLFU's aging, Einziger et al. 2017) so old traffic fades and the sketch never fills up. A sketch only
 *   over-estimates: a collision can make a young token look old (a miss), never the reverse.
 * - `tracked`: young tokens, at most `maxTracked` and `maxStateBytes` of checkpoint; each keeps its uses in the
 *   window (time, source, label; at most `maxUsesPerToken`). Over a bound, the token with the fewest distinct
 *   sources goes first (filters/evidence.ts; a flagged trigger last), not the least recently used: a flood of
 *   fresh one-use tokens then pushes out its own kind, not a trigger spreading over many sources. A tracked token is not counted in the history while
 *   tracked; when it leaves (no use for `windowMs`, youth over, or pushed out by newer tokens) its uses graduate
 *   into the history — unless it was flagged: a flagged trigger never becomes "old", so an attacker can neither
 *   keep a campaign going past the youth nor pause and burst again.
 * - The first `warmupRecords` records only fill the history (at a cold start every word is new).
 *
 * Tokens come from `tokenize` (lowercased, so casing tricks are already folded); the history and the tracked map
 * are keyed by a 53-bit hash, so the checkpoint never holds the rare words themselves (rare tokens are exactly
 * the identifying ones: names, numbers). Cheap evasions handled: repeating the trigger (tokens count once per
 * record) and spreading it over established sources (sources are counted, not their trust). Not handled: a
 * trigger used more than `maxPriorUses` times well before the burst (pre-seeded), one spread thinner than
 * `minSources` per window, or many different triggers each below `minSources`.
 */
import { fnv1a, tokenize } from '../middleware/featurize';
import type { RawMessage, TrainingRecord } from '../core/record';
import { corrupt, type EventClock, type SourceRegistry } from './trust';
import { ACCEPT, type Detector, type Verdict } from './types';
import { fmix32 } from './hash';
import { EvidenceIndex, jsonBytes } from './evidence';

export interface RareTokenSettings {
  readonly windowMs: number;
  readonly youthMs: number;
  readonly minSources: number;
  readonly minShare: number;
  readonly maxPriorUses: number;
  readonly warmupRecords: number;
  readonly minTokenLength: number;
  readonly maxChars: number;
  readonly maxTokensPerRecord: number;
  readonly width: number;
  readonly depth: number;
  readonly agingRecords: number;
  readonly maxTracked: number;
  readonly maxUsesPerToken: number;
  /** Checkpoint bytes the tracked tokens and the sketch may take (an upper-bound estimate, see evidence.ts). */
  readonly maxStateBytes: number;
}


interface Use {
  readonly t: number;
  readonly source: string;
  readonly label: number;
  /** JSON bytes of [t, source, label] (upper bound). */
  readonly bytes: number;
}

interface Tracked {
  /** When tracking began (first use while young). */
  readonly since: number;
  /** History estimate when tracking began. */
  readonly prior: number;
  flagged: boolean;
  /** Uses since `since` (what graduates into the history). */
  total: number;
  last: number;
  /** Uses in the window, oldest first, from `head`. */
  uses: Use[];
  head: number;
  /** Distinct sources and labels of the uses in the window; built at the second use (most young tokens have one). */
  counts: { readonly bySource: Map<string, number>; readonly byLabel: Map<number, number> } | undefined;
  /** JSON bytes of its row (upper bound). */
  bytes: number;
}

/** JSON bound of a non-negative safe integer and its separator; a tracked row's fixed part (6 numbers, brackets). */
const INT_BYTES = 17;
const ROW_BYTES = 6 * INT_BYTES + 8;
const useBytes = (sourceBytes: number) => 2 * INT_BYTES + sourceBytes + 2;

export interface RareTokenState {
  readonly records: number;
  readonly width: number;
  readonly depth: number;
  /** base64 of the counters. */
  readonly history: string;
  /** [key, since, prior, flagged, total, last, uses as [t, source, label][]], least recently used first. */
  readonly tracked: readonly (readonly [number, number, number, 0 | 1, number, number, readonly (readonly [number, string, number])[]])[];
}


/** Probe step of the double hashing (odd, so the rows' counters differ). */
const step = (h1: number) => fmix32(h1 ^ 0x9e3779b9) | 1;

/** A second string hash, independent of FNV-1a (multiplier 31 with a different seed, mixed). */
function hash2(s: string): number {
  let h = 0x1b873593;
  for (let i = 0; i < s.length; i++) h = Math.imul(h, 31) + s.charCodeAt(i);
  return fmix32(h);
}

/** One record's tokens (of at least the minimum length): FNV-1a hashes, and either ranges into `lower` or the words. */
export interface Tokens {
  lower: string;
  words: string[] | undefined;
  readonly starts: number[];
  readonly ends: number[];
  readonly hashes: number[];
}

const NON_ASCII = /[^\x00-\x7f]/;
const isAlnum = (c: number) => (c >= 97 && c <= 122) || (c >= 48 && c <= 57);

/**
 * Exactly `tokenize(text)` (tokens shorter than `minLength` dropped, at most `max`), hashed with `fnv1a`. ASCII
 * text — nearly all mail — takes a scanner over the lowercased string that hashes as it goes and never builds a
 * string for a token (the regex costs ~35 µs a mail); anything else goes through `tokenize` itself. In ASCII,
 * \p{L} is [a-z] after lowercasing and \p{N} is [0-9], so the two agree (the tests check on the whole corpus).
 */
export function scan(text: string, minLength: number, max: number, out: Tokens): number {
  let n = 0;
  if (NON_ASCII.test(text)) {
    out.words = [];
    for (const w of tokenize(text)) {
      if (w.length < minLength) continue;
      out.words[n] = w;
      out.hashes[n] = fnv1a(w);
      if (++n >= max) break;
    }
    return n;
  }
  out.words = undefined;
  const s = (out.lower = text.toLowerCase());
  const len = s.length;
  let i = 0;
  while (i < len && n < max) {
    let c = s.charCodeAt(i);
    if (!isAlnum(c)) {
      i++;
      continue;
    }
    const start = i;
    let h = 0x811c9dc5;
    do {
      h = Math.imul(h ^ c, 0x01000193);
      c = ++i < len ? s.charCodeAt(i) : -1;
    } while (isAlnum(c));
    // (?:'[\p{L}]+)? — an apostrophe followed by at least one letter
    if (c === 39 && i + 1 < len) {
      let d = s.charCodeAt(i + 1);
      if (d >= 97 && d <= 122) {
        h = Math.imul(h ^ 39, 0x01000193);
        i++;
        do {
          h = Math.imul(h ^ d, 0x01000193);
          d = ++i < len ? s.charCodeAt(i) : -1;
        } while (d >= 97 && d <= 122);
      }
    }
    if (i - start < minLength) continue;
    out.starts[n] = start;
    out.ends[n] = i;
    out.hashes[n] = h >>> 0;
    n++;
  }
  return n;
}

function count(c: NonNullable<Tracked['counts']>, u: Use, d: 1 | -1): void {
  const n = (c.bySource.get(u.source) ?? 0) + d;
  if (n > 0) c.bySource.set(u.source, n);
  else c.bySource.delete(u.source);
  c.byLabel.set(u.label, (c.byLabel.get(u.label) ?? 0) + d);
}

/** Evidence behind a tracked token: distinct sources in its window; a flagged trigger is kept longest. */
const evidence = (e: Tracked) => (e.flagged ? Infinity : e.counts ? e.counts.bySource.size : 1);

const label = (x: string) => JSON.stringify(x.length > 40 ? `${x.slice(0, 40)}…` : x);

export class RareTokenDetector implements Detector {
  readonly name = 'rare-token';
  readonly scope = 'cross-record' as const;
  private readonly history: Uint8Array;
  private readonly mask: number;
  private readonly tracked = new Map<number, Tracked>();
  private readonly order = new EvidenceIndex<number>();
  private trackedBytes = 0;
  private records = 0;
  private readonly toks: Tokens = { lower: '', words: undefined, starts: [], ends: [], hashes: [] };

  constructor(
    readonly settings: RareTokenSettings,
    private readonly deps: { readonly clock: EventClock; readonly registry: SourceRegistry },
  ) {
    if (settings.width <= 0 || (settings.width & (settings.width - 1)) !== 0) throw new RangeError('rare-token width must be a power of two');
    this.history = new Uint8Array(settings.width * settings.depth);
    this.mask = settings.width - 1;
  }

  screen(record: TrainingRecord, _raw?: RawMessage): Verdict {
    const s = this.settings;
    const t = this.deps.clock.timeOf(record);
    this.deps.registry.observe(record, t);
    this.evict(t);
    if (!record.text) return ACCEPT;
    if (++this.records % s.agingRecords === 0) for (let i = 0; i < this.history.length; i++) this.history[i] >>= 1;

    const text = record.text.length > s.maxChars ? record.text.slice(0, s.maxChars) : record.text;
    const toks = this.toks;
    const n = scan(text, s.minTokenLength, s.maxTokensPerRecord * 4, toks);
    const seen = new Set<number>();
    const horizon = t - s.windowMs;
    const ub = useBytes(jsonBytes(record.source));
    const warm = this.records <= s.warmupRecords; // cold start: every token is new, so only learn the vocabulary
    let hit: { token: string; key: number; e: Tracked; sources: number; share: number; uses: number } | undefined;
    for (let i = 0; i < n && seen.size < s.maxTokensPerRecord; i++) {
      const h1 = toks.hashes[i];
      const h2 = step(h1);
      const est = this.estimate(h1, h2);
      if (est > s.maxPriorUses || warm) {
        // Common (or a sketch collision: the safe direction). Repeats within a record only saturate sooner.
        if (est < 255) this.add(h1, h2, 1);
        continue;
      }
      const tok = toks.words ? toks.words[i] : toks.lower.slice(toks.starts[i], toks.ends[i]);
      const key = h1 * 0x200000 + (hash2(tok) >>> 11); // 53 bits from two independent hashes
      if (seen.has(key)) continue;
      seen.add(key);
      let e = this.tracked.get(key);
      if (e && !e.flagged && t - e.since > s.youthMs) {
        this.retire(key, e, h1, h2);
        if (this.estimate(h1, h2) > s.maxPriorUses) continue; // graduated: no longer young
        e = undefined;
      }
      if (!e) {
        e = { since: t, prior: est, flagged: false, total: 0, last: t, uses: [], head: 0, counts: undefined, bytes: ROW_BYTES };
        this.trackedBytes += ROW_BYTES;
      } else this.tracked.delete(key); // re-inserted below: least recently used first (the window's expiry order)
      this.tracked.set(key, e);
      this.use(e, { t, source: record.source, label: record.label, bytes: ub }, horizon);
      this.order.set(key, evidence(e));
      const sources = e.counts ? e.counts.bySource.size : 1;
      if (sources < s.minSources || !e.counts) continue;
      const uses = e.uses.length - e.head;
      const share = (e.counts.byLabel.get(record.label) ?? 0) / uses;
      if (share >= s.minShare && (!hit || sources > hit.sources)) hit = { token: tok, key, e, sources, share, uses };
    }
    if (hit) {
      hit.e.flagged = true;
      this.order.set(hit.key, Infinity);
    }
    this.enforce();
    if (!hit) return ACCEPT;
    const ageMin = Math.round((t - hit.e.since) / 60_000);
    return {
      kind: 'quarantine',
      reasons: [
        {
          stage: this.name,
          code: 'coordinated_rare_token',
          message: `token ${label(hit.token)} (first seen ${ageMin} min ago, ${hit.e.prior} earlier uses) was used by ${hit.sources} distinct sources in ${Math.round(s.windowMs / 60_000)} min, ${(100 * hit.share).toFixed(0)}% of its ${hit.uses} uses with label ${record.label}; the limit is ${s.minSources - 1} sources at ≥ ${Math.round(100 * s.minShare)}% one label`,
          score: hit.sources,
          threshold: s.minSources,
        },
      ],
    };
  }

  /** Young tokens tracked (for tests and metrics). */
  get size(): number {
    return this.tracked.size;
  }

  /** Upper bound on the JSON bytes of `toJSON()`: the sketch in base64 and the tracked rows. */
  get stateBytes(): number {
    return 128 + 4 * Math.ceil(this.history.length / 3) + this.trackedBytes;
  }

  /** Within `maxTracked` and `maxStateBytes`: retire the least-evidenced token first (fewest sources; flagged last). */
  private enforce(): void {
    const s = this.settings;
    while (this.tracked.size > s.maxTracked || (this.tracked.size > 0 && this.stateBytes > s.maxStateBytes)) {
      const key = this.order.victim() as number;
      this.retireKey(key, this.tracked.get(key) as Tracked);
    }
  }

  private use(e: Tracked, u: Use, horizon: number): void {
    e.uses.push(u);
    e.bytes += u.bytes;
    this.trackedBytes += u.bytes;
    e.total += 1;
    e.last = u.t;
    const c = e.counts;
    if (c) count(c, u, 1);
    while (e.head < e.uses.length && (e.uses[e.head].t <= horizon || e.uses.length - e.head > this.settings.maxUsesPerToken)) {
      const old = e.uses[e.head++];
      e.bytes -= old.bytes;
      this.trackedBytes -= old.bytes;
      if (c) count(c, old, -1);
    }
    if (e.head > 64 && e.head * 2 > e.uses.length) {
      e.uses = e.uses.slice(e.head);
      e.head = 0;
    }
    if (!c && e.uses.length - e.head >= 2) {
      e.counts = { bySource: new Map(), byLabel: new Map() };
      for (let i = e.head; i < e.uses.length; i++) count(e.counts, e.uses[i], 1);
    }
  }

  /** Drop tokens unused for a whole window (least recently used first, so stop at the first recent one). */
  private evict(t: number): void {
    const horizon = t - this.settings.windowMs;
    for (const [key, e] of this.tracked) {
      if (e.last > horizon) break;
      this.retireKey(key, e);
    }
  }

  private retireKey(key: number, e: Tracked): void {
    // The key's top 32 bits are h1; the sketch's probe step derives from h1 alone.
    const h1 = Math.floor(key / 0x200000);
    this.retire(key, e, h1, step(h1));
  }

  /** Stop tracking; an unflagged token's uses graduate into the history. */
  private retire(key: number, e: Tracked, h1: number, h2: number): void {
    this.tracked.delete(key);
    this.order.delete(key);
    this.trackedBytes -= e.bytes;
    if (!e.flagged) this.add(h1, h2, e.total);
  }

  private estimate(h1: number, h2: number): number {
    const { width, depth } = this.settings;
    let min = 255;
    for (let d = 0, h = h1; d < depth; d++, h = (h + h2) >>> 0) {
      const v = this.history[d * width + (h & this.mask)];
      if (v < min) min = v;
    }
    return min;
  }

  /** Conservative update: raise only the counters below the new estimate. */
  private add(h1: number, h2: number, c: number): void {
    if (c <= 0) return;
    const { width, depth } = this.settings;
    const target = Math.min(255, this.estimate(h1, h2) + c);
    for (let d = 0, h = h1; d < depth; d++, h = (h + h2) >>> 0) {
      const i = d * width + (h & this.mask);
      if (this.history[i] < target) this.history[i] = target;
    }
  }

  toJSON(): RareTokenState {
    return {
      records: this.records,
      width: this.settings.width,
      depth: this.settings.depth,
      history: Buffer.from(this.history.buffer, this.history.byteOffset, this.history.byteLength).toString('base64'),
      tracked: [...this.tracked].map(
        ([key, e]) => [key, e.since, e.prior, e.flagged ? 1 : 0, e.total, e.last, e.uses.slice(e.head).map((u) => [u.t, u.source, u.label] as const)] as const,
      ),
    };
  }

  restore(state: RareTokenState): void {
    const s = this.settings;
    if (!state || typeof state.records !== 'number' || typeof state.history !== 'string' || !Array.isArray(state.tracked)) {
      throw corrupt(this.name, 'expected { records, width, depth, history, tracked }');
    }
    if (state.width !== s.width || state.depth !== s.depth) {
      throw corrupt(this.name, `history sketch is ${state.depth} × ${state.width}; the settings say ${s.depth} × ${s.width} (were width or depth changed?)`);
    }
    const bytes = Buffer.from(state.history, 'base64');
    if (bytes.length !== this.history.length) throw corrupt(this.name, `history has ${bytes.length} counters; expected ${this.history.length}`);
    this.history.set(bytes);
    this.records = state.records;
    this.tracked.clear();
    this.order.clear();
    this.trackedBytes = 0;
    for (const row of state.tracked) {
      if (!Array.isArray(row) || row.length !== 7 || !Array.isArray(row[6])) throw corrupt(this.name, 'bad tracked token entry');
      const [key, since, prior, flagged, total, last, uses] = row;
      const restored = uses.map(([t, source, lab]) => ({ t, source, label: lab, bytes: useBytes(jsonBytes(source)) }));
      const e: Tracked = { since, prior, flagged: flagged === 1, total, last, uses: restored, head: 0, counts: undefined, bytes: ROW_BYTES + restored.reduce((n, u) => n + u.bytes, 0) };
      if (e.uses.length >= 2) {
        e.counts = { bySource: new Map(), byLabel: new Map() };
        for (const u of e.uses) count(e.counts, u, 1);
      }
      this.tracked.set(key, e);
      this.trackedBytes += e.bytes;
      this.order.set(key, evidence(e));
    }
    this.enforce();
  }
}
