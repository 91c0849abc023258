/**
 * Imports point one way (docs/architecture.md, "Dependency direction"):
 *
 *   core → nothing · privacy → core · middleware → core, privacy · filters → core, middleware, privacy
 *   train → core, middleware, privacy, filters · src and bench → everything
 *
 * A small script over the sources: every `import … from '…'`, `export … from '…'`, `import('…')` and
 * `require('…')` of every .ts file under those folders, type-only imports included (a type that points up still
 * ties a library to the service). A failure names the file and the import.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { ROOT, sources } from './helpers/sources';


const ALLOWED: Record<string, readonly string[]> = {
  core: [],
  privacy: ['core'],
  middleware: ['core', 'privacy'],
  filters: ['core', 'middleware', 'privacy'],
  train: ['core', 'middleware', 'privacy', 'filters'],
  src: ['core', 'middleware', 'privacy', 'filters', 'train'],
  bench: ['core', 'middleware', 'privacy', 'filters', 'train', 'src'],
};

/** Module specifiers of a file: static imports and re-exports (multi-line too), import() and require(). */
export function specifiers(text: string): string[] {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const found: string[] = [];
  const patterns = [/\b(?:import|export)\s[^'";]*?\sfrom\s*'([^']+)'/g, /\bimport\s*'([^']+)'/g, /\b(?:import|require)\s*\(\s*'([^']+)'\s*\)/g];
  for (const re of patterns) for (const m of code.matchAll(re)) found.push(m[1]);
  return found;
}

/** The top-level folder a relative specifier lands in, or undefined for a package. */
function folderOf(file: string, spec: string): string | undefined {
  if (!spec.startsWith('.')) return undefined;
  const target = path.normalize(path.join(path.dirname(file), spec));
  return target.split(path.sep)[0];
}

const FILES = Object.keys(ALLOWED).flatMap((dir) => sources(dir).map((file) => ({ file, dir })));

describe('architecture: imports point one way', () => {
  it('reads every folder and finds their imports', () => {
    for (const dir of Object.keys(ALLOWED)) expect(FILES.filter((f) => f.dir === dir).length).toBeGreaterThan(0);
    // The parser sees multi-line and type-only imports (privacy/index.ts re-exports, src/sidecar.ts imports).
    expect(specifiers("import {\n  a,\n  type B,\n} from '../core/x';\nexport { c } from './y';\nconst z = require('./z');")).toEqual(['../core/x', './y', './z']);
  });

  it('has no import that points the wrong way', () => {
    const offences: string[] = [];
    for (const { file, dir } of FILES) {
      for (const spec of specifiers(readFileSync(path.join(ROOT, file), 'utf8'))) {
        const to = folderOf(file, spec);
        if (to === undefined || to === dir) continue;
        if (!ALLOWED[dir].includes(to)) offences.push(`${file}: imports '${spec}' (${dir}/ may import ${ALLOWED[dir].join(', ') || 'nothing of the project'})`);
      }
    }
    if (offences.length > 0) console.error(`imports pointing the wrong way:\n  ${offences.join('\n  ')}`);
    expect(offences).toEqual([]);
  });

  it('keeps the HTTP app free of the sidecar (no import cycle between src/http/app.ts and src/sidecar.ts)', () => {
    const http = sources('src/http');
    for (const file of http) {
      const specs = specifiers(readFileSync(path.join(ROOT, file), 'utf8'));
      expect({ file, sidecar: specs.filter((s) => /(^|\/)sidecar$/.test(s)) }).toEqual({ file, sidecar: [] });
    }
  });

  it('never reads a design document outside the repository', () => {
    const outside = FILES.filter(({ file }) => /\.\.\/shared\b|\/work\/shared/.test(readFileSync(path.join(ROOT, file), 'utf8'))).map((f) => f.file);
    expect(outside).toEqual([]);
  });
});
