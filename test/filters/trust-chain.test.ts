/**
 * Trust inside the whole screen chain (issue 10, "evasion lock and framing"): what other accounts send must not
 * lower an honest source's trust or flush it, and accounts the deployment vouches for are not "new".
 */
import { createDetectors } from '../../filters/config';
import { splitSpamCorpus, shuffled } from '../../src/data/spam';
import type { Detector, Verdict } from '../../filters/types';
import type { SourceMeta, TrainingRecord } from '../../core/record';
import { RAW, runChain } from '../helpers/screen-chain';

const raw = RAW;
const run = runChain;
const T0 = 1_700_000_000_000;
const H = 3600_000;

const mails = shuffled(splitSpamCorpus().train, 'trust-chain');

/**
 * Six hours of traffic: 60 established users sending 200 mails an hour, 122 honest new users (one mail each, hours
 * 2–6), and `sybils` one-record accounts an hour from hour 1 on, labelled `sybilLabel` (or the mail's own label).
 * Returns how many of the honest new users' mails were quarantined.
 */
function honestNewQuarantined(sybils: number, sybilLabel: number | 'own', honestMeta?: SourceMeta): number {
  const chain = createDetectors({}, { now: () => T0 });
  let m = 0;
  const next = () => mails[m++];
  const events: { t: number; r: TrainingRecord; honestNew: boolean }[] = [];
  for (let i = 0; i < 6 * 200; i++) {
    const x = next();
    events.push({ t: T0 + i * (H / 200), honestNew: false, r: { id: `e${i}`, source: `est${i % 60}`, label: x.label, text: x.text } });
  }
  for (let i = 0; i < 122; i++) {
    const x = next();
    events.push({ t: T0 + 2 * H + i * ((4 * H) / 122), honestNew: true, r: { id: `n${i}`, source: `new${i}`, label: x.label, text: x.text, ...(honestMeta ? { sourceMeta: honestMeta } : {}) } });
  }
  // Short, distinct texts (under the campaign screen's 6 words): what is measured is the accounts, not their content.
  for (let i = 0; i < 5 * sybils; i++) {
    events.push({ t: T0 + H + i * (H / sybils), honestNew: false, r: { id: `s${i}`, source: `sybil${i}`, label: sybilLabel === 'own' ? i % 2 : sybilLabel, text: `hello there number ${i}` } });
  }
  expect(m).toBeLessThan(mails.length); // no mail sent twice (that would be a real near-duplicate campaign)
  events.sort((a, b) => a.t - b.t);
  let q = 0;
  for (const e of events) if (run(chain.detectors, { ...e.r, ts: e.t }).kind === 'quarantine' && e.honestNew) q += 1;
  return q;
}

describe('trust in the screen chain', () => {
  it('120 one-record accounts an hour do not raise honest new-user quarantine when they push no label, nor ever for accounts the deployment vouches for', () => {
    const baseline = honestNewQuarantined(1, 'own');
    expect(honestNewQuarantined(120, 'own')).toBeLessThanOrEqual(baseline);
    // The framing attack: every sybil pushes label 0, a "new-source label burst" that quarantines new sources'
    // label-0 records. A user the deployment says is a year old and verified is not new, so it cannot be framed.
    const vouched: SourceMeta = { createdAt: new Date(T0 - 365 * 24 * H).toISOString(), verified: true };
    const vouchedBaseline = honestNewQuarantined(1, 'own', vouched);
    const vouchedFramed = honestNewQuarantined(120, 0, vouched);
    expect(vouchedFramed).toBeLessThanOrEqual(vouchedBaseline);
    // The limit, measured (docs/threat-model.md): unvouched new users pushing the sybils' label during such a
    // burst cannot be told from the sybils by the label-burst screen, and are held with them.
    console.log(`honest new users quarantined (of 122): baseline ${baseline}; with 120 one-label sybils an hour, unvouched ${honestNewQuarantined(120, 0)}, vouched ${vouchedFramed}`);
  });

  it("an established reporter's trust does not fall when its reports are quarantined because of what others sent, and falls for its own flood", () => {
    const chain = createDetectors({}, { now: () => T0 });
    for (let i = 0; i < 60; i++) run(chain.detectors, { id: `r${i}`, source: 'reporter', ts: T0 + i * 2 * H, label: mails[i].label, text: mails[i].text });
    const t = T0 + 130 * H;
    const before = chain.registry.trust('reporter', t);
    expect(before).toBeGreaterThan(0.5);
    // A campaign from 10 accounts; the reporter reports the same mail as spam and is caught in its near-duplicate cluster.
    const campaign = 'congratulations you have been selected to receive a free cruise to the bahamas call now to claim your prize';
    for (let i = 0; i < 10; i++) run(chain.detectors, { id: `c${i}`, source: `spammer${i}`, ts: t - 1000 + i, label: 0, text: campaign });
    const v = run(chain.detectors, { id: 'report', source: 'reporter', ts: t, label: 1, text: campaign });
    expect(v).toMatchObject({ kind: 'quarantine', reasons: [{ code: 'near_duplicate_campaign' }] });
    // Toxic spam reported as spam: quarantined on content, which the reporter did not write.
    const toxic = run(chain.detectors, { id: 'report2', source: 'reporter', ts: t, label: 1, text: 'fuck you, you stupid bitch, buy cheap pills now' });
    expect(toxic.kind).toBe('quarantine');
    expect(chain.registry.trust('reporter', t)).toBe(before);
    // Its own flood over the rate cap is its doing: a strike.
    for (let i = 0; i < 250; i++) run(chain.detectors, { id: `f${i}`, source: 'reporter', ts: t + i, label: 0, text: `status update number ${i}` });
    expect(chain.registry.marks('reporter', t + 250).strikes).toBeGreaterThan(0);
    expect(chain.registry.trust('reporter', t + 250)).toBeLessThan(before);
  });
});
