/**
 * A lazily built DFA over obscenity patterns (literal code points, optional groups, wildcards, `\b` at either
 * end) that counts the distinct END positions at which any term matches, in one pass over the transformed text.
 *
 * Why: the toxicity screen's cheap upper bound used one JavaScript alternation of all 119 English terms and then
 * one regular expression per term — ~80 ns per character on a record of fresh random tokens (a 20,000-character
 * record cost the screen 29× the median mail's whole chain, issue 10 item 5). A DFA costs two typed-array reads
 * per character whatever the text, like Aho–Corasick (Aho & Corasick 1975, "Efficient string matching"), extended
 * by the subset construction (Rabin & Scott 1959) to optional groups and wildcards, and built lazily so only the
 * states a text visits exist.
 *
 * Why end positions bound obscenity's count: `getAllMatches` reports matches of these same regular expressions
 * over the same transformed text (then drops whitelisted ones); the toxicity screen counts their distinct spans
 * (clusters of overlapping matches). Clusters are disjoint, so two clusters never share an end position, and every
 * reported match ends at a position where some term matches: #clusters ≤ #distinct match ends, exactly what this
 * counts. Mapping back to the original text's indices is monotone, so it can only merge clusters, never split one.
 *
 * Semantics follow the compiled RegExp (flags `gs`, no `u`): input is UTF-16 code units, `.` is any code unit,
 * `\b` is a change of [A-Za-z0-9_]-ness with the outside of the text counted as a non-word character.
 *
 * Built lazily, a text of fresh random tokens still met ~40 transitions no earlier text had taken, each a subset
 * construction step of a few µs: more than the scan itself. `complete()` builds every state up front (the English
 * dataset: 563 states × 29 classes, once per process), so a scan never builds anything.
 */
import { SyntaxKind, type ParsedPattern } from 'obscenity';

const ANY = -1;
/** States kept before the cache is dropped between texts (memory bound: ≈ (cap + one text's length) × classes × 4 bytes). */
const STATE_CAP = 8192;

const isWordUnit = (u: number): boolean => (u >= 48 && u <= 57) || (u >= 65 && u <= 90) || (u >= 97 && u <= 122) || u === 95;

export class TermAutomaton {
  /** Character class of each code unit: 0 other non-word, 1 other word, 2… one per code unit a literal uses. */
  readonly classOf = new Uint8Array(0x10000);
  /** Number of classes: a state's row in `table()` is state × classes. */
  readonly classes: number;
  private readonly wordClass: boolean[];
  /** NFA: per position, the code-unit class it consumes (ANY for a wildcard) or -2 at a pattern's end. */
  private readonly atom: number[] = [];
  /** Epsilon closure of each position (itself plus the ends of the optional groups starting there), as position lists. */
  private readonly closure: number[][] = [];
  /** For accept positions: whether the pattern requires `\b` after it. */
  private readonly endBoundary: boolean[] = [];
  private readonly startsFree: number[] = [];
  private readonly startsBounded: number[] = [];

  // The DFA: states interned by key; the transition of state s on class c at row s × classes + c, packed as
  // (next's row << 2) | emitPrev | emitCur << 1, -1 unknown (rows, not state numbers: no multiplication per step).
  private keys = new Map<string, number>();
  private active: number[][] = [];
  private pending: boolean[] = [];
  private prevWord: boolean[] = [];
  private trans = new Int32Array(0);

  constructor(patterns: readonly ParsedPattern[]) {
    const units = new Map<number, number>();
    const unitsOf = (cp: number): number[] => (cp < 0x10000 ? [cp] : [0xd800 + ((cp - 0x10000) >> 10), 0xdc00 + ((cp - 0x10000) & 0x3ff)]);
    const classFor = (u: number): number => {
      let k = units.get(u);
      if (k === undefined) units.set(u, (k = units.size + 2));
      return k;
    };
    for (const p of patterns) {
      const base = this.atom.length;
      const atoms: number[] = [];
      const skips: [number, number][] = []; // optional groups [start, end) in this pattern's atoms
      for (const node of p.nodes) {
        const start = atoms.length;
        const child = node.kind === SyntaxKind.Optional ? node.childNode : node;
        if (child.kind === SyntaxKind.Wildcard) atoms.push(ANY);
        else if (child.kind === SyntaxKind.Literal) for (const cp of child.chars) atoms.push(...unitsOf(cp).map(classFor));
        if (node.kind === SyntaxKind.Optional) skips.push([start, atoms.length]);
      }
      for (let i = 0; i <= atoms.length; i++) {
        this.atom.push(i < atoms.length ? atoms[i] : -2);
        this.endBoundary.push(i === atoms.length && p.requireWordBoundaryAtEnd);
      }
      // Closures from the end backwards: an optional group only jumps forward.
      for (let i = atoms.length; i >= 0; i--) {
        const set = new Set([base + i]);
        for (const [s, e] of skips) if (s === i) for (const q of this.closure[base + e]) set.add(q);
        this.closure[base + i] = [...set];
      }
      (p.requireWordBoundaryAtStart ? this.startsBounded : this.startsFree).push(...this.closure[base]);
    }
    this.classes = units.size + 2;
    this.wordClass = [false, true];
    for (const [u, k] of units) {
      this.classOf[u] = k;
      this.wordClass[k] = isWordUnit(u);
    }
    for (let u = 0; u < 0x10000; u++) if (!units.has(u)) this.classOf[u] = isWordUnit(u) ? 1 : 0;
    this.reset();
  }

  private reset(): void {
    this.keys = new Map();
    this.active = [];
    this.pending = [];
    this.prevWord = [];
    this.trans = new Int32Array(1024 * this.classes).fill(-1);
    this.intern([], false, false);
  }

  private intern(active: number[], pending: boolean, prevWord: boolean): number {
    active.sort((a, b) => a - b);
    const key = `${pending ? 1 : 0}${prevWord ? 1 : 0}${active.join(',')}`;
    let s = this.keys.get(key);
    if (s !== undefined) return s;
    s = this.active.length;
    this.keys.set(key, s);
    this.active.push(active);
    this.pending.push(pending);
    this.prevWord.push(prevWord);
    if ((s + 1) * this.classes > this.trans.length) {
      const grown = new Int32Array(2 * this.trans.length).fill(-1);
      grown.set(this.trans);
      this.trans = grown;
    }
    return s;
  }

  private step(s: number, c: number): number {
    const curWord = this.wordClass[c];
    const prevWord = this.prevWord[s];
    const emitPrev = this.pending[s] && prevWord !== curWord;
    const next = new Set<number>();
    let pending = false;
    let emitCur = false;
    const advance = (q: number): void => {
      const a = this.atom[q];
      if (a === -2 || (a !== ANY && a !== c)) return;
      for (const r of this.closure[q + 1]) {
        if (this.atom[r] !== -2) next.add(r);
        else if (this.endBoundary[r]) pending = true;
        else emitCur = true;
      }
    };
    for (const q of this.active[s]) advance(q);
    for (const q of this.startsFree) advance(q);
    if (prevWord !== curWord) for (const q of this.startsBounded) advance(q);
    const to = this.intern([...next], pending, curWord);
    const packed = ((to * this.classes) << 2) | (emitPrev ? 1 : 0) | (emitCur ? 2 : 0);
    this.trans[s * this.classes + c] = packed;
    return packed;
  }

  /** Build every state and transition, unless there are more than `maxStates` states (then the rest stays lazy). */
  complete(maxStates = STATE_CAP): boolean {
    for (let s = 0; s < this.active.length; s++) {
      if (this.active.length > maxStates) return false;
      for (let c = 0; c < this.classes; c++) if (this.trans[s * this.classes + c] < 0) this.step(s, c);
    }
    return true;
  }

  /** Call before each text: drops a lazily grown cache past its cap (never after a `complete()` within it). */
  begin(): void {
    if (this.active.length > STATE_CAP) this.reset();
  }

  /** The transition table (see `trans`); replaced when `transition` grows it, so read it again after one. */
  table(): Int32Array {
    return this.trans;
  }

  /** Build the transition from the state at `row` on class `c`; the packed entry. */
  transition(row: number, c: number): number {
    return this.step(row / this.classes, c);
  }

  /** Whether a match ends at the text's last unit in the state at `row`: a pending `\b` after a word character. */
  endsAtEnd(row: number): boolean {
    const s = row / this.classes;
    return this.pending[s] && this.prevWord[s];
  }

  /**
   * Distinct positions of `units[0..n)` at which some term's match ends; stops early once `enough(count)` holds.
   */
  countEnds(units: Uint16Array, n: number, enough: (count: number) => boolean): number {
    this.begin();
    const classOf = this.classOf;
    let trans = this.trans;
    let row = 0;
    let count = 0;
    let lastEnd = -1;
    for (let i = 0; i < n; i++) {
      const c = classOf[units[i]];
      let t = trans[row + c];
      if (t < 0) {
        t = this.transition(row, c);
        trans = this.trans; // step may have grown the table
      }
      row = t >> 2;
      if ((t & 3) === 0) continue;
      if (t & 1 && i - 1 > lastEnd) {
        lastEnd = i - 1;
        if (enough(++count)) return count;
      }
      if (t & 2 && i > lastEnd) {
        lastEnd = i;
        if (enough(++count)) return count;
      }
    }
    // End of text: a `\b` after the last character holds when that character is a word character.
    if (this.endsAtEnd(row) && n - 1 > lastEnd) count += 1;
    return count;
  }
}
