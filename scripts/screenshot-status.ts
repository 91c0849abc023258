/**
 * The README's screenshot of the status page during the demo's flood:
 *
 *   npm run screenshot:status [-- --out docs/status-page.png --quarantined 350]
 *
 * Runs `tayguard demo --keep` (local broker, sidecar, SpamAssassin stream with the Tay-style flood), opens the
 * page it prints in Debian's headless chromium (playwright-core, never a downloaded browser), waits until the
 * flood is under way — `--quarantined` records quarantined, by the sidecar's own count — lets the page refresh,
 * saves a full-page screenshot and stops the demo with Ctrl-C (SIGINT).
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { chromium } from 'playwright-core';

const ROOT = path.join(__dirname, '..');
const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
};
const out = path.resolve(ROOT, arg('out', 'docs/status-page.png'));
const threshold = Number(arg('quarantined', '350'));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const port = String(18000 + Math.floor(Math.random() * 2000));
  const demo = spawn(process.execPath, [path.join(ROOT, 'bin/tayguard.js'), 'demo', '--keep'], { cwd: ROOT, env: { ...process.env, PORT: port }, stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<number | null>((resolve) => demo.once('exit', (code) => resolve(code)));
  let seen = '';
  demo.stdout.on('data', (chunk: Buffer) => (seen = (seen + chunk.toString()).slice(-20_000)));
  const printed = async (re: RegExp): Promise<RegExpExecArray> => {
    for (;;) {
      const m = re.exec(seen);
      if (m) return m;
      if (demo.exitCode !== null) throw new Error(`the demo exited (${demo.exitCode}) before printing ${re}:\n${seen}`);
      await sleep(200);
    }
  };
  const url = (await printed(/status page: (\S+)/))[1];
  process.stdout.write(`demo's status page at ${url}; waiting for ${threshold} quarantined records…\n`);
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 }, deviceScaleFactor: 1 });
    const errors: string[] = [];
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    await page.goto(url);
    await page.waitForSelector('body[data-loaded="true"]');
    for (;;) {
      const model = (await (await fetch(new URL('../v1/model', url))).json()) as { detail?: { records: { quarantined: number } } };
      const q = model.detail?.records.quarantined ?? 0;
      if (q >= threshold) break;
      if (demo.exitCode !== null) throw new Error(`the demo ended with ${q} quarantined, below --quarantined ${threshold}`);
      await sleep(250);
    }
    await sleep(3500); // one refresh of the page (every 3 s) after the threshold
    await page.screenshot({ path: out, fullPage: true });
    if (errors.length > 0) throw new Error(`the page logged errors: ${errors.join('; ')}`);
    process.stdout.write(`saved ${path.relative(process.cwd(), out)}\n`);
  } finally {
    await browser.close();
    // Stop it the way a person would: Ctrl-C once the demo holds (--keep), so it stops the sidecar and the broker.
    await printed(/kept up \(--keep\)/).catch(() => undefined);
    demo.kill('SIGINT');
    await exited;
  }
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
