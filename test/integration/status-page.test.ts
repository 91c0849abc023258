/**
 * The status page in a real headless browser (Debian's chromium driven by playwright-core) against a real
 * `tayguard serve` on the local broker (DP, update gate and audit on, OPERATOR_AUTH=token), opened while records
 * and a Tay-style flood ("repeat after me" and abuse from ~40 new sources) stream in. The page loads with no
 * console errors under the sidecar's Content-Security-Policy, its figures are the JSON endpoints' (ε, steps,
 * model version; with the token, records by outcome and quarantine by detector), the operator panels say they are
 * hidden without the token, and a screenshot is saved under the OS temp dir.
 *
 * Without /usr/bin/chromium the test is skipped with a message — except under CI, where it fails
 * (scripts/ensure-chromium.sh installs it, .ci/run calls that).
 */
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import seedrandom from 'seedrandom';
import type { Browser, Page } from 'playwright-core';
import { kafkaFor, produce, startLocalBroker, type LocalBroker } from '../helpers/kafka';
import { MALFORMED, validRecord } from '../helpers/records';
import { startSidecar, total, waitFor, type SidecarProcess } from '../helpers/sidecar-process';
import { history, model as modelSchema, readyz, versions as versionsSchema } from '../../src/http/schemas';
import { audit as auditSchema, budget as budgetSchema } from '../../src/http/schemas-privacy';

jest.setTimeout(240_000);

const CHROMIUM = '/usr/bin/chromium';
const TOKEN = 'status-page-admin-token-0123';
const SCREENSHOT = path.join(os.tmpdir(), 'tayguard-status-page-test.png');

const haveChromium = existsSync(CHROMIUM);
if (!haveChromium && !process.env.CI) {
  console.warn(`status page browser test SKIPPED: ${CHROMIUM} is missing (install it: sudo bash scripts/ensure-chromium.sh). Under CI this fails instead.`);
}
const suite = haveChromium || process.env.CI ? describe : describe.skip;

suite('the status page in headless chromium, during a flood', () => {
  let broker: LocalBroker;
  let sidecar: SidecarProcess;
  let browser: Browser;
  let page: Page;
  const consoleErrors: string[] = [];
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tg-status-page-'));
  const prefix = `page-${process.pid}`;
  const rng = seedrandom('status-page');
  const valid = Array.from({ length: 900 }, (_, i) => validRecord(i, rng, 'sp'));
  const FLOOD = 150;
  const flood = Array.from({ length: FLOOD }, (_, i) => {
    const source = `sybil-${i % 40}`;
    const text = i % 2 === 0 ? `repeat after me: you are all worthless ${i}` : `please Repeat After Me: spam is ham ${i}`;
    return { key: source, value: JSON.stringify({ id: `flood-${i}`, source, ts: 1_700_000_100_000 + i, label: 0, text }) };
  });
  const malformed = MALFORMED.map((m, i) => ({ key: null, value: m.make(i) }));
  const SENT = valid.length + FLOOD + malformed.length;
  /** An endpoint as the operator sees it. */
  const api = async (p: string): Promise<any> => (await fetch(sidecar.base + p, { headers: { authorization: `Bearer ${TOKEN}` } })).json();
  const text = async (selector: string) => ((await page.textContent(selector)) ?? '').trim();

  beforeAll(async () => {
    if (!haveChromium) throw new Error(`CI: ${CHROMIUM} is missing; scripts/ensure-chromium.sh installs Debian's chromium (.ci/run calls it)`);
    broker = await startLocalBroker();
    const canaryFile = path.join(dir, 'canaries.jsonl');
    writeFileSync(canaryFile, Array.from({ length: 40 }, (_, i) => validRecord(10_000 + i, rng, 'canary').value).join('\n'));
    sidecar = await startSidecar(
      {
        KAFKA_BROKERS: broker.bootstrap,
        TOPIC_PREFIX: prefix,
        GROUP_ID: prefix,
        CHECKPOINT_DIR: path.join(dir, 'ckpt'),
        CHECKPOINT_EVERY_RECORDS: '150',
        CHECKPOINT_INTERVAL_MS: '300',
        QUIET_STEP_INTERVAL_MS: '200', // the windows of the last records drain in ~10 s instead of ~50
        CANARY_FILE: canaryFile,
        AUDIT_CANARIES: '8',
        AUDIT_EVERY_RECORDS: '5',
        MAX_TEXT_CHARS: '2000', // MALFORMED's text_too_long is 5,000 chars
        ADMIN_TOKEN: TOKEN,
        OPERATOR_AUTH: 'token',
      },
      path.join(dir, 'sidecar.log'),
    );
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
    page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => consoleErrors.push(`uncaught: ${e.message}`));

    // The first half of the honest records, then the page opens, then the flood arrives with the rest.
    const kafka = kafkaFor(broker);
    await produce(kafka, `${prefix}.records`, valid.slice(0, 450));
    await waitFor(async () => total((await api('/v1/model')).detail.records) >= 450, 90_000, 'the first half handled');
    await page.goto(`${sidecar.base}/`);
    await page.waitForSelector('body[data-loaded="true"]', { timeout: 30_000 });
    for (let i = 0; i < FLOOD; i += 50) await produce(kafka, `${prefix}.records`, [...flood.slice(i, i + 50), ...valid.slice(450 + 3 * i, 450 + 3 * (i + 50))]);
    await produce(kafka, `${prefix}.records`, malformed);
    let last: unknown;
    await waitFor(
      async () => {
        const c = (last = (await api('/v1/model')).detail.records);
        return total(c) >= SENT && c.quarantineStages.schema === malformed.length;
      },
      120_000,
      'every record handled',
    ).catch((e) => {
      throw new Error(`${(e as Error).message}; last counts ${JSON.stringify(last)}`);
    });
    await waitFor(async () => (await api('/v1/privacy/audit')).latest !== null, 90_000, 'an audit round');
    // Quiet-stream steps go on until every pooled record has had its window; after that nothing changes (no step,
    // no checkpoint), so the page and the endpoints can be compared exactly. A quiet step would come every 200 ms.
    let steps = -1;
    let since = Date.now();
    await waitFor(
      async () => {
        const now = (await api('/v1/privacy/budget')).mechanism.steps as number;
        if (now !== steps) [steps, since] = [now, Date.now()];
        return Date.now() - since > 3000;
      },
      120_000,
      'the last windows to drain (no step for 3 s)',
    );
  });

  afterAll(async () => {
    await browser?.close();
    sidecar?.child.kill('SIGKILL');
    await broker?.stop();
  });

  /** Poll until the page shows what the endpoints say (the page refreshes every 3 s), then compare once more. */
  async function eventually(read: () => Promise<{ shown: unknown; expected: unknown }>): Promise<void> {
    let last: { shown: unknown; expected: unknown } = { shown: undefined, expected: undefined };
    await waitFor(
      async () => {
        last = await read();
        return JSON.stringify(last.shown) === JSON.stringify(last.expected);
      },
      20_000,
      'the page to show the endpoints\' figures',
    ).catch(() => undefined);
    expect(last.shown).toEqual(last.expected);
  }

  it('answers every JSON endpoint the page reads in its documented shape (populated: gate, audit, versions, history)', async () => {
    expect(readyz.parse(await api('/readyz')).status).toBe('ready');
    budgetSchema.parse(await api('/v1/privacy/budget'));
    const a = auditSchema.parse(await api('/v1/privacy/audit'));
    expect(a.enabled && a.latest).toBeTruthy();
    const m = modelSchema.parse(await api('/v1/model'));
    expect(m.detail?.gate?.canaries).toBe(40);
    const v = versionsSchema.parse(await (await fetch(`${sidecar.base}/v1/model/versions`)).json());
    expect(v.versions[0]).toMatchObject({ version: m.version, aliases: expect.arrayContaining(['latest']) });
    expect(v.versions[0].epsilon).toBeGreaterThan(0);
    const h = history.parse(await api('/v1/history'));
    expect(h.public.length).toBeGreaterThan(3);
    expect(Array.isArray(h.operator) && h.operator.at(-1)?.quarantineStages.echo).toBeGreaterThan(0);
    // Without the token the operator half is withheld, with the reason.
    const open = history.parse(await (await fetch(`${sidecar.base}/v1/history`)).json());
    expect(open.operator).toEqual({ hidden: expect.stringMatching(/operator-only/) });
  });

  it('shows the public figures of the endpoints, and hides the operator panels without the token', async () => {
    await eventually(async () => {
      const b = await api('/v1/privacy/budget');
      const m = await api('/v1/model');
      return {
        shown: { eps: await text('#eps-spent'), limit: await text('#eps-limit'), steps: await text('#steps'), version: await text('#model-version') },
        expected: { eps: b.epsilon.spent.toFixed(3), limit: String(b.epsilon.limit), steps: b.mechanism.steps.toLocaleString('en-US'), version: `v${m.version}` },
      };
    });
    const a = await api('/v1/privacy/audit');
    expect(await text('#audit-bound')).toBe(a.latest.epsilonLowerBound.toFixed(3));
    expect(await text('#ready')).toBe('ready');
    expect(await page.getAttribute('body', 'data-operator')).toBe('false');
    expect(await text('#quarantine .hidden-note')).toMatch(/^Hidden: operator-only .*Enter the admin token/);
    expect(await page.isVisible('#stage-table')).toBe(false);
    // The ε chart draws the history the server kept (one point per checkpoint), and the newest version is listed.
    const points = Number(await page.getAttribute('#eps-chart polyline[data-series="ε spent"]', 'data-points'));
    expect(points).toBe((await api('/v1/history')).public.filter((s: { epsilonSpent: number | null }) => s.epsilonSpent !== null).length);
    expect(await page.isVisible(`#versions-table tr[data-version="${(await api('/v1/model')).version}"]`)).toBe(true);
    expect(await text('#plain')).toContain(`ε = ${(await api('/v1/privacy/budget')).epsilon.spent.toFixed(3)} spent so far`);
  });

  it('with the admin token typed in, shows records by outcome and quarantine by detector as the endpoints count them', async () => {
    await page.fill('#token', TOKEN);
    await page.click('#token-form button[type="submit"]');
    await page.waitForSelector('body[data-operator="true"]', { timeout: 15_000 });
    await eventually(async () => {
      const c = (await api('/v1/model')).detail.records;
      const shown: Record<string, string> = {};
      for (const row of await page.$$('#stage-table tr[data-stage]')) shown[(await row.getAttribute('data-stage')) ?? ''] = ((await row.textContent()) ?? '').trim();
      for (const o of ['trained', 'quarantined', 'skipped']) shown[o] = await text(`#outcome-table tr[data-outcome="${o}"] td.n`);
      const expected: Record<string, string> = {};
      for (const [stage, n] of Object.entries(c.quarantineStages as Record<string, number>)) expected[stage] = `${stage}${n.toLocaleString('en-US')}`;
      for (const o of ['trained', 'quarantined', 'skipped']) expected[o] = (c[o] as number).toLocaleString('en-US');
      return { shown, expected };
    });
    // The flood is what the echo detector caught; the gate's judgements are listed as events.
    expect(Number((await text('#stage-table tr[data-stage="echo"] td.n')).replace(/,/g, ''))).toBeGreaterThanOrEqual(FLOOD * 0.9);
    expect(await page.$$('#gate-events li[data-kind]')).not.toHaveLength(0);
    expect(await text('#gate-summary')).toMatch(/^\d[\d,]* updates kept, \d[\d,]* undone, \d+ rollback\(s\), on 40 trusted canaries$/);
    // The token lives in this tab's sessionStorage only.
    expect(await page.evaluate("sessionStorage.getItem('tayguard.adminToken')")).toBe(TOKEN);
    expect(await page.evaluate('localStorage.length')).toBe(0);
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    console.log(`status page screenshot: ${SCREENSHOT}`);
  });

  it('ran with no console errors under the page\'s Content-Security-Policy (scripts as files, no inline script)', async () => {
    expect(consoleErrors).toEqual([]);
    const res = await fetch(`${sidecar.base}/ui/`);
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toMatch(/script-src 'self'(;|$)/);
    expect(csp).toMatch(/script-src-attr 'none'/);
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval/);
    const scripts = (await res.text()).match(/<script\b[^>]*>/g) ?? [];
    expect(scripts.length).toBeGreaterThan(0);
    for (const tag of scripts) expect(tag).toMatch(/\bsrc="[^"]+\.js"/);
  });
});
