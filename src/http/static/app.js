// The status page's loop: fetch the sidecar's JSON answers every few seconds and redraw. The admin token, when
// the person types one, is kept in this tab's sessionStorage and sent as the admin API's bearer header; without it
// the page asks only for public answers, and the operator panels say they are hidden and why.
import { gatePanel, operatorGate, privacyPanel, quarantinePanel, recordsPanel, versionsPanel } from './panels.js';
import { plainWords } from './statement.js';

const REFRESH_MS = 3000;
const KEY = 'tayguard.adminToken';
const $ = (id) => document.getElementById(id);

const token = () => sessionStorage.getItem(KEY) ?? '';

async function get(path) {
  const headers = token() ? { authorization: `Bearer ${token()}` } : {};
  const res = await fetch(path, { headers, cache: 'no-store' });
  return { status: res.status, body: await res.json() };
}

function header(ready, model) {
  const pill = $('ready');
  pill.textContent = ready.body.status;
  pill.className = `pill ${ready.status === 200 ? 'ok' : 'bad'}`;
  pill.title = ready.body.reasons.map((r) => `${r.code}: ${r.message}`).join('\n');
  $('model-version').textContent = `v${model.version}`;
  $('model-meta').textContent = `${model.task}, ${model.inputDim.toLocaleString('en-US')} inputs, ${model.numClasses} classes, ${model.backend}; checkpoint #${model.checkpointSeq}`;
}

async function refresh() {
  // Relative to /ui/: works behind a proxy that mounts the sidecar under a path.
  const [ready, model, versions, history, budget, audit] = await Promise.all(
    ['../readyz', '../v1/model', '../v1/model/versions', '../v1/history', '../v1/privacy/budget', '../v1/privacy/audit'].map(get),
  );
  const now = Date.now();
  header(ready, model.body);
  privacyPanel(budget.body, audit.body, history.body);
  versionsPanel(versions.body, model.body.version);
  const detail = model.body.detail;
  const operator = detail !== undefined && Array.isArray(history.body.operator);
  const why = token()
    ? 'Hidden: the sidecar did not accept this token (OPERATOR_AUTH=token). Check ADMIN_TOKEN.'
    : 'Hidden: operator-only (OPERATOR_AUTH=token; docs/privacy.md, "the release boundary"). Enter the admin token above to see it.';
  for (const id of ['records', 'quarantine', 'gate']) operatorGate(id, operator, why);
  if (operator) {
    recordsPanel(history.body.operator, detail.records, now);
    quarantinePanel(history.body.operator, detail.records, now);
    gatePanel(history.body.operator, detail.gate);
  }
  $('plain').replaceChildren(...plainWords(budget.body, audit.body));
  $('statement-text').textContent = budget.body.statement;
  $('history-note').textContent = `Charts: ${history.body.note}; the last point of the operator charts is live.`;
  $('refreshed').textContent = `updated ${new Date(now).toLocaleTimeString('en-GB')}, every ${REFRESH_MS / 1000} s`;
  document.body.dataset.operator = String(operator);
  document.body.dataset.loaded = 'true';
}

async function loop() {
  try {
    await refresh();
    $('refreshed').classList.remove('bad');
  } catch (e) {
    // A sidecar that restarts or is unreachable: say so and keep trying (a warning, not an error: it is expected).
    $('refreshed').textContent = `cannot reach the sidecar (${e.message}); retrying`;
    $('refreshed').classList.add('bad');
    console.warn('tayguard status page: refresh failed', e);
  }
  setTimeout(loop, REFRESH_MS);
}

$('token-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const value = $('token').value.trim();
  if (value) sessionStorage.setItem(KEY, value);
  $('token').value = '';
  $('token-state').textContent = value ? 'token set for this tab' : '';
  void refresh();
});
$('forget').addEventListener('click', () => {
  sessionStorage.removeItem(KEY);
  $('token-state').textContent = '';
  void refresh();
});
$('token-state').textContent = token() ? 'token set for this tab' : '';
void loop();
