/**
 * The toxicity screen's exact span count: the number `countSpans(matcher.getAllMatches(text))` gives for
 * obscenity's `RegExpMatcher` (filters/toxicity.ts), computed only where a term can match.
 *
 * Why: when the cheap bound (filters/match-bound.ts) reaches the thresholds, the screen needs obscenity's exact
 * count (the reason message and score report it). `getAllMatches` runs 119 regular expressions over the whole
 * transformed text, 66 `indexOf` passes for the whitelist and a per-character transformer pipeline that builds
 * strings; on a 4,000-character text of profanity and near-misses that is ~0.9–1.4 ms, 49× the median honest
 * record's whole screening chain (issue 10). Here the work is proportional to the places where some term matches.
 *
 * Exactness, step by step against RegExpMatcher.getAllMatches (obscenity 0.4.6, pinned exactly in package.json
 * because this argument follows its internals; the tests below compare with it and fail on a divergence):
 * 1. The transformed text and its map to original indices are `applyTransformers`' (same stages in the same
 *    order per code point as CharacterIterator reads them, one map entry per UTF-16 unit of each output code
 *    point, holding the code point's start index; stateful stages fresh per text, as `resetAll` leaves them).
 * 2. Every match of every term's RegExp ends at a position where the DFA of filters/term-automaton.ts reports a
 *    match end (it recognises exactly the union of the terms' languages with the same `\b` rules, counting every
 *    match, not only the leftmost ones). A match of term k ending at e follows one path of k's optional atoms taken
 *    or skipped, so its length, its first unit and its last two units are that path's: its start is among the
 *    candidates listed for the classes of units e − 1 and e (byLastTwo) whose first unit is at the start.
 * 3. `String.prototype.matchAll` with a `g` RegExp reports, from lastIndex L (0 first), the match at the least
 *    start s ≥ L at which the RegExp matches, found by backtracking (a greedy `(?:x)?` tries x first), then sets
 *    L to its end (matches are never empty: obscenity rejects patterns that can match the empty string).
 *    `matchAt` is that backtracking for obscenity's node kinds (literals as UTF-16 units, `.` any one unit — no
 *    `u` flag, `s` flag —, optional literal or wildcard, `\b` over [A-Za-z0-9_] with the outside non-word);
 *    trying the candidate starts in order from L gives the same least start, since every other start fails.
 * 4. A match is dropped when some whitelist interval contains its original [start, end] (`IntervalCollection.query`
 *    with the same intervals: each whitelisted term's `indexOf` occurrences from the previous one's end, over the
 *    whitelist transformers' text — found from the ends a DFA over the whitelist reports, computed only when a
 *    match exists).
 * 5. Spans are clusters of the kept matches sorted by start, a match starting after the cluster's end opening a
 *    new one (`countSpans`); ties in start order cannot change that count.
 * test/filters/match-count.test.ts compares the count with obscenity's on every SpamAssassin mail and on generated
 * text of terms, near-misses, whitelisted words, leetspeak, look-alikes, separators and surrogates.
 *
 * Cost: the screen passes the record MatchBound's fused loop made of the transformed text, so what is left is one
 * walk of the whitelist transform and DFA over the text (about the bound's own cost), a few candidate starts per
 * match end and a sweep of the text's indices. On bench:redteam's slow-path records (4,000 characters of random
 * profanity, near-misses and whitelisted words) the toxicity screen costs ~140 µs of CPU warm (~1.1 ms through
 * getAllMatches); the benchmark's ratio to the median honest chain went from 58–65× to 8–13× — not yet the ≤ 5× target:
 * the bound, the whitelist walk, the matching and deobfuscate's regular expressions each take about a fifth.
 */
import { SyntaxKind, type ParsedPattern, type TransformerContainer } from 'obscenity';
import { TermAutomaton } from './term-automaton';
import { walker, type Walk } from './transform';

const ANY = -1;
const isWordUnit = (u: number): boolean => (u >= 48 && u <= 57) || (u >= 65 && u <= 90) || (u >= 97 && u <= 122) || u === 95;

/**
 * A term as `matchAt` reads it: its atoms' UTF-16 units flattened (ANY for `.`), each atom's [start, end) in them,
 * which atoms are optional, and the `\b` flags.
 */
interface Term {
  readonly units: Int32Array;
  readonly atomStart: Int32Array;
  readonly atomEnd: Int32Array;
  readonly optional: Uint8Array;
  readonly optionals: number;
  readonly startBoundary: boolean;
  readonly endBoundary: boolean;
  /** Possible match lengths in units. */
  readonly lengths: readonly number[];
  /** The unit every match starts with, or -1 when it can vary (a leading optional or wildcard). */
  readonly first: number;
  /** Units a match can end with (ANY: any unit). */
  readonly last: ReadonlySet<number>;
}

const unitsOf = (cp: number): number[] => (cp < 0x10000 ? [cp] : [0xd800 + ((cp - 0x10000) >> 10), 0xdc00 + ((cp - 0x10000) & 0x3ff)]);

function compileTerm(p: ParsedPattern): Term {
  const atoms = p.nodes.map((node) => {
    const child = node.kind === SyntaxKind.Optional ? node.childNode : node;
    return { units: child.kind === SyntaxKind.Wildcard ? [ANY] : child.chars.flatMap(unitsOf), optional: node.kind === SyntaxKind.Optional };
  });
  let lengths = new Set([0]);
  for (const a of atoms) {
    const next = new Set<number>();
    for (const l of lengths) {
      next.add(l + a.units.length);
      if (a.optional) next.add(l);
    }
    lengths = next;
  }
  const last = new Set<number>();
  for (let i = atoms.length - 1; i >= 0; i--) {
    last.add(atoms[i].units[atoms[i].units.length - 1]);
    if (!atoms[i].optional) break;
  }
  const atomStart: number[] = [];
  const atomEnd: number[] = [];
  let o = 0;
  for (const a of atoms) {
    atomStart.push(o);
    atomEnd.push((o += a.units.length));
  }
  return {
    units: Int32Array.from(atoms.flatMap((a) => a.units)),
    atomStart: Int32Array.from(atomStart),
    atomEnd: Int32Array.from(atomEnd),
    optional: Uint8Array.from(atoms.map((a) => (a.optional ? 1 : 0))),
    optionals: atoms.filter((a) => a.optional).length,
    startBoundary: p.requireWordBoundaryAtStart,
    endBoundary: p.requireWordBoundaryAtEnd,
    lengths: [...lengths].filter((l) => l > 0),
    first: atoms[0].optional || atoms[0].units[0] === ANY ? -1 : atoms[0].units[0],
    last,
  };
}

/** Every unit sequence a term can match: one per choice of optional atoms taken or skipped (ANY for `.`). */
function paths(term: Term): number[][] {
  let out: number[][] = [[]];
  for (let i = 0; i < term.atomStart.length; i++) {
    const atom = Array.from(term.units.subarray(term.atomStart[i], term.atomEnd[i]));
    out = out.flatMap((p) => (term.optional[i] === 1 ? [[...p, ...atom], p] : [[...p, ...atom]]));
  }
  return out.filter((p) => p.length > 0);
}

/** A transformed text with its map to original indices and its match ends (MatchBound.recorded). */
export interface Recorded {
  readonly units: Uint16Array;
  readonly map: Int32Array;
  readonly length: number;
  readonly ends: Int32Array;
  readonly nEnds: number;
}

export class MatchCount {
  private readonly terms: Term[];
  private readonly automaton: TermAutomaton;
  /**
   * Per last unit, (term, length, first unit) triples of the terms that can end with it; `anyLast`: the same for
   * terms that can end with a wildcard.
   */
  private readonly byLast = new Map<number, Int32Array>();
  private readonly anyLast: number[] = [];
  /**
   * The same triples per (class of the unit before the last, class of the last unit) in the DFA's classes — one
   * per path of optional atoms taken or skipped, so a list holds only terms whose match can end with those two
   * units (a wildcard: under every class). Used for ends after the first unit; an index, not a filter of matches.
   */
  private readonly byLastTwo: (Int32Array | undefined)[];
  /** Built on first use: the screen passes MatchBound's record instead (the tables are ~0.75 MB). */
  private blackWalk?: (input: string, out: Walk) => void;
  private readonly whiteWalk: (input: string, out: Walk) => void;
  private readonly black: Walk = { units: new Uint16Array(0), map: new Int32Array(0), length: 0, ends: new Int32Array(0), nEnds: 0 };
  private readonly white: Walk = { units: new Uint16Array(0), map: new Int32Array(0), length: 0, ends: new Int32Array(0), nEnds: 0 };
  private reach = new Int32Array(0);
  private cover = new Int32Array(0);
  /** The whitelist: each term's UTF-16 units, a DFA over them, and per last unit the terms ending with it. */
  private readonly whitelistTerms: readonly Uint16Array[];
  private readonly whiteAutomaton: TermAutomaton;
  private readonly whiteByLast = new Map<number, number[]>();
  private readonly whiteLastEnd: Int32Array;
  private readonly starts: number[][];
  // Per-text scratch: the text being matched.
  private t: Uint16Array = new Uint16Array(0);
  private n = 0;

  constructor(
    patterns: readonly ParsedPattern[],
    whitelist: readonly string[],
    private readonly blacklistTransformers: readonly TransformerContainer[],
    whitelistTransformers: readonly TransformerContainer[],
  ) {
    this.terms = patterns.map(compileTerm);
    this.starts = this.terms.map(() => []);
    this.automaton = new TermAutomaton(patterns);
    this.automaton.complete();
    const byLast = new Map<number, number[]>();
    this.terms.forEach((term, k) => {
      for (const u of term.last) {
        const list = u === ANY ? this.anyLast : (byLast.get(u) ?? []);
        for (const l of term.lengths) list.push(k, l, term.first);
        if (u !== ANY) byLast.set(u, list);
      }
    });
    for (const [u, list] of byLast) this.byLast.set(u, Int32Array.from(list));
    const C = this.automaton.classes;
    const classOf = this.automaton.classOf;
    const two: Set<string>[] = Array.from({ length: C * C }, () => new Set());
    const all = Array.from({ length: C }, (_, c) => c);
    this.terms.forEach((term, k) => {
      for (const path of paths(term)) {
        const l = path.length;
        const first = path[0] === ANY ? -1 : path[0];
        const lasts = path[l - 1] === ANY ? all : [classOf[path[l - 1]]];
        const prevs = l < 2 || path[l - 2] === ANY ? all : [classOf[path[l - 2]]];
        for (const a of prevs) for (const b of lasts) two[a * C + b].add(`${k},${l},${first}`);
      }
    });
    this.byLastTwo = two.map((set) => (set.size === 0 ? undefined : Int32Array.from([...set].flatMap((x) => x.split(',').map(Number)))));
    // indexOf compares UTF-16 units: each term as one literal of its code points ([...term] keeps lone surrogates).
    this.whitelistTerms = whitelist.map((w) => Uint16Array.from(w, (_, i) => w.charCodeAt(i)));
    this.whiteAutomaton = new TermAutomaton(
      whitelist.map((w) => ({
        nodes: [{ kind: SyntaxKind.Literal, chars: [...w].map((c) => c.codePointAt(0) as number) }],
        requireWordBoundaryAtStart: false,
        requireWordBoundaryAtEnd: false,
      })),
    );
    this.whiteAutomaton.complete();
    this.whitelistTerms.forEach((units, i) => {
      const u = units[units.length - 1];
      this.whiteByLast.set(u, [...(this.whiteByLast.get(u) ?? []), i]);
    });
    this.whiteLastEnd = new Int32Array(whitelist.length);
    this.whiteWalk = walker(whitelistTransformers, this.whiteAutomaton);
  }

  private candidates(list: ArrayLike<number>, e: number, starts: number[][]): void {
    const t = this.t;
    for (let i = 0; i < list.length; i += 3) {
      const s = e - list[i + 1] + 1;
      const first = list[i + 2];
      if (s >= 0 && (first < 0 || t[s] === first)) starts[list[i]].push(s);
    }
  }

  private boundary(pos: number): boolean {
    const before = pos > 0 && isWordUnit(this.t[pos - 1]);
    const after = pos < this.n && isWordUnit(this.t[pos]);
    return before !== after;
  }

  /**
   * The end (exclusive) of the match the term's RegExp finds at `s`, or -1. Backtracking tries a greedy optional's
   * atom before skipping it, depth first, so its leaves come in the order of the masks "optional i taken" read as
   * binary numbers with the first optional most significant, from all taken down to none: the first mask whose
   * path matches is the RegExp's match.
   */
  private matchAt(term: Term, s: number): number {
    if (term.startBoundary && !this.boundary(s)) return -1;
    const { units, atomStart, atomEnd, optional } = term;
    const t = this.t;
    const n = this.n;
    const atoms = atomStart.length;
    masks: for (let mask = (1 << term.optionals) - 1; mask >= 0; mask--) {
      let pos = s;
      let bit = term.optionals - 1;
      for (let i = 0; i < atoms; i++) {
        if (optional[i] === 1 && ((mask >> bit--) & 1) === 0) continue;
        const end = atomEnd[i];
        for (let j = atomStart[i]; j < end; j++, pos++) {
          if (pos >= n) continue masks;
          const u = units[j];
          if (u !== ANY && u !== t[pos]) continue masks;
        }
      }
      if (!term.endBoundary || this.boundary(pos)) return pos;
    }
    return -1;
  }

  /**
   * `countSpans(getAllMatches(input))` for the matcher these patterns, whitelist and transformers make.
   * `recorded`: the blacklist transform of `input` and its match ends as MatchBound's fused loop leaves them, for
   * the same patterns and transformers (else computed here).
   */
  count(input: string, recorded?: Recorded): number {
    let rec = recorded;
    if (!rec) {
      this.blackWalk ??= walker(this.blacklistTransformers, this.automaton);
      this.blackWalk(input, this.black);
      rec = this.black;
    }
    const { units, map, length: n, ends, nEnds } = rec;
    this.t = units;
    this.n = n;
    if (nEnds === 0) return 0;
    // Candidate starts per term, from the match ends (a start must show the term's first unit, when fixed).
    const starts = this.starts;
    for (const list of starts) list.length = 0;
    const { byLastTwo } = this;
    const classOf = this.automaton.classOf;
    const C = this.automaton.classes;
    for (let j = 0; j < nEnds; j++) {
      const e = ends[j];
      if (e > 0) {
        const list = byLastTwo[classOf[units[e - 1]] * C + classOf[units[e]]];
        if (list) this.candidates(list, e, starts);
        continue;
      }
      const list = this.byLast.get(units[e]);
      if (list) this.candidates(list, e, starts);
      if (this.anyLast.length > 0) this.candidates(this.anyLast, e, starts);
    }
    // Each term's matchAll: the least matching start from lastIndex, then lastIndex = the match's end. Per
    // original start index, the largest inclusive end of a match starting there (-1: none).
    const len = input.length;
    if (this.reach.length < len) this.reach = new Int32Array(len);
    const reach = this.reach.fill(-1, 0, len);
    let found = 0;
    for (let k = 0; k < this.terms.length; k++) {
      const cand = starts[k];
      if (cand.length === 0) continue;
      sortNearlySorted(cand);
      const term = this.terms[k];
      let last = 0;
      for (let c = 0; c < cand.length; c++) {
        const s = cand[c];
        if (s < last) continue;
        last = s + 1; // a start that failed is not tried twice
        const end = this.matchAt(term, s);
        if (end < 0) continue;
        last = end;
        let origEnd = map[end - 1];
        // RegExpMatcher's inclusive end: a surrogate pair's end is its low surrogate.
        if (origEnd < len - 1 && isHigh(input.charCodeAt(origEnd)) && isLow(input.charCodeAt(origEnd + 1))) origEnd++;
        const origStart = map[s];
        if (origEnd > reach[origStart]) reach[origStart] = origEnd;
        found++;
      }
    }
    if (found === 0) return 0;
    const cover = this.whitelistCover(input);
    // countSpans over the matches no whitelist interval contains. Of the matches starting at one index the longest
    // decides: if a whitelist interval contains it, it contains the others (same start, earlier ends); if not, the
    // others lie inside its span. `covered`: the largest upper bound of the intervals starting at or before s.
    let spans = 0;
    let end = -1;
    let covered = -1;
    for (let s = 0; s < len; s++) {
      if (cover[s] > covered) covered = cover[s];
      const e = reach[s];
      if (e < 0 || covered >= e) continue;
      if (s > end) spans += 1;
      if (e > end) end = e;
    }
    return spans;
  }

  /**
   * RegExpMatcher.getWhitelistedIntervals as, per original index x, the largest upper bound of the intervals whose
   * lower bound is x (-1: none): a match [s, e] is whitelisted (IntervalCollection.query: some interval with
   * lower ≤ s and upper ≥ e) iff the largest cover at or before s is ≥ e.
   * Occurrences come from the whitelist DFA's ends (every occurrence of a term
   * ends where the DFA reports an end), checked unit by unit; per term, in increasing order, an occurrence is kept
   * when it starts at or after the end of the last one kept — `indexOf(term, lastEnd)`.
   */
  private whitelistCover(input: string): Int32Array {
    const len = input.length;
    if (this.cover.length < len) this.cover = new Int32Array(len);
    const cover = this.cover.fill(-1, 0, len);
    if (this.whitelistTerms.length === 0) return cover;
    this.whiteWalk(input, this.white);
    const { units, map, ends, nEnds } = this.white;
    const lastEnd = this.whiteLastEnd.fill(0);
    for (let j = 0; j < nEnds; j++) {
      const e = ends[j];
      const list = this.whiteByLast.get(units[e]);
      if (!list) continue;
      for (const i of list) {
        const term = this.whitelistTerms[i];
        const s = e - term.length + 1;
        if (s < lastEnd[i]) continue;
        let k = 0;
        while (k < term.length && term[k] === units[s + k]) k++;
        if (k < term.length) continue;
        lastEnd[i] = e + 1;
        let origEnd = map[e];
        if (origEnd < len - 1 && isHigh(input.charCodeAt(origEnd)) && isLow(input.charCodeAt(origEnd + 1))) origEnd++;
        const lower = map[s];
        if (origEnd > cover[lower]) cover[lower] = origEnd;
      }
    }
    return cover;
  }
}

/** In place, ascending; linear on the candidate lists, which are sorted up to a term's few lengths. */
function sortNearlySorted(a: number[]): void {
  for (let i = 1; i < a.length; i++) {
    const v = a[i];
    let j = i - 1;
    while (j >= 0 && a[j] > v) {
      a[j + 1] = a[j];
      j--;
    }
    a[j + 1] = v;
  }
}

const isHigh = (c: number): boolean => c >= 0xd800 && c <= 0xdbff;
const isLow = (c: number): boolean => c >= 0xdc00 && c <= 0xdfff;
