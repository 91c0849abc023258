/** MurmurHash3's 32-bit finaliser (Appleby): mixes all bits of h, used to derive MinHash seeds and sketch rows. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
