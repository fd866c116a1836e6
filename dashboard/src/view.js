// Rendering: turns flag values into DOM. No flag logic here, only "given these values, draw".

import { ACCOUNTS, KPIS, MONTHS, REVENUE, REVENUE_LAST_YEAR } from './data.js';

const SVG_NS = 'http://www.w3.org/2000/svg';
const money = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD', maximumFractionDigits: 0 });

/** Creates an SVG element with attributes. */
function svg(tag, attrs = {}, children = []) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  node.append(...children);
  return node;
}

/** Creates an HTML element with attributes and text or children. */
function el(tag, attrs = {}, children = []) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  node.append(...children);
  return node;
}

export function renderKpis(container) {
  container.replaceChildren(
    ...KPIS.map((kpi) =>
      el('div', { class: 'card kpi' }, [
        el('div', { class: 'kpi-label' }, [kpi.label]),
        el('div', { class: 'kpi-value' }, [kpi.value]),
        el('div', { class: `kpi-delta ${kpi.good ? 'up' : 'down'}` }, [kpi.delta, ' vs October']),
      ]),
    ),
  );
}

const WIDTH = 640;
const HEIGHT = 240;
const PAD = { top: 16, right: 16, bottom: 28, left: 44 };

function scales(max) {
  const plotW = WIDTH - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const x = (i) => PAD.left + (i * plotW) / (MONTHS.length - 1);
  const y = (v) => PAD.top + plotH - (v / max) * plotH;
  return { x, y, plotW, plotH };
}

function axes(max, x, y, withGrid) {
  const nodes = [];
  for (let v = 0; v <= max; v += 100) {
    if (withGrid) nodes.push(svg('line', { class: 'gridline', x1: PAD.left, x2: WIDTH - PAD.right, y1: y(v), y2: y(v) }));
    nodes.push(svg('text', { class: 'axis', x: PAD.left - 8, y: y(v) + 4, 'text-anchor': 'end' }, [`$${v}k`]));
  }
  MONTHS.forEach((m, i) => nodes.push(svg('text', { class: 'axis', x: x(i), y: HEIGHT - 8, 'text-anchor': 'middle' }, [m])));
  return nodes;
}

/** The new chart (flag `new-chart` on): smoothed area chart comparing with last year. */
function newChart() {
  const max = 300;
  const { x, y } = scales(max);
  const points = (series) => series.map((v, i) => [x(i), y(v)]);
  const smooth = (pts) =>
    pts.reduce((d, [px, py], i) => {
      if (i === 0) return `M${px},${py}`;
      const [qx, qy] = pts[i - 1];
      const cx = (qx + px) / 2;
      return `${d} C${cx},${qy} ${cx},${py} ${px},${py}`;
    }, '');
  const current = smooth(points(REVENUE));
  const area = `${current} L${x(MONTHS.length - 1)},${y(0)} L${x(0)},${y(0)} Z`;
  const last = points(REVENUE).at(-1);
  return svg('svg', { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, class: 'chart chart-new', role: 'img', 'aria-label': 'Revenue trend' }, [
    svg('defs', {}, [
      svg('linearGradient', { id: 'area-fill', x1: 0, x2: 0, y1: 0, y2: 1 }, [
        svg('stop', { offset: '0%', 'stop-color': 'var(--accent)', 'stop-opacity': 0.35 }),
        svg('stop', { offset: '100%', 'stop-color': 'var(--accent)', 'stop-opacity': 0 }),
      ]),
    ]),
    ...axes(max, x, y, true),
    svg('path', { d: smooth(points(REVENUE_LAST_YEAR)), class: 'line-previous' }),
    svg('path', { d: area, fill: 'url(#area-fill)' }),
    svg('path', { d: current, class: 'line-current' }),
    svg('circle', { cx: last[0], cy: last[1], r: 5, class: 'line-dot' }),
  ]);
}

/** The legacy chart (flag `new-chart` off): plain monthly bars. */
function legacyChart() {
  const max = 300;
  const { y, plotW } = scales(max);
  const band = plotW / MONTHS.length;
  const x = (i) => PAD.left + (i + 0.5) * band;
  const barW = band * 0.6;
  return svg('svg', { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, class: 'chart chart-legacy', role: 'img', 'aria-label': 'Revenue bars' }, [
    ...axes(max, x, y, false),
    ...REVENUE.map((v, i) => svg('rect', { class: 'bar', x: x(i) - barW / 2, y: y(v), width: barW, height: y(0) - y(v) })),
  ]);
}

export function renderChart(container, badge, useNewChart) {
  container.dataset.variant = useNewChart ? 'new' : 'legacy';
  container.replaceChildren(useNewChart ? newChart() : legacyChart());
  badge.textContent = useNewChart ? 'New chart' : 'Classic chart';
  badge.className = `badge ${useNewChart ? 'badge-new' : ''}`;
  if (useNewChart) {
    container.append(
      el('div', { class: 'legend' }, [
        el('span', { class: 'key key-current' }, ['This year']),
        el('span', { class: 'key key-previous' }, ['Last year']),
      ]),
    );
  }
}

/** The accounts widget, shaped by `widget-config`: `{ title, limit, showTrend }`. */
export function renderAccounts(section, title, list, config) {
  title.textContent = config.title;
  section.dataset.limit = String(config.limit);
  section.dataset.trend = String(config.showTrend);
  list.replaceChildren(
    ...ACCOUNTS.slice(0, config.limit).map((account) => {
      const row = el('li', {}, [
        el('span', { class: 'account-name' }, [account.name]),
        el('span', { class: 'account-mrr' }, [money.format(account.mrr)]),
      ]);
      if (config.showTrend) {
        const sign = account.change >= 0 ? '+' : '';
        row.append(el('span', { class: `account-change ${account.change >= 0 ? 'up' : 'down'}` }, [`${sign}${account.change}%`]));
      }
      return row;
    }),
  );
}

/** Shows an element when its flag is on. */
export function renderToggle(element, show) {
  element.hidden = !show;
}

/** The kill switch `live-updates`: streaming, or the slow polling fallback. */
export function renderLiveUpdates(pill, live) {
  pill.dataset.live = String(live);
  pill.textContent = live ? 'Live' : 'Updates every 60 s';
}

/** The permission flag `internal-debug-panel`'s content: the last OFREP exchange. */
export function renderDebugPanel(list, lastRequest) {
  const rows = [
    ['Last OFREP request', lastRequest ? `${lastRequest.status} in ${lastRequest.ms.toFixed(0)} ms` : '—'],
    ['ETag', lastRequest?.etag ?? '—'],
    ['Requests since load', String(lastRequest?.count ?? 0)],
    ['Triggered by', lastRequest?.trigger ?? '—'],
  ];
  list.replaceChildren(...rows.flatMap(([term, value]) => [el('dt', {}, [term]), el('dd', {}, [el('code', {}, [value])])]));
}

/** The debug table: every flag the edge returned for this user, as the provider holds it. */
export function renderFlagTable(body, flags) {
  const rows = Object.values(flags)
    .sort((a, b) => a.key.localeCompare(b.key))
    .map((flag) =>
      el('tr', { 'data-flag': flag.key }, [
        el('td', {}, [el('code', {}, [flag.key])]),
        el('td', { class: 'value' }, [el('code', {}, [JSON.stringify(flag.value ?? null)])]),
        el('td', {}, [el('code', {}, [flag.variant ?? ''])]),
        el('td', {}, [el('span', { class: `reason reason-${(flag.reason ?? flag.errorCode ?? '').toLowerCase()}` }, [flag.reason ?? flag.errorCode ?? ''])]),
      ]),
    );
  body.replaceChildren(...rows);
}
