/**
 * Judge the label's direction (issue 10, item 4): a spam campaign that carries "Repeat after me:" or profanity
 * got every honest "this is spam" report quarantined by echo/toxicity, and the reporters' trust lowered. A record
 * whose label says "this content is bad" (ABUSE_LABELS; spam = 1 by default for a binary task) does not teach the
 * model to produce or accept the abuse, so those screens pass it; the same content labelled ham is still held back.
 * The chain is the service's own (loadConfig → createScreens, default SCREENS), on real SpamAssassin spam.
 */
import type { TrainingRecord } from '../../core/record';
import { EchoDetector } from '../../filters/echo';
import { ToxicityDetector } from '../../filters/toxicity';
import { DEFAULT_ECHO, DEFAULT_TOXICITY } from '../../filters/config';
import { createLearner } from '../../middleware/build';
import { initTf } from '../../core/tf';
import { loadConfig, type Env } from '../../src/config';
import { createScreens } from '../../src/screens';
import { HAM, SPAM, splitSpamCorpus } from '../../src/data/spam';
import type { DetectorChain } from '../../filters';

const raw = { topic: 't', partition: 0, offset: '0', key: null, value: null };
const H = 3600_000;
const T0 = 1_700_000_000_000;
const base: Env = { KAFKA_BROKERS: '127.0.0.1:1', TEXT_HASH_DIM: '1024' };

beforeAll(async () => {
  await initTf();
});

async function chain(env: Env = {}): Promise<DetectorChain> {
  const config = loadConfig({ ...base, ...env });
  const serving = await createLearner(config);
  return createScreens(config, { serving, trainedRecords: () => 0 });
}

const screen = (c: DetectorChain, r: TrainingRecord) => {
  for (const d of c.detectors) {
    const v = d.screen(r, raw);
    if (v.kind === 'quarantine') return v;
  }
  return { kind: 'accept' as const };
};

/** A campaign built from real spam: short mails that open with an echo instruction, or carry two profanities. */
const { test } = splitSpamCorpus();
const subjects = test.filter((m) => m.label === SPAM).map((m) => m.text.split('\n')[0].trim()).filter((s) => s.length > 10).slice(0, 40);
const campaign = subjects.map((s, i) => (i % 2 === 0 ? `Repeat after me: ${s}. Reply now to claim it.` : `${s}!! this shit is fucking free, act now`));

/** 30 established reporters (two weeks of clean reports), then each reports campaign mails with `label`. */
function report(c: DetectorChain, label: number, texts: readonly string[]) {
  const reporters = Array.from({ length: 30 }, (_, i) => `reporter-${i}`);
  const cleanSpam = test.filter((m) => m.label === SPAM).slice(100, 400);
  let n = 0;
  for (const [i, who] of reporters.entries()) {
    for (let k = 0; k < 10; k++) screen(c, { id: `old-${i}-${k}`, source: who, ts: T0 - 14 * 24 * H + n++ * 1000, label: SPAM, text: cleanSpam[(i * 10 + k) % cleanSpam.length].text });
  }
  const trustBefore = reporters.map((r) => c.registry.trust(r, T0));
  const verdicts = texts.map((text, j) => screen(c, { id: `campaign-${j}`, source: reporters[j % reporters.length], ts: T0 + j * 1000, label, text }));
  const t = T0 + texts.length * 1000;
  return { verdicts, reporters, trustBefore, trustAfter: reporters.map((r) => c.registry.trust(r, t)), quarantinedOf: (r: string) => c.registry.get(r)?.quarantined ?? 0 };
}

describe('echo and toxicity judge the label, not only the content', () => {
  it('ABUSE_LABELS defaults to spam (1) for a binary task, none for more classes, and is validated', () => {
    expect(loadConfig(base).screens.abuseLabels).toEqual([1]);
    expect(loadConfig({ ...base, NUM_CLASSES: '5' }).screens.abuseLabels).toEqual([]);
    expect(loadConfig({ ...base, ABUSE_LABELS: 'none' }).screens.abuseLabels).toEqual([]);
    expect(loadConfig({ ...base, NUM_CLASSES: '4', ABUSE_LABELS: '0, 3' }).screens.abuseLabels).toEqual([0, 3]);
    expect(() => loadConfig({ ...base, ABUSE_LABELS: '2' })).toThrow(/ABUSE_LABELS: 2 is not a class \(NUM_CLASSES=2: classes 0 to 1\)/);
    expect(() => loadConfig({ ...base, ABUSE_LABELS: 'spam' })).toThrow(/ABUSE_LABELS.*each label is a class number/);
  });

  it('an abusive campaign reported honestly (label spam) is not quarantined, and the reporters\' trust is untouched', async () => {
    const c = await chain();
    const r = report(c, SPAM, campaign);
    expect(r.verdicts.filter((v) => v.kind !== 'accept')).toEqual([]);
    for (const who of r.reporters) expect(r.quarantinedOf(who)).toBe(0);
    // Trust only grows with clean history: every reporter is at least as trusted as before the campaign.
    r.trustAfter.forEach((t, i) => expect(t).toBeGreaterThanOrEqual(r.trustBefore[i]));
    expect(Math.min(...r.trustBefore)).toBeGreaterThan(0);
  });

  it('the same content labelled ham (teaching the abuse as acceptable) is still quarantined, and earns its sources no trust', async () => {
    const c = await chain();
    const r = report(c, HAM, campaign);
    const codes = r.verdicts.map((v) => (v.kind === 'quarantine' ? v.reasons[0].code : 'accept'));
    expect(codes.filter((x, i) => i % 2 === 0 && x === 'echo_instruction')).toHaveLength(campaign.length / 2);
    expect(codes.filter((x, i) => i % 2 === 1 && x === 'toxic_language')).toHaveLength(campaign.length / 2);
    expect(r.reporters.some((who) => r.quarantinedOf(who) > 0)).toBe(true);
    // Content quarantines are not strikes (filters/source-registry.ts STRIKE_CODES: only a source's own volume and
    // the gate's penalties lower trust, so a screen's false positive cannot wear an honest source down); but a
    // quarantined record is no clean history either, so trust does not grow.
    r.trustAfter.forEach((t, i) => expect(t).toBeLessThanOrEqual(r.trustBefore[i]));
  });

  it('ABUSE_LABELS=none screens every label, as before', async () => {
    const c = await chain({ ABUSE_LABELS: 'none' });
    const r = report(c, SPAM, campaign);
    expect(r.verdicts.every((v) => v.kind === 'quarantine')).toBe(true);
  });

  it('each detector alone: records labelled with an abuse class pass, others are judged (a per-record decision)', () => {
    const echo = new EchoDetector({ ...DEFAULT_ECHO, abuseLabels: [1] });
    const tox = new ToxicityDetector({ ...DEFAULT_TOXICITY, abuseLabels: [1] });
    const rec = (label: number, text: string): TrainingRecord => ({ id: 'x', source: 's', label, text });
    expect(echo.screen(rec(1, 'repeat after me: you are all losers'), raw).kind).toBe('accept');
    expect(echo.screen(rec(0, 'repeat after me: you are all losers'), raw)).toMatchObject({ kind: 'quarantine', reasons: [{ code: 'echo_instruction' }] });
    expect(tox.screen(rec(1, 'fuck you, you shit'), raw).kind).toBe('accept');
    expect(tox.screen(rec(0, 'fuck you, you shit'), raw)).toMatchObject({ kind: 'quarantine', reasons: [{ code: 'toxic_language' }] });
    // Three classes, abuse = {1, 2}: only class 0 teaches content as acceptable.
    const multi = new EchoDetector({ ...DEFAULT_ECHO, abuseLabels: [1, 2] });
    expect([0, 1, 2].map((l) => multi.screen(rec(l, 'say after me: hello'), raw).kind)).toEqual(['quarantine', 'accept', 'accept']);
  });
});
