// kvmesh's dashboard: polls this node's /v1/cluster and /metrics and draws
// the members, the placement (from its `drawing`, one renderer per shape),
// data movement and traffic. No build step, no external resources.
'use strict';

const CLUSTER_EVERY_MS = 1000;
const METRICS_EVERY_MS = 2000;
const SVG = 'http://www.w3.org/2000/svg';

/** Ten colors told apart easily (Tableau 10), then hues a golden angle apart. */
const PALETTE = [
  '#4e79a7',
  '#f28e2b',
  '#e15759',
  '#76b7b2',
  '#59a14f',
  '#edc948',
  '#b07aa1',
  '#ff9da7',
  '#9c755f',
  '#bab0ac',
];
/** Member id → its color: every member seen gets the next color, in id order as they appear. */
const colors = new Map();

function learnColors(ids) {
  for (const id of [...new Set(ids)].sort()) {
    if (colors.has(id)) continue;
    const n = colors.size;
    colors.set(id, n < PALETTE.length ? PALETTE[n] : `hsl(${(n * 137.508) % 360}, 60%, 52%)`);
  }
}

function colorOf(id) {
  if (!colors.has(id)) learnColors([id]);
  return colors.get(id);
}

function el(name, attrs = {}, text) {
  const node = document.createElement(name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function svgEl(name, attrs = {}, text) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** A small square in the member's color (set through the CSS object model: the page allows no inline styles). */
function swatch(id) {
  const node = el('span', { class: 'swatch' });
  node.style.background = colorOf(id);
  return node;
}

function setStatus(text, error = false) {
  const status = document.getElementById('status');
  status.textContent = text;
  status.className = error ? 'error' : '';
}

function renderMembers(view) {
  const body = document.querySelector('#members tbody');
  const rows = [...view.members].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  body.replaceChildren(
    ...rows.map((m) => {
      const tr = el('tr', { 'data-member': m.id, 'data-state': m.state });
      const id = el('td');
      id.append(swatch(m.id), m.id);
      if (m.id === view.self.id) id.append(' (this node)');
      const state = el('td');
      state.append(el('span', { class: `state state-${m.state}` }, m.state));
      tr.append(
        id,
        el('td', {}, m.role ?? ''),
        state,
        el('td', {}, String(m.incarnation ?? '')),
        el('td', { class: 'address' }, m.address),
      );
      return tr;
    }),
  );
}

function renderRing(drawing, svg) {
  const size = 420;
  const r = 160;
  const c = size / 2;
  svg.setAttribute('viewBox', `0 0 ${size} ${size}`);
  svg.append(svgEl('circle', { cx: c, cy: c, r, fill: 'none', stroke: 'currentColor', 'stroke-opacity': 0.25 }));
  const xy = (at, radius) => {
    const a = at * 2 * Math.PI - Math.PI / 2;
    return [c + radius * Math.cos(a), c + radius * Math.sin(a)];
  };
  for (const link of drawing.links ?? []) {
    const [x1, y1] = xy(link.from, r - 10);
    const [x2, y2] = xy(link.to, r - 10);
    svg.append(svgEl('line', { x1, y1, x2, y2, stroke: 'currentColor', 'stroke-opacity': 0.4, class: 'link' }));
    if (link.label) {
      const [lx, ly] = xy(link.to, r - 24);
      svg.append(svgEl('text', { x: lx, y: ly, class: 'bar-label', 'text-anchor': 'middle' }, link.label));
    }
  }
  const big = drawing.points.length <= 64;
  for (const p of drawing.points) {
    const [x1, y1] = xy(p.at, r - (big ? 0 : 8));
    const [x2, y2] = xy(p.at, r + (big ? 0 : 8));
    if (big) {
      svg.append(
        svgEl('circle', { cx: x1, cy: y1, r: 6, fill: colorOf(p.member), class: 'point', 'data-member': p.member }),
      );
      const [tx, ty] = xy(p.at, r + 20);
      svg.append(svgEl('text', { x: tx, y: ty, class: 'bar-label', 'text-anchor': 'middle' }, p.member));
    } else {
      svg.append(
        svgEl('line', {
          x1,
          y1,
          x2,
          y2,
          stroke: colorOf(p.member),
          'stroke-width': 2,
          class: 'point',
          'data-member': p.member,
        }),
      );
    }
  }
}

function renderBars(rows, svg) {
  const width = 560;
  const rowH = 26;
  const labelW = 190;
  const max = Math.max(...rows.map((row) => row.value), 1e-9);
  svg.setAttribute('viewBox', `0 0 ${width} ${rows.length * rowH + 6}`);
  rows.forEach((row, i) => {
    const y = i * rowH + 4;
    svg.append(svgEl('text', { x: 0, y: y + 15, class: 'bar-label' }, row.name));
    const barW = ((width - labelW - 90) * row.value) / max;
    let x = labelW;
    const parts = row.members.length > 0 ? row.members : [''];
    for (const member of parts) {
      const w = barW / parts.length;
      svg.append(
        svgEl('rect', {
          x,
          y,
          width: Math.max(w, 1),
          height: rowH - 8,
          fill: member ? colorOf(member) : 'gray',
          class: 'group',
          'data-member': member,
        }),
      );
      x += w;
    }
    svg.append(svgEl('text', { x: labelW + barW + 6, y: y + 15, class: 'bar-label' }, row.label ?? ''));
  });
}

const RENDERERS = {
  ring: renderRing,
  groups: (drawing, svg) =>
    renderBars(
      drawing.groups.map((g) => ({ name: g.id, members: g.members, value: g.weight, label: g.label ?? '' })),
      svg,
    ),
  buckets: (drawing, svg) =>
    renderBars(
      drawing.buckets.map((b) => ({
        name: `bucket ${b.index}`,
        members: b.members,
        value: b.size,
        label: `${b.size} / ${b.capacity}`,
      })),
      svg,
    ),
};

let lastDrawing = '';

function renderPlacement(view) {
  const placement = view.placement ?? {};
  const name = placement.strategy ?? placement.name ?? 'placement';
  const facts = [`${name}`, placement.mode, placement.epoch !== undefined ? `epoch ${placement.epoch}` : undefined];
  document.getElementById('placement-summary').textContent = facts.filter(Boolean).join(' · ');
  const drawing = placement.drawing;
  const text = JSON.stringify(drawing ?? null);
  if (text === lastDrawing) return;
  lastDrawing = text;
  const host = document.getElementById('drawing');
  const legend = document.getElementById('legend');
  const caption = document.getElementById('drawing-caption');
  const render = drawing && RENDERERS[drawing.shape];
  if (!render) {
    host.replaceChildren(el('p', {}, 'This placement does not say how it is drawn.'));
    legend.replaceChildren();
    caption.textContent = '';
    return;
  }
  const svg = svgEl('svg', { role: 'img', 'aria-label': drawing.caption, 'data-shape': drawing.shape });
  render(drawing, svg);
  host.replaceChildren(svg);
  caption.textContent = drawing.caption;
  const counts = new Map();
  const count = (id, n = 1) => id && counts.set(id, (counts.get(id) ?? 0) + n);
  if (drawing.shape === 'ring') for (const p of drawing.points) count(p.member);
  if (drawing.shape === 'groups') for (const g of drawing.groups) for (const m of g.members) count(m, g.weight);
  if (drawing.shape === 'buckets') for (const b of drawing.buckets) for (const m of b.members) count(m);
  legend.replaceChildren(
    ...[...counts.entries()]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([id, n]) => {
        const li = el('li');
        li.append(swatch(id), `${id} (${+n.toFixed(3)})`);
        return li;
      }),
  );
}

function describeList(target, entries) {
  const list = document.getElementById(target);
  list.replaceChildren(...entries.flatMap(([k, v]) => [el('dt', {}, k), el('dd', { 'data-key': k }, String(v))]));
}

function renderMovement(view) {
  const m = view.movement;
  if (!m) {
    describeList('movement', [['state', 'no KV service on this node']]);
    return;
  }
  describeList('movement', [
    ['state', m.state],
    ['moves planned / done', `${m.moves.planned} / ${m.moves.done}`],
    ['outgoing / incoming', `${m.moves.outgoing} / ${m.moves.incoming}`],
    ['keys copied / received / purged', `${m.keys.copied} / ${m.keys.received} / ${m.keys.purged}`],
    ['hints held / replayed', `${m.hints.held} / ${m.hints.replayed}`],
    ['anti-entropy passes / repaired', `${m.antiEntropy.passes} / ${m.antiEntropy.repaired}`],
    ['last error', m.lastError ? (m.lastError.message ?? JSON.stringify(m.lastError)) : 'none'],
  ]);
}

/** Prometheus text: every sample as { name, labels, value }. */
function parseMetrics(text) {
  const samples = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (match) samples.push({ name: match[1], labels: match[2] ?? '', value: Number(match[3]) });
  }
  return samples;
}

const sum = (samples, name, filter = () => true) =>
  samples.filter((s) => s.name === name && filter(s.labels)).reduce((total, s) => total + s.value, 0);

let previous;

function renderTraffic(samples, atMs) {
  const requests = sum(samples, 'kvmesh_http_requests_total');
  const seconds = sum(samples, 'kvmesh_http_request_duration_seconds_sum');
  const count = sum(samples, 'kvmesh_http_request_duration_seconds_count');
  const keys = sum(samples, 'kvmesh_keys');
  const entries = [['keys stored here', keys]];
  if (previous !== undefined) {
    const dt = (atMs - previous.atMs) / 1000;
    const n = count - previous.count;
    entries.push(['requests / s', ((requests - previous.requests) / dt).toFixed(1)]);
    entries.push(['mean latency', n > 0 ? `${(((seconds - previous.seconds) / n) * 1000).toFixed(2)} ms` : '–']);
  }
  entries.push(['requests since start', requests]);
  describeList('traffic', entries);
  previous = { atMs, requests, seconds, count };
}

async function pollCluster() {
  try {
    const res = await fetch('/v1/cluster', { cache: 'no-store' });
    if (!res.ok) throw new Error(`GET /v1/cluster answered ${res.status}`);
    const view = await res.json();
    learnColors(view.members.map((m) => m.id));
    document.getElementById('node').textContent = `node ${view.self.id} at ${view.self.address}`;
    renderMembers(view);
    renderPlacement(view);
    renderMovement(view);
    setStatus(`updated ${new Date().toLocaleTimeString()}`);
  } catch (err) {
    setStatus(`cannot reach this node: ${err.message}`, true);
  } finally {
    setTimeout(pollCluster, CLUSTER_EVERY_MS);
  }
}

async function pollMetrics() {
  try {
    const res = await fetch('/metrics', { cache: 'no-store' });
    if (res.ok) renderTraffic(parseMetrics(await res.text()), Date.now());
  } catch {
    // The cluster poll reports an unreachable node.
  } finally {
    setTimeout(pollMetrics, METRICS_EVERY_MS);
  }
}

void pollCluster();
void pollMetrics();
