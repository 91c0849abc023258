/**
 * Bounded screen state under a flood (issue 10, "denial of service"): every stateful stage stays within its byte
 * budget on every insert, the budget is an upper bound of what the checkpoint holds, each record is read only up to a
 * cap, and what a full table forgets first is what least evidence backs — never what was least recently seen.
 */
import seedrandom from 'seedrandom';
import { createDetectors, DEFAULT_RARE_TOKEN, DEFAULT_RATE_CAPS, DEFAULT_TRUST } from '../../filters/config';
import { CampaignDetector } from '../../filters/campaign';
import { RareTokenDetector } from '../../filters/rare-token';
import { RateCaps } from '../../filters/rate-caps';
import { EventClock, SourceRegistry } from '../../filters/trust';
import { DEFAULT_CAMPAIGN } from '../../filters/config';
import type { Detector, Verdict } from '../../filters/types';
import type { TrainingRecord } from '../../core/record';
import { RAW, runChain } from '../helpers/screen-chain';

const raw = RAW;
const run = runChain;
const T0 = 1_700_000_000_000;

/** 20,000 characters of tokens never seen before. */
function freshText(rng: () => number): string {
  let t = '';
  while (t.length < 20_000) {
    const n = 5 + Math.floor(rng() * 6);
    for (let i = 0; i < n; i++) t += String.fromCharCode(97 + Math.floor(rng() * 26));
    t += ' ';
  }
  return t.slice(0, 20_000);
}

const shared = () => ({ registry: new SourceRegistry(DEFAULT_TRUST), clock: new EventClock(() => T0) });

describe('screen state budgets', () => {
  it('2,000 records of 20,000 fresh-token characters from 2,000 long-named sources keep every stage within its byte budget', () => {
    const budgets = { trust: 256 << 10, 'rate-caps': 256 << 10, campaign: 512 << 10, 'rare-token': 2 << 20 };
    const chain = createDetectors(
      {
        trust: { maxStateBytes: budgets.trust },
        rateCaps: { maxStateBytes: budgets['rate-caps'] },
        campaign: { maxStateBytes: budgets.campaign },
        // A sketch wide enough that fresh tokens stay young (tracked), and no warm-up: the worst case for its state.
        rareToken: { enabled: true, warmupRecords: 0, width: 1 << 18, maxStateBytes: budgets['rare-token'] },
      },
      { now: () => T0 },
    );
    expect(chain.stateBudgets()).toEqual(budgets);
    const rng = seedrandom('flood');
    for (let i = 0; i < 2000; i++) {
      run(chain.detectors, { id: `r${i}`, source: `source-${i}-${'x'.repeat(180)}`, ts: T0 + i * 1000, label: i % 2, text: freshText(rng) });
      if (i % 1000 === 999) {
        const bytes = chain.stateBytes();
        const state = chain.toJSON() as unknown as Record<string, unknown>;
        const actual: Record<string, number> = {
          trust: Buffer.byteLength(JSON.stringify(state.trust)) + Buffer.byteLength(JSON.stringify(state.clock)),
          'rate-caps': Buffer.byteLength(JSON.stringify(state.rateCaps)),
          campaign: Buffer.byteLength(JSON.stringify(state.campaign)),
          'rare-token': Buffer.byteLength(JSON.stringify(state.rareToken)),
        };
        for (const [stage, budget] of Object.entries(budgets)) {
          expect(bytes[stage]).toBeLessThanOrEqual(budget); // held on every insert …
          expect(actual[stage]).toBeLessThanOrEqual(bytes[stage]); // … and an upper bound of the checkpointed bytes
        }
      }
    }
    // The tables are full, not empty: the budget, not a reset, is what holds them.
    expect(chain.registry.size).toBeGreaterThan(500);
    expect(chain.rareToken!.size).toBeGreaterThan(1000);
  });

  it('reads each record only up to a cap: the campaign signature of 20,000 characters is that of its first maxTokens words, rare-token tracks at most maxTokensPerRecord of them', () => {
    const rng = seedrandom('cap');
    const text = freshText(rng);
    const campaign = new CampaignDetector(DEFAULT_CAMPAIGN, shared());
    expect(campaign.signature(text)).toEqual(campaign.signature(text.split(' ').slice(0, DEFAULT_CAMPAIGN.maxTokens).join(' ')));
    const rare = new RareTokenDetector({ ...DEFAULT_RARE_TOKEN, warmupRecords: 0, width: 1 << 20, maxTokensPerRecord: 500 }, shared());
    rare.screen({ id: '1', source: 's', ts: T0, label: 0, text }, raw);
    expect(rare.size).toBe(500);
  });

  it('rate caps forget the source that sent least, not the least recent: a flood of one-record sources does not reset a capped source', () => {
    const caps = new RateCaps({ ...DEFAULT_RATE_CAPS, maxSources: 10, maxPerNewSource: 20, maxPerSource: 20 }, shared());
    for (let i = 0; i < 25; i++) caps.screen({ id: `f${i}`, source: 'flooder', ts: T0 + i, label: 0, text: 'x' }, raw);
    expect(caps.countFor('flooder', T0 + 100)).toBe(20);
    for (let i = 0; i < 100; i++) caps.screen({ id: `o${i}`, source: `one${i}`, ts: T0 + 100 + i, label: 0, text: 'x' }, raw);
    expect(caps.countFor('flooder', T0 + 300)).toBe(20); // still at its cap
    expect(caps.screen({ id: 'again', source: 'flooder', ts: T0 + 301, label: 0, text: 'x' }, raw).kind).toBe('quarantine');
  });

  it('rare-token forgets one-use tokens before a trigger spreading over several sources', () => {
    const rare = new RareTokenDetector({ ...DEFAULT_RARE_TOKEN, warmupRecords: 0, width: 1 << 20, maxTracked: 1000, minSources: 4 }, shared());
    for (let i = 0; i < 3; i++) rare.screen({ id: `t${i}`, source: `attacker${i}`, ts: T0 + i, label: 0, text: 'hello qxzv' }, raw);
    // 5,000 fresh one-use tokens from one flood.
    const rng = seedrandom('tokens');
    for (let r = 0; r < 10; r++) rare.screen({ id: `f${r}`, source: 'flood', ts: T0 + 10 + r, label: 1, text: freshText(rng).slice(0, 4000) }, raw);
    // The trigger was not pushed out (and graduated into "old"): its fourth source is caught.
    const v = rare.screen({ id: 't3', source: 'attacker3', ts: T0 + 100, label: 0, text: 'hello qxzv' }, raw);
    expect(v).toMatchObject({ kind: 'quarantine', reasons: [{ code: 'coordinated_rare_token' }] });
  });
});
