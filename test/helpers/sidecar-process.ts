/** Runs `tayguard serve` as a real child process (so tests can SIGTERM or SIGKILL it) and polls its HTTP API. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');

export interface SidecarProcess {
  readonly child: ChildProcess;
  readonly base: string;
  json(p: string): Promise<any>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

let nextPort = 20000 + Math.floor(Math.random() * 20000);

export async function startSidecar(env: Record<string, string>, logFile: string): Promise<SidecarProcess> {
  const sidecar = spawnSidecar(env, logFile);
  await waitFor(async () => (await fetch(`${sidecar.base}/readyz`).catch(() => undefined))?.status === 200, 60000, `sidecar ready (log: ${logFile})`);
  return sidecar;
}

/** Start `tayguard serve` without waiting for it to become ready (for runs expected to stop or stay unready). */
export function spawnSidecar(env: Record<string, string>, logFile: string): SidecarProcess {
  const port = String(nextPort++);
  const log = createWriteStream(logFile, { flags: 'a' });
  const child = spawn(process.execPath, [path.join(ROOT, 'bin/tayguard.js'), 'serve'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: port, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const base = `http://127.0.0.1:${port}`;
  const sidecar: SidecarProcess = {
    child,
    base,
    exited,
    // As the operator: with ADMIN_TOKEN set, the operator surface (detail, /metrics) needs it.
    json: async (p) => (await fetch(base + p, env.ADMIN_TOKEN ? { headers: { authorization: `Bearer ${env.ADMIN_TOKEN}` } } : {})).json(),
  };
  return sidecar;
}

export async function waitFor(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export const total = (c: { trained: number; quarantined: number; skipped: number }) => c.trained + c.quarantined + c.skipped;
