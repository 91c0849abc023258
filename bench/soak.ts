/**
 * npm run bench:soak — an hour-scale run compressed to minutes, against the real `tayguard serve` as a child process.
 *
 *   - the local Kafka-protocol broker (src/dev/broker.ts: librdkafka's mock cluster through Debian's kcat);
 *   - a steady producer of SpamAssassin mails (cycled, each with a unique id) with ~2% poison pills mixed in:
 *     invalid JSON, non-UTF-8 bytes, wrong types, labels out of range, oversized text and messages, and more;
 *     the mock broker keeps only ~5 MB per partition, so the producer holds back while more than a few thousand
 *     messages wait unhandled (while the sidecar is down) instead of building a backlog the broker would drop;
 *   - predict load at the same time: a few clients, 10–100 records per POST /v1/predict, latency measured
 *     (429 from the per-client rate limiter is expected and counted apart from other non-2xx answers);
 *   - two kill -9 restarts at seeded random moments in the first half, on the same CHECKPOINT_DIR (the last process
 *     then runs for more than half of the soak: its RSS trend is the memory check);
 *   - samples every few seconds: RSS of the sidecar (/proc/<pid>/status VmRSS), records/s handled, checkpoint file
 *     sizes and checkpoint durations (tayguard_checkpoint_duration_seconds on /metrics);
 *   - at the end: stop producing, wait until everything produced is handled, SIGTERM, and check the invariant
 *     trained + quarantined + skipped = produced, exactly (live and in the final durable checkpoint), and that every
 *     poison pill was quarantined under its own reason. Exits 1 when either fails or SIGTERM does not exit 0.
 *
 * Training: DP-SGD with the defaults, SCREENS default, ADMIN_TOKEN set (the operator surface needs the token).
 * One setting differs from the defaults: KAFKA_SESSION_TIMEOUT_MS=6000, so that a killed member's partitions are
 * reassigned within seconds rather than 30 s (as in the crash tests).
 *
 * Flags: --minutes N (producing time, default 6; start-up, drain and stop add a few seconds), --quick (2 minutes),
 * --json (print only the JSON), --seed S, --rate R (records/s produced, default 200: at 300 the sidecar on 2 cores, with
 * the predict load, fell behind and the producer spent about half the time held back), --clients C (predict clients,
 * default 3). Writes bench/results/soak.json (soak-quick.json with --quick, soak-custom.json with other settings).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdtempSync, promises as fs, readFileSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Kafka, Partitioners, logLevel, type Producer } from 'kafkajs';
import seedrandom from 'seedrandom';
import { startLocalBroker } from '../src/dev/broker';
import { loadSpamCorpus, shuffled } from '../src/data/spam';

const ROOT = path.resolve(__dirname, '..');
const args = process.argv.slice(2);
const flag = (name: string) => args.includes(name);
const option = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const json = flag('--json');
const quick = flag('--quick');
const minutes = Number(option('--minutes') ?? (quick ? 2 : 6));
const seed = option('--seed') ?? 'soak';
const rate = Number(option('--rate') ?? 200);
const clients = Number(option('--clients') ?? 3);
if (!(minutes > 0) || !(rate > 0) || !(clients >= 0)) {
  process.stderr.write('usage: npm run bench:soak -- [--minutes N | --quick] [--json] [--seed S] [--rate R] [--clients C]\n');
  process.exit(2);
}

const PILL_RATE = 0.02;
/** Unhandled messages the producer allows before it holds back (~7 MB of mails over 4 partitions of ~5 MB each). */
const MAX_BACKLOG = 4000;
const SAMPLE_MS = quick ? 2000 : 3000;
const PROGRESS_MS = 10_000;
const THINK_MS = 100;
const ADMIN_TOKEN = 'soak-admin-token-0123456789abcdef';
const PREFIX = 'soak';
const TOPIC = `${PREFIX}.records`;

const t0 = Date.now();
const now = () => (Date.now() - t0) / 1000;
const round = (x: number, d = 1) => Number(x.toFixed(d));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const say = (s: string) => json || process.stderr.write(`${s}\n`);

// ---------------------------------------------------------------------------------------------------------------
// Poison pills: each with exactly one fault and the reason code the schema must quarantine it under.

const PILLS: readonly { code: string; make(i: number): string | Buffer }[] = [
  { code: 'invalid_json', make: (i) => `{"id": "pill-${i}", "source": "x", "label": 1, "text": "cut off` },
  { code: 'invalid_utf8', make: () => Buffer.from([0x7b, 0x22, 0x69, 0x64, 0x22, 0x3a, 0xc3, 0x28, 0xff, 0xfe, 0x7d]) },
  { code: 'invalid_label', make: (i) => JSON.stringify({ id: `pill-${i}`, source: 'pills', label: '1', text: 'label is a string' }) },
  { code: 'invalid_source', make: (i) => JSON.stringify({ id: `pill-${i}`, source: 42, label: 0, text: 'source is a number' }) },
  { code: 'invalid_text', make: (i) => JSON.stringify({ id: `pill-${i}`, source: 'pills', label: 0, text: 12345 }) },
  { code: 'label_out_of_range', make: (i) => JSON.stringify({ id: `pill-${i}`, source: 'pills', label: 7, text: 'class seven of two' }) },
  { code: 'text_too_long', make: (i) => JSON.stringify({ id: `pill-${i}`, source: 'pills', label: 1, text: 'free money '.repeat(2000) }) },
  { code: 'wrong_payload', make: (i) => JSON.stringify({ id: `pill-${i}`, source: 'pills', label: 1, features: [1, 2, 3] }) },
  { code: 'not_an_object', make: () => '["an", "array"]' },
  { code: 'empty_message', make: () => '' },
];
/** One in this many oversized-text pills is a whole message over MAX_MESSAGE_BYTES (256 KB) instead. */
const HUGE_EVERY = 10;
const HUGE = { code: 'message_too_large', make: (i: number) => JSON.stringify({ id: `pill-${i}`, source: 'pills', label: 1, text: 'x'.repeat(300 * 1024) }) };

// ---------------------------------------------------------------------------------------------------------------
// The sidecar as a child process (as test/helpers/sidecar-process.ts runs it).

interface Incarnation {
  readonly n: number;
  readonly child: ChildProcess;
  readonly pid: number;
  readonly startedAt: number;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readyAt?: number;
  /** Last values of this process's counters on /metrics (they restart at 0 with each process). */
  ckpt: { sum: number; count: number; buckets: Map<string, number>; written: number; redeliveries: number };
  /** V8 heap and external memory at the last scrape (prom-client's default process metrics), MB. */
  heap?: { usedMB: number; totalMB: number; externalMB: number };
  /** [t, MB] samples of VmRSS. */
  rss: [number, number][];
}

const port = 21000 + Math.floor(Math.random() * 20000);
const base = `http://127.0.0.1:${port}`;
const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };

function spawnSidecar(n: number, env: Record<string, string>, logFile: string): Incarnation {
  const log = createWriteStream(logFile, { flags: 'a' });
  const child = spawn(process.execPath, [path.join(ROOT, 'bin/tayguard.js'), 'serve'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return { n, child, pid: child.pid ?? -1, startedAt: now(), exited, ckpt: { sum: 0, count: 0, buckets: new Map(), written: 0, redeliveries: 0 }, rss: [] };
}

async function get(p: string, timeoutMs = 5000): Promise<Response> {
  return fetch(base + p, { headers: auth, signal: AbortSignal.timeout(timeoutMs) });
}

async function waitReady(s: Incarnation, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (s.child.exitCode !== null || s.child.signalCode !== null) throw new Error(`sidecar ${s.n} exited before it was ready (see the log)`);
    const ok = await get('/readyz', 2000).then((r) => r.status === 200, () => false);
    if (ok) {
      s.readyAt = now();
      return;
    }
    if (Date.now() > deadline) throw new Error(`sidecar ${s.n} not ready after ${timeoutMs} ms`);
    await sleep(200);
  }
}

interface Counts {
  trained: number;
  quarantined: number;
  skipped: number;
  quarantineReasons: Record<string, number>;
  skipReasons: Record<string, number>;
}
const total = (c: Counts) => c.trained + c.quarantined + c.skipped;

async function modelDetail(): Promise<{ version: number; backend: string; records: Counts } | undefined> {
  try {
    const r = await get('/v1/model');
    if (r.status !== 200) return undefined;
    const body = (await r.json()) as { version: number; backend: string; detail?: { records: Counts } };
    return body.detail ? { version: body.version, backend: body.backend, records: body.detail.records } : undefined;
  } catch {
    return undefined;
  }
}

/** Reads the checkpoint histogram, the checkpoints counter and the redeliveries counter of the running process. */
async function scrapeMetrics(s: Incarnation): Promise<void> {
  let text: string;
  try {
    const r = await get('/metrics');
    if (r.status !== 200) return;
    text = await r.text();
  } catch {
    return;
  }
  const value = (re: RegExp) => Number(re.exec(text)?.[1] ?? NaN);
  const sum = value(/^tayguard_checkpoint_duration_seconds_sum\s+(\S+)$/m);
  const count = value(/^tayguard_checkpoint_duration_seconds_count\s+(\S+)$/m);
  if (Number.isFinite(sum) && Number.isFinite(count)) {
    s.ckpt.sum = sum;
    s.ckpt.count = count;
  }
  for (const m of text.matchAll(/^tayguard_checkpoint_duration_seconds_bucket\{le="([^"]+)"\}\s+(\S+)$/gm)) s.ckpt.buckets.set(m[1], Number(m[2]));
  const written = value(/^tayguard_checkpoints_total\s+(\S+)$/m);
  if (Number.isFinite(written)) s.ckpt.written = written;
  const redeliveries = value(/^tayguard_redeliveries_total\s+(\S+)$/m);
  if (Number.isFinite(redeliveries)) s.ckpt.redeliveries = redeliveries;
  const used = value(/^tayguard_nodejs_heap_size_used_bytes\s+(\S+)$/m);
  const heapTotal = value(/^tayguard_nodejs_heap_size_total_bytes\s+(\S+)$/m);
  const external = value(/^tayguard_nodejs_external_memory_bytes\s+(\S+)$/m);
  s.heap = Number.isFinite(used) ? { usedMB: round(used / 2 ** 20), totalMB: round(heapTotal / 2 ** 20), externalMB: round(external / 2 ** 20) } : undefined;
}

function rssMB(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Checkpoint files (ckpt-*.tgck) in CHECKPOINT_DIR: sizes, and the newest one's header (JSON) vs weight bytes. */
/** When each checkpoint file was written (its mtime, ms since the epoch), as seen by the samples. */
const checkpointWrittenAt = new Map<string, number>();

async function checkpointFiles(dir: string): Promise<{ files: number; bytes: number; newest?: { name: string; bytes: number; headerBytes: number } }> {
  const names = (await fs.readdir(dir).catch(() => [] as string[])).filter((n) => /^ckpt-\d+\.tgck$/.test(n)).sort();
  let bytes = 0;
  let newest: { name: string; bytes: number; headerBytes: number } | undefined;
  for (const name of names) {
    try {
      const st = await fs.stat(path.join(dir, name));
      bytes += st.size;
      if (!checkpointWrittenAt.has(name)) checkpointWrittenAt.set(name, st.mtimeMs);
      if (name === names[names.length - 1]) {
        const h = await fs.open(path.join(dir, name), 'r');
        const buf = Buffer.alloc(19);
        await h.read(buf, 0, 19, 0);
        await h.close();
        newest = { name, bytes: st.size, headerBytes: buf.readUInt32BE(15) };
      }
    } catch {
      // Removed between readdir and stat (older checkpoints are pruned): skip it.
    }
  }
  return { files: names.length, bytes, newest };
}

/** The counts stored in the newest checkpoint (format: src/checkpoint/store.ts — magic, u32 header length, JSON). */
async function durableCounts(dir: string): Promise<{ seq: number; counts: Counts } | undefined> {
  const names = (await fs.readdir(dir).catch(() => [] as string[])).filter((n) => /^ckpt-\d+\.tgck$/.test(n)).sort();
  const last = names[names.length - 1];
  if (!last) return undefined;
  const bytes = await fs.readFile(path.join(dir, last));
  const len = bytes.readUInt32BE(15);
  const header = JSON.parse(bytes.subarray(19, 19 + len).toString('utf8')) as { seq: number; counts: Counts };
  return { seq: header.seq, counts: header.counts };
}

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

// ---------------------------------------------------------------------------------------------------------------

async function main() {
  const rng = seedrandom(seed);
  const mails = shuffled(loadSpamCorpus(), `${seed}-mails`);
  const producingSeconds = minutes * 60;
  // Two kill -9 restarts at seeded random moments, both in the first half of the producing phase, so that the last
  // process runs for more than half of the soak and its RSS trend says whether memory stays flat.
  const killAt = [producingSeconds * (0.1 + 0.15 * rng()), producingSeconds * (0.3 + 0.15 * rng())].map((x) => round(x));

  const broker = await startLocalBroker();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tayguard-soak-'));
  const checkpointDir = path.join(dir, 'ckpt');
  const env: Record<string, string> = {
    KAFKA_BROKERS: broker.bootstrap,
    TOPIC_PREFIX: PREFIX,
    GROUP_ID: `${PREFIX}-group`,
    CHECKPOINT_DIR: checkpointDir,
    ADMIN_TOKEN,
    KAFKA_SESSION_TIMEOUT_MS: '6000',
  };
  const kafka = new Kafka({ clientId: 'tayguard-soak', brokers: broker.brokers, logLevel: logLevel.NOTHING, retry: { retries: 8 } });
  const producer: Producer = kafka.producer({ allowAutoTopicCreation: true, createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const admin = kafka.admin();
  await admin.connect();

  say(`soak: ${minutes} min producing at ${rate} records/s (${PILL_RATE * 100}% poison pills), ${clients} predict clients, kill -9 at ${killAt.join(' s and ')} s into producing; logs in ${dir}`);
  const incarnations: Incarnation[] = [];
  let current = spawnSidecar(1, env, path.join(dir, 'sidecar-1.log'));
  incarnations.push(current);
  await waitReady(current);
  const first = await modelDetail();
  const backend = first?.backend ?? 'unknown';
  say(`sidecar ready in ${round(current.readyAt! - current.startedAt)} s (pid ${current.pid}, backend ${backend})`);

  // Shared state.
  let producing = true;
  let predicting = true;
  let down = false;
  let handled = 0; // last seen trained + quarantined + skipped
  let lastCounts: Counts | undefined;
  let acked = 0;
  let valid = 0;
  const pills = new Map<string, number>();
  let heldBackMs = 0;
  let producerErrors = 0;
  const startProducing = now();

  // --- the producer: a steady rate, held back while the backlog is large -------------------------------------
  const producerLoop = (async () => {
    let i = 0;
    let pillNo = 0;
    let tooLong = 0;
    const tickMs = 100;
    while (producing) {
      const due = Math.floor(rate * (now() - startProducing)) - i;
      if (due <= 0) {
        await sleep(tickMs / 2);
        continue;
      }
      if (acked - handled > MAX_BACKLOG) {
        heldBackMs += tickMs;
        await sleep(tickMs);
        continue;
      }
      const batch: { key: string | null; value: string | Buffer }[] = [];
      const kinds: (string | null)[] = [];
      for (let k = 0; k < Math.min(due, rate); k++, i++) {
        if (rng() < PILL_RATE) {
          let pill = PILLS[Math.floor(rng() * PILLS.length)];
          if (pill.code === 'text_too_long' && tooLong++ % HUGE_EVERY === HUGE_EVERY - 1) pill = HUGE;
          batch.push({ key: null, value: pill.make(pillNo++) });
          kinds.push(pill.code);
        } else {
          const mail = mails[i % mails.length];
          const source = `user-${i % 300}`;
          batch.push({ key: source, value: JSON.stringify({ id: `soak-${i}`, source, ts: Date.now(), label: mail.label, text: mail.text }) });
          kinds.push(null);
        }
      }
      try {
        await producer.send({ topic: TOPIC, acks: -1, messages: batch });
        acked += batch.length;
        for (const k of kinds) {
          if (k === null) valid += 1;
          else pills.set(k, (pills.get(k) ?? 0) + 1);
        }
      } catch (e) {
        // Whether a failed send was appended is unknown: the invariant is checked against the topic's end offsets.
        producerErrors += 1;
        say(`producer: send failed: ${(e as Error).message}`);
      }
    }
  })();

  // --- predict clients ---------------------------------------------------------------------------------------
  const latencies: [number, number][] = []; // [t, ms] of 2xx answers
  const predict = { requests: 0, ok: 0, records: 0, rateLimited: 0, otherNon2xx: {} as Record<string, number>, connectionErrors: 0, connectionErrorsWhileDown: 0 };
  const clientLoop = async (c: number) => {
    const r = seedrandom(`${seed}-client-${c}`);
    while (predicting) {
      const n = 10 + Math.floor(r() * 91);
      const records = Array.from({ length: n }, () => ({ text: mails[Math.floor(r() * mails.length)].text }));
      const started = performance.now();
      predict.requests += 1;
      try {
        const res = await fetch(`${base}/v1/predict`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ records }),
          signal: AbortSignal.timeout(30_000),
        });
        await res.arrayBuffer();
        const ms = performance.now() - started;
        if (res.status >= 200 && res.status < 300) {
          predict.ok += 1;
          predict.records += n;
          latencies.push([now(), ms]);
        } else if (res.status === 429) predict.rateLimited += 1;
        else predict.otherNon2xx[String(res.status)] = (predict.otherNon2xx[String(res.status)] ?? 0) + 1;
        await sleep(THINK_MS);
      } catch {
        if (down) predict.connectionErrorsWhileDown += 1;
        else predict.connectionErrors += 1;
        await sleep(250);
      }
    }
  };
  const clientLoops = Array.from({ length: clients }, (_, c) => clientLoop(c));

  // --- sampling ---------------------------------------------------------------------------------------------
  const samples: { t: number; pid: number; rssMB?: number; heapUsedMB?: number; heapTotalMB?: number; externalMB?: number; handled: number; recordsPerSec?: number; ckptFiles: number; ckptBytes: number; newestCkptBytes?: number; newestCkptHeaderBytes?: number; ckptWritten: number; ckptMeanMs?: number }[] = [];
  const ckptTotals = () => incarnations.reduce((a, s) => ({ sum: a.sum + s.ckpt.sum, count: a.count + s.ckpt.count, written: a.written + s.ckpt.written }), { sum: 0, count: 0, written: 0 });
  let prev: { t: number; handled: number; pid: number; sum: number; count: number } | undefined;
  let sampling = true;
  const predictSeries: [number, number, number, number, number | null][] = [];
  let lastProgress = 0;
  let firstHandledAt: number | undefined;
  let lastHandledChangeAt = 0;
  const poll = async () => {
    const d = await modelDetail();
    if (d && !down) {
      const h = total(d.records);
      if (h !== handled) lastHandledChangeAt = now();
      if (h > 0 && firstHandledAt === undefined) firstHandledAt = now();
      handled = h;
      lastCounts = d.records;
    }
  };
  // Liveness under load (issue 14 asks for /livez within 100 ms): one probe a second while the sidecar is up.
  const livezMs: [number, number, number][] = []; // [t, ms, wall clock at the answer]
  const livezLoop = (async () => {
    while (sampling) {
      await sleep(1000);
      if (down) continue;
      const started = performance.now();
      const ok = await fetch(`${base}/livez`, { signal: AbortSignal.timeout(10_000) }).then((r) => r.status === 200, () => false);
      if (ok && !down) livezMs.push([now(), performance.now() - started, Date.now()]);
    }
  })();
  const pollLoop = (async () => {
    while (sampling) {
      await poll();
      await sleep(500);
    }
  })();
  const sampleLoop = (async () => {
    while (sampling) {
      await sleep(SAMPLE_MS);
      if (down) continue;
      const s = current;
      await scrapeMetrics(s);
      const rss = rssMB(s.pid);
      if (rss !== undefined) s.rss.push([round(now()), round(rss)]);
      const files = await checkpointFiles(checkpointDir);
      const t = now();
      const totals = ckptTotals();
      const rateNow = prev && prev.pid === s.pid ? (handled - prev.handled) / (t - prev.t) : undefined;
      const ckptMeanMs = prev && totals.count > prev.count ? ((totals.sum - prev.sum) / (totals.count - prev.count)) * 1000 : undefined;
      samples.push({
        t: round(t),
        pid: s.pid,
        rssMB: rss === undefined ? undefined : round(rss),
        heapUsedMB: s.heap?.usedMB,
        heapTotalMB: s.heap?.totalMB,
        externalMB: s.heap?.externalMB,
        handled,
        recordsPerSec: rateNow === undefined ? undefined : round(rateNow),
        ckptFiles: files.files,
        ckptBytes: files.bytes,
        newestCkptBytes: files.newest?.bytes,
        newestCkptHeaderBytes: files.newest?.headerBytes,
        ckptWritten: totals.written,
        ckptMeanMs: ckptMeanMs === undefined ? undefined : round(ckptMeanMs),
      });
      prev = { t, handled, pid: s.pid, sum: totals.sum, count: totals.count };
      if (t - lastProgress >= PROGRESS_MS / 1000) {
        const since = lastProgress;
        lastProgress = t;
        // Latency over the last interval only, so a drift shows (the report has the whole-run figures).
        const sorted = latencies.filter(([at]) => at > since).map(([, ms]) => ms).sort((a, b) => a - b);
        const live = livezMs.filter(([at]) => at > since).map(([, ms]) => ms);
        predictSeries.push([round(t), sorted.length, round(quantile(sorted, 0.5)), round(quantile(sorted, 0.99)), live.length ? round(Math.max(...live)) : null]);
        say(
          `[${String(Math.round(t)).padStart(4)} s] produced ${acked} handled ${handled} (${rateNow === undefined ? '—' : Math.round(rateNow)}/s) · rss ${rss === undefined ? '—' : Math.round(rss)} MB · ` +
            `ckpt ${files.newest ? (files.newest.bytes / 1e6).toFixed(2) : '—'} MB × ${files.files}, ${totals.count ? ((totals.sum / totals.count) * 1000).toFixed(0) : '—'} ms avg · ` +
            `predict ${predict.ok} ok, last 10 s p50 ${quantile(sorted, 0.5).toFixed(0)} p99 ${quantile(sorted, 0.99).toFixed(0)} ms, 429 ×${predict.rateLimited}, other non-2xx ×${Object.values(predict.otherNon2xx).reduce((a, b) => a + b, 0)} · ` +
            `livez max ${live.length ? Math.max(...live).toFixed(0) : '—'} ms` +
            (heldBackMs ? ` · producer held back ${(heldBackMs / 1000).toFixed(0)} s` : ''),
        );
      }
    }
  })();

  // --- two kill -9 restarts -------------------------------------------------------------------------------
  const restarts: { atSeconds: number; pid: number; handledSeenBeforeKill: number; restoredHandled?: number; redoneRecords?: number; secondsToReady: number; newPid: number }[] = [];
  for (const at of killAt) {
    while (now() - startProducing < at) await sleep(200);
    await scrapeMetrics(current);
    const before = handled;
    const killedAt = now();
    const old = current;
    down = true;
    old.child.kill('SIGKILL');
    const died = await old.exited;
    say(`[${String(Math.round(now())).padStart(4)} s] kill -9 of pid ${old.pid} (${died.signal}) with ${before} records handled; restarting on the same CHECKPOINT_DIR`);
    current = spawnSidecar(old.n + 1, env, path.join(dir, `sidecar-${old.n + 1}.log`));
    incarnations.push(current);
    // Restored counts: the first answer of the new process, before it handles anything new, is the checkpoint's.
    let restored: number | undefined;
    for (let k = 0; k < 600 && restored === undefined; k++) {
      const d = await modelDetail();
      if (d) restored = total(d.records);
      else await sleep(100);
    }
    await waitReady(current);
    down = false;
    await poll();
    restarts.push({
      atSeconds: round(killedAt),
      pid: old.pid,
      handledSeenBeforeKill: before,
      restoredHandled: restored,
      redoneRecords: restored === undefined ? undefined : Math.max(0, before - restored),
      secondsToReady: round(current.readyAt! - killedAt),
      newPid: current.pid,
    });
    say(`[${String(Math.round(now())).padStart(4)} s] pid ${current.pid} ready after ${round(current.readyAt! - killedAt)} s, resumed from a checkpoint with ${restored} records handled (${restarts.at(-1)?.redoneRecords} to handle again)`);
  }

  // --- the end: stop producing, drain, SIGTERM, check ------------------------------------------------------
  while (now() - startProducing < producingSeconds) await sleep(200);
  producing = false;
  await producerLoop;
  const producingEnded = now();
  predicting = false;
  await Promise.all(clientLoops);
  const ends = await admin.fetchTopicOffsets(TOPIC);
  const inTopic = ends.reduce((n, e) => n + Number(e.high), 0);
  const logStart = ends.reduce((n, e) => n + Number(e.low), 0);
  say(`[${String(Math.round(now())).padStart(4)} s] producing stopped: ${acked} acknowledged, ${inTopic} in the topic; waiting for the sidecar to handle them all`);
  const drainDeadline = Date.now() + 180_000;
  while (handled < inTopic && Date.now() < drainDeadline && now() - lastHandledChangeAt < 60) await sleep(250);
  await poll();
  const drained = now();
  sampling = false;
  await Promise.all([pollLoop, sampleLoop, livezLoop]);
  await scrapeMetrics(current);
  const liveCounts = lastCounts;
  const finalRss = rssMB(current.pid);
  if (finalRss !== undefined) current.rss.push([round(now()), round(finalRss)]);
  const stopStart = now();
  current.child.kill('SIGTERM');
  const stopTimer = setTimeout(() => current.child.kill('SIGKILL'), 60_000);
  const stopped = await current.exited;
  clearTimeout(stopTimer);
  const stopSeconds = round(now() - stopStart);
  const durable = await durableCounts(checkpointDir);
  await producer.disconnect();
  await admin.disconnect();
  await broker.stop();

  // --- the report ------------------------------------------------------------------------------------------
  const sorted = latencies.map(([, ms]) => ms).sort((a, b) => a - b);
  // Steady state: without the requests answered from a kill -9 until 20 s after the restarted sidecar was ready.
  const outside = (t: number) => restarts.every((r) => t < r.atSeconds || t > r.atSeconds + r.secondsToReady + 20);
  const steady = latencies.filter(([t]) => outside(t)).map(([, ms]) => ms).sort((a, b) => a - b);
  const livez = livezMs.map(([, ms]) => ms).sort((a, b) => a - b);
  // Each probe over 100 ms, with the nearest checkpoint write (file mtime) and whether it fell in a restart window.
  const writes = [...checkpointWrittenAt.values()];
  const slowLivez = livezMs
    .filter(([, ms]) => ms > 100)
    .map(([t, ms, wall]) => {
      const nearest = writes.reduce((best, w) => (Math.abs(w - (wall - ms / 2)) < Math.abs(best - (wall - ms / 2)) ? w : best), Infinity);
      return { t: round(t), ms: round(ms), nearestCheckpointWriteMs: Number.isFinite(nearest) ? Math.round(nearest - (wall - ms / 2)) : null, afterRestart: !outside(t) };
    });
  const live = liveCounts ? total(liveCounts) : NaN;
  const stored = durable ? total(durable.counts) : NaN;
  const pillsProduced = [...pills.values()].reduce((a, b) => a + b, 0);
  const pillCheck = Object.fromEntries([...pills.entries()].sort().map(([code, n]) => [code, { produced: n, quarantined: durable?.counts.quarantineReasons[code] ?? 0 }]));
  const pillsAccounted = Object.values(pillCheck).every((p) => p.produced === p.quarantined);
  const invariantHolds = live === inTopic && stored === inTopic && acked === inTopic;
  const rssSeries = samples.filter((s) => s.rssMB !== undefined).map((s) => [s.t, s.rssMB!] as [number, number]);
  const rssValues = rssSeries.map(([, v]) => v);
  const ckpt = ckptTotals();
  const buckets = new Map<string, number>();
  for (const s of incarnations) for (const [le, n] of s.ckpt.buckets) buckets.set(le, (buckets.get(le) ?? 0) + n);
  const le = [...buckets.entries()].map(([k, n]) => [k === '+Inf' ? Infinity : Number(k), n] as [number, number]).sort((a, b) => a[0] - b[0]);
  const p99Bucket = le.find(([, n]) => n >= 0.99 * ckpt.count)?.[0];
  const sizes = samples.filter((s) => s.newestCkptBytes !== undefined);
  const rates = samples.map((s) => s.recordsPerSec).filter((x): x is number => x !== undefined);
  const handledSpan = (drained - (firstHandledAt ?? startProducing));
  const logs = await sidecarLogSummary(dir, incarnations.length);
  // The logs stay for inspection; the checkpoints (tens of MB) do not.
  await fs.rm(checkpointDir, { recursive: true, force: true });

  const result = {
    command: `npm run bench:soak${args.length ? ` -- ${args.join(' ')}` : ''}`,
    date: new Date().toISOString(),
    machine: { cores: os.cpus().length, cpu: os.cpus()[0]?.model, memoryGB: round(os.totalmem() / 2 ** 30), node: process.version, backend },
    settings: {
      producingMinutes: minutes,
      seed,
      recordsPerSecondProduced: rate,
      poisonPillRate: PILL_RATE,
      predictClients: clients,
      recordsPerPredictRequest: '10–100 (uniform)',
      predictThinkMs: THINK_MS,
      sampleEverySeconds: SAMPLE_MS / 1000,
      maxBacklogMessages: MAX_BACKLOG,
      sidecar: 'node bin/tayguard.js serve: MODEL=text, DP-SGD and SCREENS at their defaults, ADMIN_TOKEN set; KAFKA_SESSION_TIMEOUT_MS=6000 (default 30000)',
      broker: 'local Kafka-protocol broker (librdkafka mock cluster via kcat, 3 brokers, 4 partitions)',
    },
    durationSeconds: { total: round(now()), producing: round(producingEnded - startProducing), drain: round(drained - producingEnded), sigterm: stopSeconds },
    produced: { messages: inTopic, acknowledged: acked, producerSendErrors: producerErrors, valid, poisonPills: pillsProduced, pillsByReason: Object.fromEntries([...pills.entries()].sort()), topicLogStartOffsetsSum: logStart, producerHeldBackSeconds: round(heldBackMs / 1000) },
    outcomes: durable ? { trained: durable.counts.trained, quarantined: durable.counts.quarantined, skipped: durable.counts.skipped, quarantineReasons: durable.counts.quarantineReasons, skipReasons: durable.counts.skipReasons } : null,
    invariant: {
      statement: 'trained + quarantined + skipped = produced',
      holds: invariantHolds,
      produced: inTopic,
      liveBeforeSigterm: live,
      finalCheckpoint: stored,
      finalCheckpointSeq: durable?.seq,
      everyPillQuarantinedUnderItsReason: pillsAccounted,
      pills: pillCheck,
      redeliveriesCounted: incarnations.reduce((a, s) => a + s.ckpt.redeliveries, 0),
    },
    recordsPerSecond: {
      mean: round(inTopic / handledSpan),
      note: 'handled records from the first handled one to the end of the drain, restarts included; the producer sets the pace',
      samples: { min: rates.length ? Math.min(...rates) : null, max: rates.length ? Math.max(...rates) : null, note: `per ${SAMPLE_MS / 1000} s sample; the max is a catch-up after a restart, near the sidecar's capacity under this load` },
    },
    predict: {
      requests: predict.requests,
      ok: predict.ok,
      recordsPredicted: predict.records,
      p50Ms: round(quantile(sorted, 0.5)),
      p99Ms: round(quantile(sorted, 0.99)),
      maxMs: round(sorted[sorted.length - 1] ?? NaN),
      steadyState: { requests: steady.length, p50Ms: round(quantile(steady, 0.5)), p99Ms: round(quantile(steady, 0.99)), note: 'without answers from each kill -9 until 20 s after the restarted sidecar was ready' },
      rateLimited429: predict.rateLimited,
      otherNon2xx: predict.otherNon2xx,
      connectionErrorsWhileUp: predict.connectionErrors,
      connectionErrorsWhileRestarting: predict.connectionErrorsWhileDown,
      note: 'latency of 2xx answers; all clients share one address and so one PREDICT_RATE_LIMIT bucket (2,000 records/s)',
      series: predictSeries,
      seriesColumns: ['t (s)', '2xx answers in the interval', 'p50 ms', 'p99 ms', 'max /livez ms'],
    },
    livez: {
      probes: livez.length,
      p50Ms: round(quantile(livez, 0.5)),
      p99Ms: round(quantile(livez, 0.99)),
      maxMs: round(livez[livez.length - 1] ?? NaN),
      over100Ms: livez.filter((ms) => ms > 100).length,
      slow: slowLivez,
      note: 'one GET /livez a second while the sidecar is up; slow: each probe over 100 ms, the nearest checkpoint file write to the middle of the probe (ms, negative = before) and whether it fell within 20 s of a restart',
    },
    rssMB: {
      first: rssValues[0],
      last: rssValues[rssValues.length - 1],
      max: rssValues.length ? Math.max(...rssValues) : null,
      byProcess: incarnations.map((s) => ({ pid: s.pid, ...rssTrend(s) })),
      trendNote: 'slope of a least-squares line through the process\'s samples from 60 s after it was ready (warm-up excluded)',
      series: rssSeries,
      heapSeries: samples.filter((s) => s.heapUsedMB !== undefined).map((s) => [s.t, s.heapUsedMB!, s.heapTotalMB!, s.externalMB!]),
      heapSeriesColumns: ['t (s)', 'V8 heap used MB', 'V8 heap total MB', 'external MB'],
      lastProcessHeapUsedSlopeMBPerMinute: slopePerMinute(samples.filter((x) => x.pid === current.pid && x.heapUsedMB !== undefined && x.t >= (current.readyAt ?? 0) + 60).map((x) => [x.t, x.heapUsedMB!] as const)),
    },
    checkpoints: {
      written: ckpt.written,
      timed: ckpt.count,
      meanMs: ckpt.count ? round((ckpt.sum / ckpt.count) * 1000) : null,
      p99UpperBoundMs: p99Bucket === undefined ? null : p99Bucket === Infinity ? '>5000' : p99Bucket * 1000,
      histogram: le.map(([k, n]) => [k === Infinity ? '+Inf' : `≤${k * 1000} ms`, n]),
      newestFileBytes: { first: sizes[0]?.newestCkptBytes, last: sizes.at(-1)?.newestCkptBytes, max: sizes.length ? Math.max(...sizes.map((s) => s.newestCkptBytes!)) : null },
      newestHeaderBytes: { first: sizes[0]?.newestCkptHeaderBytes, last: sizes.at(-1)?.newestCkptHeaderBytes },
      dirBytes: { last: samples.at(-1)?.ckptBytes, max: samples.length ? Math.max(...samples.map((s) => s.ckptBytes)) : null },
      series: samples.map((s) => [s.t, s.newestCkptBytes ?? 0, s.ckptMeanMs ?? null]),
      seriesColumns: ['t (s)', 'newest checkpoint bytes', 'mean checkpoint ms since the previous sample'],
    },
    restarts,
    shutdown: { signal: 'SIGTERM', exitCode: stopped.code, exitSignal: stopped.signal, seconds: stopSeconds },
    sidecarLog: logs,
    recordsPerSecondSeries: samples.map((s) => [s.t, s.recordsPerSec ?? null]),
    logDir: dir,
  };

  const name = quick && !option('--minutes') && args.filter((a) => a !== '--json' && a !== '--quick').length === 0 ? 'soak-quick' : args.filter((a) => a !== '--json').length === 0 ? 'soak' : 'soak-custom';
  writeFileSync(path.join(__dirname, 'results', `${name}.json`), `${JSON.stringify(result, null, 2)}\n`);
  if (json) process.stdout.write(`${JSON.stringify(result)}\n`);
  else {
    say('');
    say(`soak: ${result.durationSeconds.total} s on ${result.machine.cores} cores, node ${process.version}, backend ${backend}`);
    say(`produced ${inTopic} (${pillsProduced} poison pills) → trained ${result.outcomes?.trained} + quarantined ${result.outcomes?.quarantined} + skipped ${result.outcomes?.skipped} = ${stored}: invariant ${invariantHolds ? 'HOLDS' : 'FAILS'}; pills ${pillsAccounted ? 'all quarantined under their reasons' : 'NOT all accounted'}`);
    say(`records/s ${result.recordsPerSecond.mean} mean · predict ${predict.ok} ok, p50 ${result.predict.p50Ms} ms, p99 ${result.predict.p99Ms} ms (steady ${result.predict.steadyState.p99Ms} ms), 429 ×${predict.rateLimited}, other non-2xx ${JSON.stringify(predict.otherNon2xx)}`);
    say(`/livez p50 ${result.livez.p50Ms} ms, p99 ${result.livez.p99Ms} ms, max ${result.livez.maxMs} ms (${result.livez.over100Ms} of ${result.livez.probes} over 100 ms)`);
    say(`RSS ${result.rssMB.first} → ${result.rssMB.last} MB (max ${result.rssMB.max}; last process ${result.rssMB.byProcess.at(-1)?.slopeMBPerMinute ?? '—'} MB/min after warm-up, V8 heap used ${result.rssMB.lastProcessHeapUsedSlopeMBPerMinute ?? '—'} MB/min) · checkpoints ${ckpt.written}, ${result.checkpoints.meanMs} ms mean, newest ${result.checkpoints.newestFileBytes.last} bytes`);
    say(`restarts: ${restarts.map((r) => `${r.atSeconds} s (ready in ${r.secondsToReady} s, ${r.redoneRecords} redone)`).join(', ')} · SIGTERM exit ${stopped.code} in ${stopSeconds} s`);
    say(`written to bench/results/${name}.json`);
  }
  if (!invariantHolds || !pillsAccounted || stopped.code !== 0) process.exitCode = 1;
}

/** Least-squares slope of [t (s), value] points, per minute; null with fewer than 10 points. */
function slopePerMinute(points: readonly (readonly [number, number])[]): number | null {
  const n = points.length;
  if (n < 10) return null;
  const mt = points.reduce((a, [t]) => a + t, 0) / n;
  const mv = points.reduce((a, [, v]) => a + v, 0) / n;
  const cov = points.reduce((a, [t, v]) => a + (t - mt) * (v - mv), 0);
  const vt = points.reduce((a, [t]) => a + (t - mt) ** 2, 0);
  return round((cov / vt) * 60, 2);
}

function rssTrend(s: Incarnation): { first: number | null; last: number | null; max: number | null; samples: number; slopeMBPerMinute: number | null } {
  const values = s.rss.map(([, mb]) => mb);
  const settled = s.rss.filter(([t]) => s.readyAt !== undefined && t >= s.readyAt + 60);
  return { first: values[0] ?? null, last: values.at(-1) ?? null, max: values.length ? Math.max(...values) : null, samples: values.length, slopeMBPerMinute: slopePerMinute(settled) };
}

/** Warnings and errors the sidecar logged (pino JSON lines), by message. */
async function sidecarLogSummary(dir: string, n: number): Promise<{ warn: number; error: number; messages: Record<string, number> }> {
  const out = { warn: 0, error: 0, messages: {} as Record<string, number> };
  for (let k = 1; k <= n; k++) {
    const text = await fs.readFile(path.join(dir, `sidecar-${k}.log`), 'utf8').catch(() => '');
    for (const line of text.split('\n')) {
      if (!line.startsWith('{')) {
        if (line.trim()) out.messages[`(non-JSON) ${line.slice(0, 120)}`] = (out.messages[`(non-JSON) ${line.slice(0, 120)}`] ?? 0) + 1;
        continue;
      }
      try {
        const e = JSON.parse(line) as { level: number; msg?: string };
        if (e.level < 40) continue;
        if (e.level >= 50) out.error += 1;
        else out.warn += 1;
        const key = `${e.level >= 50 ? 'error' : 'warn'}: ${(e.msg ?? '').slice(0, 160)}`;
        out.messages[key] = (out.messages[key] ?? 0) + 1;
      } catch {
        // A line cut by kill -9.
      }
    }
  }
  return out;
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack}\n`);
  process.exit(1);
});
