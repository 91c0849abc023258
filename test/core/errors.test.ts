/**
 * Errors are complete (docs/architecture.md, "Errors"): every code tayguard sends over HTTP, reports on /readyz or
 * exits with is in ERROR_CODES, and no user-facing path throws a plain Error (which has no code, maps to 500 and
 * exits 1). A scan of the sources outside test/ and bench/.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { ROOT, sources } from '../helpers/sources';
import { ERROR_CODES, TayguardError, hasCode } from '../../core/errors';
import { initTf } from '../../core/tf';

const FOLDERS = ['core', 'privacy', 'middleware', 'filters', 'train', 'src'];

const FILES = FOLDERS.flatMap(sources).map((file) => ({ file, text: readFileSync(path.join(ROOT, file), 'utf8') }));
const KNOWN = new Set<string>(ERROR_CODES);

/** `file:line: text` for every match of `re` (global) whose first group passes `bad`. */
function find(re: RegExp, bad: (m: RegExpMatchArray) => boolean): string[] {
  const out: string[] = [];
  for (const { file, text } of FILES) {
    for (const m of text.matchAll(re)) {
      if (!bad(m)) continue;
      const line = text.slice(0, m.index).split('\n').length;
      out.push(`${file}:${line}: ${m[0]}`);
    }
  }
  return out;
}

describe('errors are complete', () => {
  it('throws no plain Error outside tests (a TayguardError with a stable code and what to do instead)', () => {
    const plain = find(/new Error\(/g, () => true);
    if (plain.length > 0) console.error(`plain errors:\n  ${plain.join('\n  ')}`);
    expect(plain).toEqual([]);
  });

  it('uses only codes listed in ERROR_CODES: thrown, sent in a JSON body or a /readyz reason, or checked', () => {
    const unknown = [
      ...find(/TayguardError\(\s*'([A-Z_]+)'/g, (m) => !KNOWN.has(m[1])),
      ...find(/\bcode: '([A-Z][A-Z_]+)'/g, (m) => !KNOWN.has(m[1])),
      ...find(/hasCode\([^,]+,\s*'([A-Z_]+)'\)/g, (m) => !KNOWN.has(m[1])),
      ...find(/\.code === '([A-Z][A-Z_]+)'/g, (m) => !KNOWN.has(m[1]) && !/^(E[A-Z]+|HPE_|ERR_)/.test(m[1])),
    ];
    if (unknown.length > 0) console.error(`codes missing from ERROR_CODES:\n  ${unknown.join('\n  ')}`);
    expect(unknown).toEqual([]);
    // The scan sees what it is meant to see.
    expect(find(/\bcode: '([A-Z][A-Z_]+)'/g, (m) => m[1] === 'NOT_FOUND').length).toBeGreaterThan(0);
    expect(find(/TayguardError\(\s*'([A-Z_]+)'/g, (m) => m[1] === 'PAYLOAD_TOO_LARGE' || m[1] === 'CONFIG_INVALID').length).toBeGreaterThan(0);
  });

  it('lists every code once, with PAYLOAD_TOO_LARGE among them (sent as 413)', () => {
    expect(new Set(ERROR_CODES).size).toBe(ERROR_CODES.length);
    expect(KNOWN.has('PAYLOAD_TOO_LARGE')).toBe(true);
  });

  it('stops on a TFJS_BACKEND that cannot load with CONFIG_INVALID (exit 2), not a plain Error', async () => {
    let nodeLoads = true;
    try {
      require('@tensorflow/tfjs-node');
    } catch {
      nodeLoads = false;
    }
    if (nodeLoads) return; // with tfjs-node installed, TFJS_BACKEND=tensorflow is valid
    const err = await initTf('tensorflow').catch((e: unknown) => e);
    expect(TayguardError.is(err)).toBe(true);
    expect(hasCode(err, 'CONFIG_INVALID')).toBe(true);
    expect((err as Error).message).toMatch(/unset TFJS_BACKEND/);
  });
});
