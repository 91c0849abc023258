/**
 * Bounded screen state that an attacker cannot flush by volume: keys grouped by how much evidence backs them,
 * evicted from the least-evidence group first — never by recency.
 *
 * Why not LRU: with least-recently-seen eviction, registering N one-record accounts (N = the table's size) flushes
 * every honest, established account, which then comes back "new" with trust 0 (issue 10: 100,000 one-record
 * accounts flushed an honest account's trust to 0). Here a key with evidence e sits in tier 1 + ⌊log2 e⌋ (tier 0:
 * no evidence), and the victim is the longest-resident key of the lowest non-empty tier. So a key with evidence e
 * is evicted only once every key in the table has evidence ≥ 2^⌊log2 e⌋ > e/2: to flush a source with 50 clean
 * records out of a 100,000-source table, an attacker needs 100,000 sources with ≥ 32 clean records each, all
 * passing the rate caps, instead of 100,000 one-record accounts. Within a tier, first in is first out, so natural
 * churn of one-off users still ages out the oldest of them.
 *
 * Log2 tiers keep the index O(54) sets whatever the evidence scale, with O(1) moves.
 */
export class EvidenceIndex<K> {
  private readonly tiers: Set<K>[] = [];
  private readonly tierOf = new Map<K, number>();

  static tier(evidence: number): number {
    // Finite evidence is below 2^53, so at most tier 54; Infinity (e.g. a flagged trigger) sits above all of them.
    return evidence >= 1 && Number.isFinite(evidence) ? 1 + Math.floor(Math.log2(evidence)) : evidence === Infinity ? 60 : 0;
  }

  /** Place or move `key` by its current evidence (a key whose tier is unchanged keeps its place in line). */
  set(key: K, evidence: number): void {
    const t = EvidenceIndex.tier(evidence);
    const cur = this.tierOf.get(key);
    if (cur === t) return;
    if (cur !== undefined) this.tiers[cur].delete(key);
    (this.tiers[t] ??= new Set()).add(key);
    this.tierOf.set(key, t);
  }

  delete(key: K): void {
    const cur = this.tierOf.get(key);
    if (cur === undefined) return;
    this.tiers[cur].delete(key);
    this.tierOf.delete(key);
  }

  /** The key to evict next: the longest-resident key of the lowest tier, other than `except` (the key being inserted). */
  victim(except?: K): K | undefined {
    for (const set of this.tiers) {
      if (!set) continue;
      for (const k of set) if (k !== except) return k;
    }
    return undefined;
  }

  get size(): number {
    return this.tierOf.size;
  }

  /** Every key in eviction order (lowest tier first, longest-resident first within a tier). */
  *keys(): IterableIterator<K> {
    for (const set of this.tiers) if (set) yield* set;
  }

  clear(): void {
    this.tiers.length = 0;
    this.tierOf.clear();
  }
}

/**
 * Upper bounds on the JSON bytes of checkpointed values, for the screens' byte budgets (SCREEN_STATE_BYTES). A
 * number is at most 24 bytes in JSON (`-1.2345678901234567e-300`), plus a separator; a string is measured exactly
 * (UTF-8 of its JSON form), once, when its key enters the state.
 */
export const NUMBER_BYTES = 25;
export const jsonBytes = (s: string): number => Buffer.byteLength(JSON.stringify(s)) + 1;
