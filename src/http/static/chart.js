// A small SVG line chart for the status page: time on x, values on y, step lines (a figure holds its value until
// the next checkpoint changes it), optional horizontal reference lines (the ε limit) and point markers (the
// audit's rounds). Plain DOM, no library: the page must work offline and under a strict Content-Security-Policy,
// so colours come from classes in style.css, never from style attributes.
const NS = 'http://www.w3.org/2000/svg';
const H = 220;
const PAD = { left: 48, right: 12, top: 12, bottom: 26 };

function el(name, attrs, text) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs ?? {})) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

const clock = (t) => new Date(t).toTimeString().slice(0, 8);

/** Round tick steps (1, 2 or 5 × 10^k; whole numbers for counts), about `n` of them, the last one ≥ max. */
function ticks(max, integer, n = 4) {
  if (!(max > 0)) return [0, 1];
  const raw = max / n;
  const p = 10 ** Math.floor(Math.log10(raw));
  let step = [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw) ?? raw;
  if (integer) step = Math.max(1, Math.round(step));
  const out = [0];
  while (out.at(-1) < max) out.push(Number((out.length * step).toPrecision(12)));
  return out;
}

/**
 * Draw into `svg` (its contents are replaced).
 *   series:  [{ name, cls, points: [[timeMs, value], …] }]
 *   hlines:  [{ value, label, cls }]
 *   markers: [{ t, value, label, cls }]
 *   format:  tick label of a value; integer: ticks on whole numbers (counts)
 */
export function lineChart(svg, { series = [], hlines = [], markers = [], format = (v) => String(v), integer = false }) {
  svg.replaceChildren();
  // Drawn at the size it is shown, so that its text stays the page's size in a wide panel and a narrow one.
  const W = Math.max(320, Math.round(svg.clientWidth || svg.parentElement?.clientWidth || 640));
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.setAttribute('role', 'img');
  const times = [...series.flatMap((s) => s.points.map((p) => p[0])), ...markers.map((m) => m.t)];
  const values = [...series.flatMap((s) => s.points.map((p) => p[1])), ...hlines.map((h) => h.value), ...markers.map((m) => m.value)].filter(Number.isFinite);
  if (times.length === 0) {
    svg.append(el('text', { x: W / 2, y: H / 2, class: 'empty', 'text-anchor': 'middle' }, 'no samples yet: the first checkpoint adds one'));
    return;
  }
  let t0 = Math.min(...times);
  let t1 = Math.max(...times);
  if (t1 - t0 < 1000) [t0, t1] = [t0 - 30_000, t1 + 1000];
  const yTicks = ticks(Math.max(...values, 0) * 1.05, integer);
  const yMax = yTicks.at(-1) || 1;
  const x = (t) => PAD.left + ((t - t0) / (t1 - t0)) * (W - PAD.left - PAD.right);
  const y = (v) => H - PAD.bottom - (v / yMax) * (H - PAD.top - PAD.bottom);

  for (const v of yTicks) {
    svg.append(el('line', { x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v), class: 'grid' }));
    svg.append(el('text', { x: PAD.left - 6, y: y(v) + 4, class: 'tick', 'text-anchor': 'end' }, format(v)));
  }
  for (const t of [t0, (t0 + t1) / 2, t1]) {
    svg.append(el('text', { x: x(t), y: H - 8, class: 'tick', 'text-anchor': t === t0 ? 'start' : t === t1 ? 'end' : 'middle' }, clock(t)));
  }
  for (const h of hlines) {
    svg.append(el('line', { x1: PAD.left, x2: W - PAD.right, y1: y(h.value), y2: y(h.value), class: `hline ${h.cls ?? ''}` }));
    svg.append(el('text', { x: W - PAD.right - 4, y: y(h.value) - 4, class: `hlabel ${h.cls ?? ''}`, 'text-anchor': 'end' }, h.label));
  }
  for (const s of series) {
    const pts = [...s.points].sort((a, b) => a[0] - b[0]);
    const path = [];
    pts.forEach(([t, v], i) => {
      if (i > 0) path.push(`${x(t).toFixed(1)},${y(pts[i - 1][1]).toFixed(1)}`);
      path.push(`${x(t).toFixed(1)},${y(v).toFixed(1)}`);
    });
    svg.append(el('polyline', { points: path.join(' '), class: `line ${s.cls}`, 'data-series': s.name, 'data-points': pts.length }));
    if (pts.length === 1) svg.append(el('circle', { cx: x(pts[0][0]), cy: y(pts[0][1]), r: 3, class: `dot ${s.cls}` }));
  }
  for (const m of markers) {
    const g = el('g', { class: `marker ${m.cls ?? ''}` });
    g.append(el('circle', { cx: x(m.t), cy: y(m.value), r: 4 }));
    g.append(el('title', {}, m.label));
    svg.append(g);
  }
}

/** A legend (HTML) for the same series and lines, with the colour classes of the chart. */
export function legend(container, entries) {
  container.replaceChildren(
    ...entries.map(({ name, cls, kind = 'line' }) => {
      const item = document.createElement('span');
      item.className = 'key';
      const swatch = document.createElement('i');
      swatch.className = `swatch ${kind} ${cls}`;
      item.append(swatch, document.createTextNode(name));
      return item;
    }),
  );
}
