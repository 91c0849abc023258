/**
 * docker/k8s: every manifest conforms to the Kubernetes 1.33 schemas (kubernetes-models) and names no field the
 * API lacks (the generated TypeScript interfaces), the Deployment is wired as the README says (native sidecar,
 * probes, non-root, read-only root, writable volumes where tayguard writes), and the ConfigMap holds only
 * variables tayguard reads — and passes its config loader.
 */
import * as path from 'node:path';
import { configSchema, loadConfig } from '../../src/config';
import { loadManifests, schemaErrors, unknownFieldErrors, type Manifest } from './k8s-schema';

const DIR = path.resolve(__dirname, '../../docker/k8s');
const manifests = loadManifests(DIR);
const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v));
const one = (kind: string): Record<string, any> => {
  const found = manifests.filter((m) => m.doc.kind === kind);
  expect(found).toHaveLength(1);
  return found[0].doc;
};

/** Env names in a ConfigMap's data that tayguard's config (src/config.ts) does not read. */
function unreadNames(data: Record<string, string>): string[] {
  const read = new Set(Object.keys(configSchema.shape));
  return Object.keys(data).filter((k) => !read.has(k));
}

describe('docker/k8s manifests', () => {
  it('are a Deployment, a Service, a ConfigMap and a Secret', () => {
    expect(manifests.map((m) => m.doc.kind).sort()).toEqual(['ConfigMap', 'Deployment', 'Secret', 'Service']);
  });

  it.each(manifests.map((m): [string, string, Manifest] => [m.file, m.doc.kind, m]))('%s (%s) conforms to the Kubernetes schema', (_f, _k, m) => {
    expect(schemaErrors(m.doc)).toBeNull();
  });

  it('name no field the Kubernetes API does not define', () => {
    const errors = unknownFieldErrors(manifests.map((m) => m.doc));
    expect(Object.fromEntries(manifests.map((m, i) => [m.file, errors[i]]))).toEqual(Object.fromEntries(manifests.map((m) => [m.file, []])));
  });

  // Negative controls: the same checks on broken copies of the real Deployment must fail, or the checks above
  // prove nothing.
  it('the schema check rejects a wrong type and a missing required field', () => {
    const wrongType = clone(one('Deployment'));
    wrongType.spec.replicas = 'one';
    expect(schemaErrors(wrongType)).toMatch(/spec\/replicas must be integer/);
    const noPort = clone(one('Deployment'));
    delete noPort.spec.template.spec.initContainers[0].readinessProbe.httpGet.port;
    expect(schemaErrors(noPort)).toMatch(/readinessProbe\/httpGet must have required property '?port'?/);
    expect(schemaErrors({ apiVersion: 'v1', kind: 'Pod' })).toMatch(/no schema registered/);
  });

  it('the field check names a misspelled field and a field at the wrong level', () => {
    const typo = clone(one('Deployment'));
    typo.spec.template.spec.containers[0].readinesProbe = typo.spec.template.spec.initContainers[0].readinessProbe;
    const misplaced = clone(one('Deployment'));
    misplaced.spec.template.spec.initContainers[0].securityContext.runAsNonRoot = true; // defined there too: no error
    misplaced.spec.template.spec.volumes[0].emptyDir.readOnly = true; // not an emptyDir field
    const [typoErrors, misplacedErrors] = unknownFieldErrors([typo, misplaced]);
    expect(typoErrors.join('\n')).toMatch(/'"readinesProbe"' does not exist in type 'IContainer'/);
    expect(misplacedErrors).toHaveLength(1);
    expect(misplacedErrors[0]).toMatch(/'"readOnly"' does not exist in type 'IEmptyDirVolumeSource'/);
    // Both copies still pass the upstream schema: only this layer sees them.
    expect(schemaErrors(typo)).toBeNull();
  });
});

describe('the Deployment', () => {
  const deployment = one('Deployment');
  const pod = deployment.spec.template.spec;
  const config = one('ConfigMap').data as Record<string, string>;
  const sidecar = pod.initContainers.find((c: any) => c.name === 'tayguard');
  const learner = pod.containers.find((c: any) => c.name === 'learner');
  const all = [...pod.initContainers, ...pod.containers];

  it('runs tayguard as a native sidecar (an init container that keeps running) beside a learner', () => {
    expect(sidecar.restartPolicy).toBe('Always');
    expect(learner).toBeDefined();
    expect(deployment.spec.replicas).toBe(1);
    expect(deployment.spec.strategy.type).toBe('Recreate');
  });

  it('probes /livez and /readyz on the port the ConfigMap gives tayguard', () => {
    const port = sidecar.ports.find((p: any) => p.name === 'http');
    expect(String(port.containerPort)).toBe(config.PORT);
    expect(sidecar.livenessProbe.httpGet).toEqual({ path: '/livez', port: 'http' });
    expect(sidecar.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'http' });
    expect(sidecar.startupProbe.httpGet.path).toBe('/livez');
  });

  it('takes the settings from the ConfigMap and ADMIN_TOKEN from the Secret', () => {
    const secret = one('Secret');
    expect(sidecar.envFrom).toEqual([{ configMapRef: { name: one('ConfigMap').metadata.name } }]);
    const token = sidecar.env.find((e: any) => e.name === 'ADMIN_TOKEN');
    expect(token.valueFrom.secretKeyRef).toEqual({ name: secret.metadata.name, key: 'ADMIN_TOKEN' });
    expect(Object.keys(secret.stringData)).toEqual(['ADMIN_TOKEN']);
  });

  it('runs as non-root with a read-only root filesystem, no privilege escalation and no capabilities', () => {
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    expect(pod.securityContext.runAsUser).toBeGreaterThan(0);
    for (const c of all) {
      expect([c.name, c.securityContext]).toEqual([c.name, { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } }]);
    }
  });

  it("mounts a writable emptyDir wherever tayguard writes, and the models volume read-only in the learner", () => {
    const emptyDirs = new Set(pod.volumes.filter((v: any) => v.emptyDir).map((v: any) => v.name));
    const writable = (c: any, dir: string) => c.volumeMounts.some((m: any) => emptyDirs.has(m.name) && !m.readOnly && m.mountPath === dir);
    for (const dir of [config.CHECKPOINT_DIR, config.MODEL_DIR, '/tmp']) expect([dir, writable(sidecar, dir)]).toEqual([dir, true]);
    const models = sidecar.volumeMounts.find((m: any) => m.mountPath === config.MODEL_DIR).name;
    expect(learner.volumeMounts).toContainEqual({ name: models, mountPath: learner.env.find((e: any) => e.name === 'MODEL_DIR').value, readOnly: true });
  });

  it('sets requests and a memory limit on every container', () => {
    for (const c of all) {
      expect([c.name, Object.keys(c.resources.requests).sort(), Object.keys(c.resources.limits)]).toEqual([c.name, ['cpu', 'memory'], ['memory']]);
    }
  });

  it("is selected by the Service, whose target port is tayguard's", () => {
    const service = one('Service');
    expect(deployment.spec.template.metadata.labels).toMatchObject(service.spec.selector);
    expect(deployment.spec.selector.matchLabels).toEqual(service.spec.selector);
    expect(sidecar.ports.map((p: any) => p.name)).toContain(service.spec.ports[0].targetPort);
  });
});

describe('the ConfigMap', () => {
  const data = one('ConfigMap').data as Record<string, string>;

  it("holds only variables tayguard's config reads", () => {
    expect(unreadNames(data)).toEqual([]);
    // The check itself: a name the config does not read is reported.
    expect(unreadNames({ ...data, EPSILON: '3', KAFKA_BROKER: 'x:1' })).toEqual(['EPSILON', 'KAFKA_BROKER']);
  });

  it('passes the config loader, with the Secret providing ADMIN_TOKEN', () => {
    const config = loadConfig({ ...data, ADMIN_TOKEN: one('Secret').stringData.ADMIN_TOKEN });
    expect(config.checkpoint).toMatchObject({ dir: data.CHECKPOINT_DIR, modelDir: data.MODEL_DIR });
    expect(config.http.port).toBe(Number(data.PORT));
    expect(config.privacy).not.toBeNull();
  });
});
