// The status page's panels, each drawn from the JSON the page fetched (app.js). Public panels use public answers
// only; operator panels use the operator half of /v1/history and the `detail` of /v1/model, which the sidecar
// sends only with the admin token (docs/privacy.md, "the release boundary").
import { legend, lineChart } from './chart.js';

const $ = (id) => document.getElementById(id);
const int = (n) => Math.round(n).toLocaleString('en-US');
const time = (iso) => (iso ? new Date(iso).toLocaleTimeString('en-GB') : '—');
const ms = (iso) => new Date(iso).getTime();

function cell(tag, text, cls) {
  const e = document.createElement(tag);
  e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

function row(cells, attrs = {}) {
  const tr = document.createElement('tr');
  for (const [k, v] of Object.entries(attrs)) tr.setAttribute(k, v);
  tr.append(...cells);
  return tr;
}

function table(id, head, rows) {
  const t = $(id);
  const thead = document.createElement('thead');
  thead.append(row(head.map((h) => cell('th', h))));
  const tbody = document.createElement('tbody');
  tbody.append(...rows);
  t.replaceChildren(thead, tbody);
}

/** ε spent over time against the limit, with the audit's empirical lower bounds as points. */
export function privacyPanel(budget, audit, history) {
  const e = budget.epsilon;
  $('eps-spent').textContent = e ? e.spent.toFixed(3) : 'none';
  $('eps-limit').textContent = e ? String(e.limit) : '—';
  $('eps-remaining').textContent = e ? `${e.remaining.toFixed(3)} left${e.exhausted ? ' — limit reached, training stopped' : ''}` : 'training is not private';
  $('steps').textContent = budget.mechanism === 'none' ? '—' : int(budget.mechanism.steps);
  $('eps-meta').textContent = e
    ? `δ = ${budget.delta.toExponential()}, per ${budget.unit}, ${String(budget.accountant).toUpperCase()} accountant; ${budget.updatedAt ? `as of the checkpoint at ${time(budget.updatedAt)}` : 'no checkpoint yet'}`
    : '';
  const latest = audit.enabled ? audit.latest : null;
  $('audit-bound').textContent = latest ? latest.epsilonLowerBound.toFixed(3) : '—';
  $('audit-line').textContent = !audit.enabled
    ? 'audit off (AUDIT_CANARIES unset)'
    : latest
      ? `round ${latest.round}, 95%; vs accountant ε ${latest.epsilonAccounted === null ? '—' : latest.epsilonAccounted.toFixed(3)}${latest.alarm ? ' — ALARM' : ''}`
      : 'no round completed yet';
  const points = history.public.filter((s) => s.epsilonSpent !== null).map((s) => [ms(s.at), s.epsilonSpent]);
  const rounds = audit.enabled ? audit.history : [];
  lineChart($('eps-chart'), {
    series: [{ name: 'ε spent', cls: 's0', points }],
    hlines: e ? [{ value: e.limit, label: `limit ${e.limit}`, cls: 'limit' }] : [],
    markers: rounds.map((r) => ({ t: ms(r.completedAt), value: r.epsilonLowerBound, cls: 'audit', label: `audit round ${r.round}: empirical ε ≥ ${r.epsilonLowerBound.toFixed(3)}` })),
    format: (v) => (v === 0 ? '0' : v.toFixed(v < 1 ? 2 : 1)),
  });
  legend($('eps-legend'), [
    { name: 'ε spent (accountant)', cls: 's0' },
    { name: 'ε limit', cls: 'limit' },
    { name: 'audit: empirical ε lower bound (95%)', cls: 'audit', kind: 'dot' },
  ]);
}

/** Show or hide an operator panel's body, saying why when hidden. */
export function operatorGate(id, visible, why) {
  const panel = $(id);
  panel.classList.toggle('locked', !visible);
  panel.querySelector('.hidden-note').textContent = visible ? '' : why;
}

const OUTCOMES = [
  ['trained', 's0'],
  ['quarantined', 's1'],
  ['skipped', 's2'],
];

/** Operator samples plus the live figure (`now`) as the last point. */
const withLive = (samples, live, now) => [...samples, { ...live, at: new Date(now).toISOString() }];

export function recordsPanel(opHistory, records, now) {
  const samples = withLive(opHistory, records, now);
  table(
    'outcome-table',
    ['outcome', 'records'],
    OUTCOMES.map(([o]) => row([cell('td', o), cell('td', int(records[o]), 'n')], { 'data-outcome': o })),
  );
  const series = OUTCOMES.map(([o, cls]) => ({ name: o, cls, points: samples.map((s) => [ms(s.at), s[o]]) }));
  lineChart($('records-chart'), { series, format: int, integer: true });
  legend($('records-legend'), series);
}

export function quarantinePanel(opHistory, records, now) {
  const stages = Object.keys(records.quarantineStages).sort((a, b) => records.quarantineStages[b] - records.quarantineStages[a]);
  table(
    'stage-table',
    ['detector', 'quarantined'],
    stages.length === 0 ? [row([cell('td', 'nothing quarantined yet'), cell('td', '')])] : stages.map((s) => row([cell('td', s), cell('td', int(records.quarantineStages[s]), 'n')], { 'data-stage': s })),
  );
  const reasons = Object.entries(records.quarantineReasons).sort((a, b) => b[1] - a[1]);
  $('reasons').textContent = reasons.length ? `by reason: ${reasons.map(([r, n]) => `${r} ${int(n)}`).join(', ')}` : '';
  const samples = withLive(opHistory.map((s) => ({ at: s.at, quarantineStages: s.quarantineStages })), { quarantineStages: records.quarantineStages }, now);
  const series = stages.slice(0, 8).map((stage, i) => ({ name: stage, cls: `s${i}`, points: samples.map((s) => [ms(s.at), s.quarantineStages[stage] ?? 0]) }));
  lineChart($('stage-chart'), { series, format: int, integer: true });
  legend($('stage-legend'), series);
}

/**
 * The update gate as events: between two checkpoints, how many updates it kept and undone (its per-step
 * judgements) and the served model's canary accuracy; each rollback with its reason. Newest first.
 */
export function gatePanel(opHistory, gate) {
  if (!gate) {
    $('gate-summary').textContent = 'off: no CANARY_FILE, so no update is judged';
    $('gate-events').replaceChildren();
    return;
  }
  $('gate-summary').textContent = `${int(gate.accepted)} updates kept, ${int(gate.rejected)} undone, ${gate.alerts.length} rollback(s), on ${gate.canaries} trusted canaries`;
  const events = [];
  for (let i = 1; i < opHistory.length; i++) {
    const [a, b] = [opHistory[i - 1].gate, opHistory[i].gate];
    if (!a || !b) continue;
    const kept = b.accepted - a.accepted;
    const undone = b.rejected - a.rejected;
    if (kept <= 0 && undone <= 0) continue;
    const acc = b.canaryAccuracy === null ? '' : `; canary accuracy ${(100 * b.canaryAccuracy).toFixed(1)}%`;
    events.push({ at: opHistory[i].at, kind: undone > 0 ? 'undone' : 'kept', text: `${kept} kept, ${undone} undone${acc}` });
  }
  for (const alert of gate.alerts) {
    events.push({ at: alert.at, kind: 'rollback', text: `ROLLBACK: ${alert.message} (canary accuracy ${(100 * alert.canaryAccuracy).toFixed(1)}% → ${(100 * alert.restoredAccuracy).toFixed(1)}%)` });
  }
  events.sort((x, y) => ms(y.at) - ms(x.at));
  $('gate-events').replaceChildren(
    ...events.slice(0, 40).map((ev) => {
      const li = document.createElement('li');
      li.className = ev.kind;
      li.setAttribute('data-kind', ev.kind);
      li.append(cell('time', time(ev.at)), document.createTextNode(` ${ev.text}`));
      return li;
    }),
  );
  if (events.length === 0) $('gate-events').append(cell('li', 'no judgement since this process started'));
}

export function versionsPanel(list, served) {
  table(
    'versions-table',
    ['version', 'published', 'ε', 'gate', 'aliases', 'sha256'],
    list.versions.length === 0
      ? [row([Object.assign(cell('td', `none published yet (serving version ${served})`), { colSpan: 6 })])]
      : list.versions.map((v) =>
          row(
            [
              cell('td', `v${v.version}`),
              cell('td', time(v.createdAt)),
              cell('td', v.epsilon === null ? 'not private' : v.epsilon.toFixed(3), 'n'),
              cell('td', v.rolledBack === null ? '—' : v.rolledBack ? 'a rollback returned here' : 'kept'),
              cell('td', v.aliases.join(', ')),
              cell('td', v.weightsSha256.slice(0, 12), 'mono'),
            ],
            { 'data-version': String(v.version) },
          ),
        ),
  );
}
