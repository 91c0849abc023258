// The current configuration's privacy guarantee in plain words, from GET /v1/privacy/budget (and the audit's
// latest round). The exact statement the sidecar makes is shown under it, unchanged: this is a reading aid, and
// where the two differ the statement (and docs/privacy.md) is what holds.

const p = (text) => {
  const e = document.createElement('p');
  e.textContent = text;
  return e;
};

/** Paragraphs (DOM nodes) saying what the budget means. */
export function plainWords(budget, audit) {
  if (budget.epsilon === null || budget.mechanism === 'none') {
    return [
      p('Training is NOT differentially private (DP_ENABLED=false). The published models and their predictions may reveal whether a given record was trained on, and there is no ε to show.'),
    ];
  }
  const e = budget.epsilon;
  const m = budget.mechanism;
  const who = budget.unit === 'source' ? 'everything one source sent' : 'any one record';
  const out = [
    p(
      `Whether ${who} was in the training stream or not changes the chance of anything the public can see — the published model versions, ` +
        `their predictions and this page's public figures — by at most a factor of e^ε = ${Math.exp(e.spent).toFixed(2)} ` +
        `(ε = ${e.spent.toFixed(3)} spent so far), except with probability δ = ${budget.delta.toExponential()}.`,
    ),
    p(
      e.exhausted
        ? `The limit is ε = ${e.limit} and it has been reached: training has stopped, so the models cannot learn anything more about anyone.`
        : `The limit is ε = ${e.limit}: training stops before the next step would pass it (${e.remaining.toFixed(3)} left).`,
    ),
    p(
      `How: every ${m.stepEveryMessages} messages a training step runs on a random sample (each record joins with probability ${m.sampleRate}); ` +
        `each record's influence on a step is clipped to ${Number(m.clipNorm.toPrecision(3))} and Gaussian noise ${m.noiseMultiplier}× that size is added; ` +
        `the ${String(budget.accountant).toUpperCase()} accountant adds up what the ${m.steps} steps so far cost.`,
    ),
    p(
      'Not covered: what the operator sees — the counts, quarantine and update gate behind the admin token on this page, /metrics and the logs — ' +
        'and the timing of requests.' +
        (budget.screening.length > 0
          ? ` Screens that look across records (${budget.screening.map((s) => s.stage).join(', ')}) decide from other records' statistics and are outside the guarantee too.`
          : ''),
    ),
  ];
  if (budget.randomness === 'seeded') out.push(p('WARNING: DP_SEED is set, so the noise is reproducible and the guarantee does not hold.'));
  const latest = audit && audit.enabled ? audit.latest : null;
  if (latest) {
    out.push(
      p(
        `An independent check: the latest audit round attacked the published model with ${latest.canaries} planted canaries and showed an empirical ε of at least ` +
          `${latest.epsilonLowerBound.toFixed(3)} (95% confidence) — a real attack's lower bound, which must stay below the accountant's ε.${latest.alarm ? ' ALARM: it did not, twice in a row.' : ''}`,
      ),
    );
  }
  return out;
}
