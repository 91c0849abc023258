/**
 * `tayguard status`: one screen about a running sidecar — readiness, model version, records by outcome,
 * quarantine by detector, ε spent against the limit, the update gate and the privacy audit — read from the
 * sidecar's existing endpoints (/readyz, /v1/model, /v1/privacy/budget, /v1/privacy/audit, /metrics).
 *
 *   tayguard status [--url http://127.0.0.1:8080] [--token T] [--json]
 *
 * Exit codes: 0 shown, 1 the sidecar cannot be reached (SIDECAR_UNREACHABLE), 3 the audit's alarm is raised
 * (as `tayguard audit`). An endpoint that answers 401/404 (for instance one moved behind the admin token) is
 * shown as unavailable with what to do, not treated as a failure: the rest of the screen is still useful.
 */
import type { Command } from 'commander';
import { TayguardError } from '../../core/errors';

type Json = Record<string, any>;

export interface StatusSnapshot {
  readonly url: string;
  readonly ready: { readonly ok: boolean; readonly body: Json };
  /** Each null when its endpoint did not answer 200; `unavailable` says why. */
  readonly model: Json | null;
  readonly budget: Json | null;
  readonly audit: Json | null;
  readonly metrics: Readonly<Record<string, number>> | null;
  readonly unavailable: Readonly<Record<string, string>>;
}

/** Prometheus text → { 'name{labels}': value } for the tayguard_ series (comments and histograms' buckets left out). */
export function parseMetrics(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    if (!line.startsWith('tayguard_') || line.includes('_bucket{')) continue;
    const cut = line.lastIndexOf(' ');
    const value = Number(line.slice(cut + 1));
    if (Number.isFinite(value)) out[line.slice(0, cut)] = value;
  }
  return out;
}

const sumOf = (m: Readonly<Record<string, number>>, name: string) =>
  Object.entries(m).reduce((s, [k, v]) => (k === name || k.startsWith(`${name}{`) ? s + v : s), 0);

export async function fetchStatus(url: string, options: { token?: string; timeoutMs?: number } = {}): Promise<StatusSnapshot> {
  if (!URL.canParse(url)) throw new TayguardError('ARGUMENT_INVALID', `--url must be a URL like http://127.0.0.1:8080, got '${url}'`);
  const headers: Record<string, string> = options.token ? { authorization: `Bearer ${options.token}` } : {};
  const get = async (p: string) => {
    try {
      return await fetch(new URL(p, url), { headers, signal: AbortSignal.timeout(options.timeoutMs ?? 5000) });
    } catch (e) {
      throw new TayguardError(
        'SIDECAR_UNREACHABLE',
        `cannot reach the sidecar at ${url} (${(e as Error).message}); is \`tayguard serve\` running there? Pass --url http://host:PORT`,
        { cause: e, retriable: true },
      );
    }
  };
  const unavailable: Record<string, string> = {};
  const explain = async (p: string, res: Response) => {
    const body = (await res.json().catch(() => null)) as { error?: { code?: string; message?: string } } | null;
    const code = body?.error?.code ?? `HTTP ${res.status}`;
    unavailable[p] = res.status === 401 || res.status === 404 ? `${code}: needs the admin token (--token or ADMIN_TOKEN) or a newer sidecar` : `${code}: ${body?.error?.message ?? res.statusText}`;
  };
  const json = async (p: string): Promise<Json | null> => {
    const res = await get(p);
    if (res.ok) return (await res.json()) as Json;
    await explain(p, res);
    return null;
  };
  const readyRes = await get('/readyz');
  const ready = { ok: readyRes.status === 200, body: (await readyRes.json().catch(() => ({}))) as Json };
  const [model, budget, audit] = await Promise.all([json('/v1/model'), json('/v1/privacy/budget'), json('/v1/privacy/audit')]);
  const metricsRes = await get('/metrics');
  const metrics = metricsRes.ok ? parseMetrics(await metricsRes.text()) : null;
  if (!metricsRes.ok) await explain('/metrics', metricsRes);
  return { url, ready, model, budget, audit, metrics, unavailable };
}

const int = (n: number) => Math.round(n).toLocaleString('en-US');
const num = (n: number | null | undefined, digits = 3) => (typeof n === 'number' && Number.isFinite(n) ? n.toFixed(digits) : '—');
const list = (o: Record<string, number> | undefined) =>
  Object.entries(o ?? {})
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([k, v]) => `${k} ${int(v)}`)
    .join(', ') || 'none';

function bar(fraction: number, width = 30): string {
  const filled = Math.max(0, Math.min(width, Math.round(fraction * width)));
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
}

export function formatStatus(s: StatusSnapshot, now = new Date()): string {
  const lines: string[] = [];
  const r = s.ready.body;
  lines.push(`tayguard at ${s.url}: ${s.ready.ok ? 'ready' : `NOT READY (joined ${r.joined}, model loaded ${r.modelLoaded}${r.stopping ? ', stopping' : ''})`}`);
  // Sidecars with health checks say why they are not ready, each reason with what to do.
  for (const reason of (Array.isArray(r.reasons) ? r.reasons : []) as { code?: string; message?: string }[]) lines.push(`  ${reason.code}: ${reason.message}`);
  const m = s.model;
  const row = (label: string, text: string) => lines.push(`${label.padEnd(11)}${text}`);
  const missing = (p: string) => `unavailable (${s.unavailable[p]})`;
  // Counts and the gate are operator-only (`detail`, behind the token with OPERATOR_AUTH=token); sidecars before
  // the release boundary put them at the top level.
  const d: Json | null = m ? (m.detail ?? (m.records ? m : null)) : null;
  const operatorOnly = 'operator-only: pass --token (or set ADMIN_TOKEN) to see it';
  if (m) {
    const age = m.lastCheckpointAt ? `${Math.max(0, Math.round((now.getTime() - Date.parse(m.lastCheckpointAt)) / 1000))} s ago` : 'none yet';
    row('model', `version ${m.version} (${m.task}, ${m.inputDim} inputs, ${m.numClasses} classes, ${m.backend}); checkpoint #${m.checkpointSeq}, ${age}`);
  } else row('model', missing('/v1/model'));
  if (d) {
    const c = d.records ?? {};
    const lag = s.metrics ? `; consumer lag ${int(sumOf(s.metrics, 'tayguard_consumer_lag'))}` : '';
    row('records', `${int((c.trained ?? 0) + (c.quarantined ?? 0) + (c.skipped ?? 0))} handled: ${int(c.trained ?? 0)} trained, ${int(c.quarantined ?? 0)} quarantined, ${int(c.skipped ?? 0)} skipped${lag}`);
    row('quarantine', `by detector: ${list(c.quarantineStages)}`);
    row('', `by reason:   ${list(c.quarantineReasons)}`);
    if (Object.keys(c.skipReasons ?? {}).length > 0) row('', `skipped:     ${list(c.skipReasons)}`);
  } else if (m) row('records', operatorOnly);
  const b = s.budget;
  if (!b) row('privacy', missing('/v1/privacy/budget'));
  else if (b.epsilon === null) row('privacy', 'none: DP_ENABLED=false, plain SGD, no ε is claimed');
  else {
    const e = b.epsilon;
    row('privacy', `ε ${num(e.spent)} of ${e.limit} per ${b.unit} ${bar(e.spent / e.limit)} ${Math.round((100 * e.spent) / e.limit)}%, ${num(e.remaining)} left${e.exhausted ? ' — EXHAUSTED: training has stopped' : ''}`);
    const steps = typeof b.mechanism === 'object' ? `; ${int(b.mechanism.steps)} steps at q=${b.mechanism.sampleRate}, σ=${b.mechanism.noiseMultiplier}` : '';
    row('', `δ=${b.delta < 1e-3 ? Number(b.delta).toExponential() : b.delta}, decided by ${String(b.accountant).toUpperCase()} (RDP ε ${num(b.epsilonRdp)}, PRV ε ${num(b.epsilonPrv)})${steps}`);
  }
  const g = d?.gate;
  if (m && !d) row('gate', operatorOnly);
  else if (d && !g) row('gate', 'off (no CANARY_FILE)');
  else if (g) {
    const acc = s.metrics?.tayguard_canary_accuracy;
    const last = g.alerts?.length ? `; last rollback ${g.alerts[g.alerts.length - 1].at}: ${g.alerts[g.alerts.length - 1].message}` : '';
    row('gate', `${int(g.accepted)} updates kept, ${int(g.rejected)} undone, ${g.alerts?.length ?? 0} rollback(s) on ${g.canaries} canaries${acc !== undefined ? `; canary accuracy ${(100 * acc).toFixed(1)}%` : ''}${last}`);
  }
  const a = s.audit;
  if (!a) row('audit', missing('/v1/privacy/audit'));
  else if (!a.enabled) row('audit', 'off (AUDIT_CANARIES=0)');
  else if (!a.latest) row('audit', `no round completed yet${a.current ? ` (round ${a.current.round}: ${a.current.admitted} canaries admitted, ${a.current.toAdmit} to go)` : ''}`);
  else {
    const l = a.latest;
    row('audit', `round ${l.round}: empirical ε ≥ ${num(l.epsilonLowerBound)} (${Math.round(100 * l.confidence)}%) vs accountant ε ${num(l.epsilonAccounted)}; ${l.correct}/${l.guesses} guesses right${l.alarm ? ' — ALARM: a bound above the accountant means a privacy bug' : ', no alarm'}`);
  }
  if (b?.statement) row('guarantee', String(b.statement).split(/(?<=\.)\s/)[0]);
  return `${lines.join('\n')}\n`;
}

export function registerStatusCommand(program: Command): void {
  program
    .command('status')
    .description("one screen from a running sidecar: ε, records by outcome, quarantine by detector, gate, audit, model version (exit 3 on an audit alarm)")
    .option('--url <url>', 'sidecar base URL', `http://127.0.0.1:${process.env.PORT || 8080}`)
    .option('--token <token>', 'admin token, for endpoints behind it (default: ADMIN_TOKEN)')
    .option('--json', 'print the endpoints\' answers as one JSON object')
    .action(async (opts: { url: string; token?: string; json?: boolean }) => {
      try {
        const s = await fetchStatus(opts.url, { token: opts.token ?? process.env.ADMIN_TOKEN });
        process.stdout.write(opts.json ? `${JSON.stringify(s)}\n` : formatStatus(s));
        if (s.audit?.latest?.alarm) process.exitCode = 3;
      } catch (e) {
        if (!TayguardError.is(e)) throw e;
        process.stderr.write(`tayguard: ${e.code}: ${e.message}\n`);
        process.exitCode = e.code === 'ARGUMENT_INVALID' ? 2 : 1;
      }
    });
}
