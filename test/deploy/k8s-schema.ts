/**
 * Validation of Kubernetes manifests for test/deploy/k8s.test.ts, in two layers:
 *
 * 1. kubernetes-models (ajv validators generated from the upstream Kubernetes 1.33 OpenAPI document): types,
 *    required fields, formats, enums. The upstream schemas allow unknown properties, so a misspelled field
 *    (`readinesProbe`) passes them — the API server then rejects it (`kubectl apply` validates strictly).
 * 2. Unknown fields: each manifest is type-checked as an object literal of the package's generated interface
 *    (IDeployment, …) by the TypeScript compiler, whose excess-property check names every field the API does
 *    not define, at any depth.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import ts from 'typescript';
import { parseAllDocuments } from 'yaml';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';

export interface Manifest {
  readonly file: string;
  readonly doc: Record<string, any>;
}

/** apiVersion/kind → the model class and the module/interface the type check imports. */
const KINDS: Record<string, { model: new (data: any) => { validate(): void }; module: string; iface: string }> = {
  'apps/v1/Deployment': { model: Deployment, module: 'kubernetes-models/apps/v1/Deployment', iface: 'IDeployment' },
  'v1/ConfigMap': { model: ConfigMap, module: 'kubernetes-models/v1/ConfigMap', iface: 'IConfigMap' },
  'v1/Secret': { model: Secret, module: 'kubernetes-models/v1/Secret', iface: 'ISecret' },
  'v1/Service': { model: Service, module: 'kubernetes-models/v1/Service', iface: 'IService' },
};

export function loadManifests(dir: string): Manifest[] {
  const out: Manifest[] = [];
  for (const name of fs.readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort()) {
    for (const d of parseAllDocuments(fs.readFileSync(path.join(dir, name), 'utf8'))) {
      if (d.errors.length > 0) throw new Error(`${name}: ${d.errors.map((e) => e.message).join('; ')}`);
      const doc = d.toJS();
      if (doc !== null) out.push({ file: name, doc });
    }
  }
  return out;
}

const kindKey = (doc: Record<string, any>) => `${doc.apiVersion}/${doc.kind}`;

/** Layer 1: the upstream schema. Returns the validator's message, or null when the manifest conforms. */
export function schemaErrors(doc: Record<string, any>): string | null {
  const kind = KINDS[kindKey(doc)];
  if (!kind) return `no schema registered for ${kindKey(doc)} (add it to KINDS in test/deploy/k8s-schema.ts)`;
  try {
    new kind.model(doc).validate();
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}

/**
 * Layer 2: fields the API does not define, for many manifests in one compiler run (a program costs seconds).
 * Returns one list of messages per manifest, empty when it has no unknown or mistyped field.
 */
export function unknownFieldErrors(docs: readonly Record<string, any>[]): string[][] {
  const root = path.resolve(__dirname, '../..');
  const files = new Map<string, string>();
  docs.forEach((doc, i) => {
    const kind = KINDS[kindKey(doc)];
    if (!kind) throw new Error(`no schema registered for ${kindKey(doc)}`);
    files.set(path.join(root, `__manifest_${i}.ts`), `import type { ${kind.iface} } from '${kind.module}';\nexport const m: ${kind.iface} = ${JSON.stringify(doc, null, 1)};\n`);
  });
  const options: ts.CompilerOptions = { strict: true, noEmit: true, module: ts.ModuleKind.CommonJS, moduleResolution: ts.ModuleResolutionKind.Node10, target: ts.ScriptTarget.ES2022, types: [], skipLibCheck: true };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, lang, ...rest) => (files.has(name) ? ts.createSourceFile(name, files.get(name)!, lang) : getSourceFile(name, lang, ...rest));
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => files.has(name) || fileExists(name);
  const readFile = host.readFile.bind(host);
  host.readFile = (name) => files.get(name) ?? readFile(name);
  const program = ts.createProgram([...files.keys()], options, host);
  return [...files.keys()].map((name) =>
    ts.getPreEmitDiagnostics(program, program.getSourceFile(name)).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n')),
  );
}
