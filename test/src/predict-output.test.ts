/**
 * PREDICT_OUTPUT: how much of the served model's output POST /v1/predict reveals — the exact probabilities (the
 * default), probabilities rounded to PREDICT_PROBABILITY_STEP, or the label alone. Over HTTP, on the real server,
 * with three sidecars that serve the same weights (same SEED).
 */
import { mkdtempSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadConfig, type Env } from '../../src/config';
import { createLogger } from '../../src/logger';
import { createSidecar, type Sidecar } from '../../src/sidecar';
import { roundTo } from '../../src/http/predict';
import { predictResponse } from '../../src/http/schemas';

const base: Env = { KAFKA_BROKERS: '127.0.0.1:1', PORT: '0', HOST: '127.0.0.1', TEXT_HASH_DIM: '1024', SEED: 'same-weights', NUM_CLASSES: '3' };
const texts = ['free money now', 'see you at lunch', 'the build is broken again', 'win a prize', 'meeting moved to 3pm'];

interface Answer {
  modelVersion: number;
  predictions: { label: number; probabilities?: number[] }[];
}

describe('PREDICT_OUTPUT over HTTP', () => {
  const sidecars: Record<string, Sidecar> = {};
  const answers: Record<string, Answer> = {};
  beforeAll(async () => {
    for (const [name, env] of [
      ['probabilities', {}],
      ['coarse', { PREDICT_OUTPUT: 'coarse', PREDICT_PROBABILITY_STEP: '0.1' }],
      ['coarse-quarter', { PREDICT_OUTPUT: 'coarse', PREDICT_PROBABILITY_STEP: '0.25' }],
      ['label', { PREDICT_OUTPUT: 'label' }],
    ] as const) {
      const s = await createSidecar(loadConfig({ ...base, ...env, CHECKPOINT_DIR: mkdtempSync(path.join(os.tmpdir(), `tg-predict-${name}-`)) }), createLogger('silent'));
      await s.listen();
      sidecars[name] = s;
      const res = await fetch(`http://127.0.0.1:${s.port}/v1/predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ records: texts.map((text) => ({ text })) }),
      });
      expect(res.status).toBe(200);
      answers[name] = (await res.json()) as Answer;
    }
  }, 60_000);
  afterAll(async () => {
    for (const s of Object.values(sidecars)) await s.stop();
  });

  it('serves exact probabilities by default', () => {
    expect(loadConfig({ KAFKA_BROKERS: 'h:1' }).http.predictOutput).toEqual({ mode: 'probabilities', step: 0.1 });
    for (const p of answers.probabilities.predictions) {
      expect(p.probabilities).toHaveLength(3);
      expect(p.probabilities!.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
      expect(p.label).toBe(p.probabilities!.indexOf(Math.max(...p.probabilities!)));
    }
  });

  it('coarse: every probability is the nearest multiple of the step, and the label is the exact argmax', () => {
    const exact = answers.probabilities.predictions;
    for (const [name, step] of [['coarse', 0.1], ['coarse-quarter', 0.25]] as const) {
      answers[name].predictions.forEach((p, i) => {
        expect(p.label).toBe(exact[i].label);
        p.probabilities!.forEach((q, k) => {
          expect(Math.abs(q / step - Math.round(q / step))).toBeLessThan(1e-9);
          expect(Math.abs(q - exact[i].probabilities![k])).toBeLessThanOrEqual(step / 2 + 1e-9);
        });
      });
    }
  });

  it('every mode answers what the OpenAPI document says', () => {
    for (const a of Object.values(answers)) expect(predictResponse.safeParse(a).success).toBe(true);
  });

  it('label: the argmax and nothing else', () => {
    answers.label.predictions.forEach((p, i) => expect(p).toEqual({ label: answers.probabilities.predictions[i].label }));
    expect(answers.label.modelVersion).toBe(answers.probabilities.modelVersion);
  });

  it('refuses an unknown mode and a step outside (0, 0.5], and says when the step is unused', async () => {
    expect(() => loadConfig({ ...base, PREDICT_OUTPUT: 'logits' })).toThrow(/PREDICT_OUTPUT: one of probabilities, coarse, label/);
    expect(() => loadConfig({ ...base, PREDICT_PROBABILITY_STEP: '0' })).toThrow(/PREDICT_PROBABILITY_STEP is a step in \(0, 0\.5\]/);
    expect(() => loadConfig({ ...base, PREDICT_PROBABILITY_STEP: '0.75' })).toThrow(/PREDICT_PROBABILITY_STEP is a step in \(0, 0\.5\]/);
    const { checkConfig } = await import('../../src/cli/config-check');
    expect(checkConfig({ ...base, PREDICT_PROBABILITY_STEP: '0.2' }, { checkFiles: false }).warnings).toEqual(
      expect.arrayContaining([expect.stringMatching(/PREDICT_PROBABILITY_STEP is set but PREDICT_OUTPUT=probabilities/)]),
    );
  });

  it('rounds without binary noise', () => {
    expect(roundTo(0.34, 0.1)).toBe(0.3);
    expect(roundTo(0.35000001, 0.1)).toBe(0.4);
    expect(roundTo(0.7, 0.1)).toBe(0.7);
    expect(roundTo(0.126, 0.05)).toBe(0.15);
    expect(roundTo(0.9999, 0.001)).toBe(1);
  });
});
