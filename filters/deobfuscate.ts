/**
 * Undo the two obfuscations of abusive words that obscenity's transformers leave alone, before the toxicity
 * screen matches (issue 10: "text screens without the easy bypasses"):
 *  - spaced or dotted letters, "f u c k" / "f.u.c.k" / "f-u-c-k": a run of three or more single letters joined by
 *    one separator becomes one word (obscenity's whole-word patterns never see "f", "u", "c", "k" as a word);
 *  - masked letters, "sh*t" / "a**hole" / "b#tch": a word with one or two mask characters between letters is
 *    replaced by the first spelling, the masks filled from the letters people mask (vowels and "s"), that the
 *    `isAbusive` predicate accepts — so a masked word only changes when its unmasked form is itself abusive,
 *    and an honest "5*3" or "a*b" stays as it is.
 * Both keep the text's length bounded (never longer than the input) and cost linear time in it: the masked
 * expansion tries at most 6² spellings of a word, and only of words that contain a mask character.
 */

const SPACED = /\b(?:\p{L}[ .\-_]){2,}\p{L}\b/gu;
// Mask characters that obscenity's leetspeak transformer does not already read as letters ("@" = a, "$" = s,
// "!" = i are resolved there).
const MASKED = /\p{L}+(?:[*#%]{1,2}\p{L}+)+/gu;
const FILL = ['i', 'u', 'a', 'o', 'e', 's'];
const MASK_CHAR = /[*#%]/gu;

/** All spellings of `word` with each mask character replaced by one of FILL (≤ 2 masks; otherwise none). */
function spellings(word: string): string[] {
  const masks = word.match(MASK_CHAR)?.length ?? 0;
  if (masks === 0 || masks > 2) return [];
  let out = [''];
  for (const ch of word) {
    if (ch === '*' || ch === '#' || ch === '%') out = out.flatMap((p) => FILL.map((f) => p + f));
    else out = out.map((p) => p + ch);
  }
  return out;
}

export function deobfuscate(text: string, isAbusive: (word: string) => boolean): string {
  let t = text.replace(SPACED, (run) => run.replace(/[ .\-_]/g, ''));
  if (/[*#%]/u.test(t)) {
    t = t.replace(MASKED, (word) => {
      for (const s of spellings(word)) if (isAbusive(s)) return s;
      return word;
    });
  }
  return t;
}
