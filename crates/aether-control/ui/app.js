// Aether dashboard: a page of the control plane's JSON API.
//
// Served under a strict Content-Security-Policy (scripts and styles from
// this origin only, requests to this origin only). No library, no build
// step. Every value from the API reaches the page as text (textContent,
// text nodes, setAttribute of plain attributes): never as HTML.

const TOKEN_KEY = 'aether.adminToken';
const OVERVIEW_EVERY_MS = 5000;
const PAGE_EVERY_MS = 5000;
const EVENTS_EVERY_MS = 2000;
const EVENTS_KEPT = 300;
const FAILURES_SHOWN = 10;
const KINDS = ['execution_failed', 'function_stats', 'function_loaded', 'compile_failed',
  'function_removed', 'node_started', 'node_stopping', 'node_removed'];

// ---------------------------------------------------------------- DOM helpers

/** An element: attributes are set with setAttribute (`on*` keys become
 *  listeners), children are nodes or text. */
function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, kids);
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';
function s(tag, attrs, ...kids) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  append(el, kids);
  return el;
}

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

function append(el, kids) {
  for (const kid of kids.flat(Infinity)) {
    if (kid === null || kid === undefined || kid === false) continue;
    el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
}

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------- formatting

const pad = (n) => String(n).padStart(2, '0');

/** `2024-05-01 12:03:04` in local time, or the text itself if unparsable. */
function fmtTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function fmtHm(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : `${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function fmtAgo(iso) {
  const t = new Date(iso).getTime();
  if (!iso || Number.isNaN(t)) return '';
  const s = Math.max(0, Math.round((Date.now() - t) / 1000));
  if (s < 90) return `${s} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  if (s < 172800) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} days ago`;
}

function fmtInt(n) {
  return typeof n === 'number' && Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '—';
}

function fmtMs(x) {
  if (typeof x !== 'number' || !Number.isFinite(x)) return '—';
  if (x === 0) return '0 ms';
  if (x < 10) return `${x.toFixed(2)} ms`;
  if (x < 100) return `${x.toFixed(1)} ms`;
  return `${Math.round(x).toLocaleString('en-US')} ms`;
}

/** Short axis label for a number. */
function fmtAxis(x) {
  if (x >= 1e6) return `${+(x / 1e6).toFixed(1)}M`;
  if (x >= 1e4) return `${+(x / 1e3).toFixed(1)}k`;
  if (x >= 10 || Number.isInteger(x)) return String(Math.round(x * 10) / 10);
  return String(+x.toFixed(2));
}

/** Axis ticks from 0 past `max`: 2 to 5 steps of 1, 2 or 5 × 10^k. */
function ticks(max) {
  if (!(max > 0)) return [0, 1];
  const raw = max / 4;
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * p).find((v) => v >= raw);
  const n = Math.max(1, Math.ceil(max / step - 1e-9));
  return Array.from({ length: n + 1 }, (_, i) => i * step);
}

// ---------------------------------------------------------------- API

class AuthError extends Error {}
class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

/** A JSON call to the control plane; 401 shows the sign-in form. */
async function api(path, { method = 'GET', body } = {}) {
  const headers = { Accept: 'application/json' };
  const t = token();
  if (t) headers.Authorization = `Bearer ${t}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let resp;
  try {
    resp = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      credentials: 'omit',
      redirect: 'error',
    });
  } catch (e) {
    setConn(false, 'control plane unreachable');
    throw new ApiError(0, 'unreachable', `cannot reach the control plane (${e.message})`);
  }
  let data = null;
  try {
    data = await resp.json();
  } catch {
    data = null;
  }
  if (resp.status === 401) {
    signedOut(t ? 'The control plane refused the token: sign in again.' : '');
    throw new AuthError('unauthorized');
  }
  setConn(true);
  if (!resp.ok) {
    const err = (data && data.error) || {};
    throw new ApiError(resp.status, err.code || `http_${resp.status}`,
      err.message || `${method} ${path}: HTTP ${resp.status}`);
  }
  return data;
}

const enc = encodeURIComponent;

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const text = q.toString();
  return text ? `?${text}` : '';
}

/** The newest `limit` events matching `filters` (oldest first) and where to
 *  poll on from: `next_since`, the end of the log when none matches. */
async function newestEvents(filters, limit) {
  const body = await api(`/api/events${query({ ...filters, newest: true, limit })}`);
  return { events: body.events || [], next: typeof body.next_since === 'number' ? body.next_since : 0 };
}

/** Events matching `filters` after `since`, every page of them, keeping the
 *  newest `keep`; returns {events, next}. */
async function eventsAfter(since, filters, keep, maxPages = 20) {
  let events = [];
  let next = since;
  for (let page = 0; page < maxPages; page++) {
    const body = await api(`/api/events${query({ ...filters, since: next, limit: 1000 })}`);
    events = events.concat(body.events || []);
    if (events.length > keep) events = events.slice(events.length - keep);
    if (typeof body.next_since === 'number') next = body.next_since;
    if (!body.events || body.events.length < 1000) break;
  }
  return { events, next };
}

// ---------------------------------------------------------------- page state

let timers = [];
let generation = 0;

function stopTimers() {
  for (const t of timers) clearTimeout(t);
  timers = [];
  generation++;
}

/** Runs `fn` now and again `ms` after each run ends, until the page changes. */
function every(ms, fn) {
  const gen = generation;
  const run = async () => {
    if (gen !== generation) return;
    try {
      await fn();
    } catch (e) {
      if (e instanceof AuthError || gen !== generation) return;
      showError(e);
    }
    if (gen === generation) timers.push(setTimeout(run, ms));
  };
  run();
}

function setConn(up, text) {
  const el = $('conn');
  el.classList.toggle('down', !up);
  el.textContent = up ? `updated ${fmtTime(new Date().toISOString()).slice(11)}` : text;
}

function showError(e) {
  let banner = $('view-error');
  if (!banner) {
    banner = h('p', { id: 'view-error', class: 'banner', role: 'alert', 'data-testid': 'view-error' });
    $('view').prepend(banner);
  }
  banner.textContent = e instanceof ApiError ? `${e.message} (${e.code})` : String(e);
}

function clearError() {
  const banner = $('view-error');
  if (banner) banner.remove();
}

let flashTimer = null;
function flash(text, bad = false) {
  const el = $('flash');
  el.textContent = text;
  el.classList.toggle('bad', bad);
  el.hidden = false;
  clearTimeout(flashTimer);
  flashTimer = setTimeout(() => { el.hidden = true; }, 6000);
}

/** The page's own confirmation dialog; resolves to true on "Confirm". */
function confirmAction(text, okLabel) {
  const dialog = $('confirm-dialog');
  $('confirm-text').textContent = text;
  $('confirm-ok').textContent = okLabel;
  return new Promise((resolve) => {
    const done = (answer) => {
      $('confirm-ok').removeEventListener('click', ok);
      $('confirm-cancel').removeEventListener('click', cancel);
      dialog.removeEventListener('cancel', cancel);
      if (dialog.open) dialog.close();
      resolve(answer);
    };
    const ok = () => done(true);
    const cancel = (ev) => { if (ev) ev.preventDefault(); done(false); };
    $('confirm-ok').addEventListener('click', ok);
    $('confirm-cancel').addEventListener('click', cancel);
    dialog.addEventListener('cancel', cancel);
    dialog.showModal();
    $('confirm-cancel').focus();
  });
}

// ---------------------------------------------------------------- sign-in

function signedOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  stopTimers();
  $('view').replaceChildren();
  $('signout').hidden = true;
  $('nav').hidden = true;
  $('conn').textContent = '';
  $('signin').hidden = false;
  $('signin-error').textContent = message || '';
  $('signin-token').value = '';
  $('signin-token').focus();
}

function signedIn() {
  $('signin').hidden = true;
  $('nav').hidden = false;
  $('signout').hidden = !token();
  route();
}

/** Asks the control plane whether the page may read it (with the token
 *  kept, if any); false when sign-in is needed. */
async function probe() {
  try {
    await api('/api/overview');
    return true;
  } catch (e) {
    if (e instanceof AuthError) return false;
    return true; // Reachable or not, the pages say so themselves.
  }
}

async function onSignIn(ev) {
  ev.preventDefault();
  const value = $('signin-token').value.trim();
  if (!value) return;
  sessionStorage.setItem(TOKEN_KEY, value);
  $('signin-error').textContent = '';
  if (await probe()) signedIn();
}

async function onSignOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  stopTimers();
  $('view').replaceChildren();
  if (await probe()) signedIn();
}

// ---------------------------------------------------------------- charts

const CHART_W = 640;
const CHART_H = 210;
const M = { left: 52, right: 14, top: 12, bottom: 34 };

/** A chart of per-minute series: `bar` series are drawn as bars (later ones
 *  over earlier ones), `line` series as lines. */
function chart({ title, testid, minutes, series, unit, fmt }) {
  const fig = h('figure', { class: 'chart', 'data-testid': testid, id: testid });
  fig.append(h('figcaption', null, title));
  const n = minutes.length;
  if (n === 0) {
    fig.append(h('p', { class: 'empty' }, 'No figures reported yet.'));
    return fig;
  }
  const plotW = CHART_W - M.left - M.right;
  const plotH = CHART_H - M.top - M.bottom;
  let max = 0;
  for (const ser of series) for (const m of minutes) max = Math.max(max, Number(m[ser.key]) || 0);
  const marks = ticks(max);
  const top = marks[marks.length - 1];
  const x = (i) => M.left + (plotW * (i + 0.5)) / n;
  const y = (v) => M.top + plotH - (plotH * Math.min(v, top)) / top;
  const svg = s('svg', {
    viewBox: `0 0 ${CHART_W} ${CHART_H}`, role: 'img',
    'aria-label': `${title}, last ${n} minutes`,
  });
  svg.append(s('title', null, `${title}, last ${n} minutes`));
  for (const v of marks) {
    svg.append(
      s('line', { class: v === 0 ? 'axis' : 'grid', x1: M.left, x2: CHART_W - M.right, y1: y(v), y2: y(v) }),
      s('text', { x: M.left - 6, y: y(v) + 4, 'text-anchor': 'end' }, fmtAxis(v)),
    );
  }
  svg.append(s('line', { class: 'axis', x1: M.left, x2: M.left, y1: M.top, y2: M.top + plotH }));
  for (const i of [0, Math.floor(n / 4), Math.floor(n / 2), Math.floor((3 * n) / 4), n - 1]) {
    svg.append(
      s('line', { class: 'axis', x1: x(i), x2: x(i), y1: M.top + plotH, y2: M.top + plotH + 4 }),
      s('text', { x: x(i), y: M.top + plotH + 16, 'text-anchor': 'middle' }, fmtHm(minutes[i].start)),
    );
  }
  svg.append(
    s('text', { class: 'axis-title', x: M.left + plotW / 2, y: CHART_H - 3, 'text-anchor': 'middle' },
      'minute (local time)'),
    s('text', {
      class: 'axis-title', x: 12, y: M.top + plotH / 2, 'text-anchor': 'middle',
      transform: `rotate(-90 12 ${M.top + plotH / 2})`,
    }, unit),
  );
  const barW = Math.max(1, (plotW / n) * 0.75);
  for (const ser of series) {
    const g = s('g', { class: ser.cls, 'data-series': ser.key });
    if (ser.kind === 'bar') {
      minutes.forEach((m, i) => {
        const v = Number(m[ser.key]) || 0;
        if (v <= 0) return;
        g.append(s('rect', { x: x(i) - barW / 2, y: y(v), width: barW, height: M.top + plotH - y(v) },
          s('title', null, `${fmtHm(m.start)}: ${fmt(v)} ${ser.label}`)));
      });
    } else {
      // A minute without executions has no latency: the line breaks there
      // instead of dropping to 0.
      let run = [];
      const flush = () => {
        if (run.length > 1) g.append(s('polyline', { class: 'line', points: run.join(' ') }));
        run = [];
      };
      minutes.forEach((m, i) => {
        const v = Number(m[ser.key]) || 0;
        if (v > 0) run.push(`${x(i).toFixed(1)},${y(v).toFixed(1)}`);
        else flush();
      });
      flush();
      minutes.forEach((m, i) => {
        const v = Number(m[ser.key]) || 0;
        if (v <= 0) return;
        g.append(s('circle', { class: 'dot', cx: x(i), cy: y(v), r: 2.5 },
          s('title', null, `${fmtHm(m.start)}: ${ser.label} ${fmt(v)}`)));
      });
    }
    svg.append(g);
  }
  fig.append(svg);
  fig.append(h('div', { class: 'legend' },
    series.map((ser) => h('span', null, h('span', { class: `swatch ${ser.cls}` }), ser.label))));
  return fig;
}

function countChart(minutes, testid, what) {
  return chart({
    title: `Invocations and errors per minute${what}`,
    testid,
    minutes,
    unit: 'per minute',
    fmt: fmtInt,
    series: [
      { key: 'invocations', label: 'invocations', cls: 's-inv', kind: 'bar' },
      { key: 'errors', label: 'errors', cls: 's-err', kind: 'bar' },
    ],
  });
}

function latencyChart(minutes, testid, what) {
  return chart({
    title: `Latency per minute${what}`,
    testid,
    minutes,
    unit: 'ms',
    fmt: fmtMs,
    series: [
      { key: 'p50_ms', label: 'p50 (≈, weighted mean of edges)', cls: 's-p50', kind: 'line' },
      { key: 'p99_ms', label: 'p99 (max of edges)', cls: 's-p99', kind: 'line' },
    ],
  });
}

function card(label, value, { testid, note, cls } = {}) {
  return h('div', { class: `card ${cls || ''}`, 'data-testid': testid && `card-${testid}` },
    h('div', { class: 'label' }, label),
    h('div', { class: 'value', id: testid, 'data-testid': testid }, value),
    note ? h('div', { class: 'note' }, note) : null);
}

function table(headers, rows, attrs) {
  return h('table', attrs,
    h('thead', null, h('tr', null, headers.map((t) => {
      const [text, cls] = Array.isArray(t) ? t : [t, null];
      return h('th', { class: cls }, text);
    }))),
    h('tbody', null, rows));
}

// ---------------------------------------------------------------- pages

function pageShell(title, ...kids) {
  const view = $('view');
  view.replaceChildren(h('h1', { id: 'page-title' }, title), ...kids);
  document.title = 'Aether dashboard';
}

/** Replaces the contents of the element `id` (if the page still shows it). */
function fill(id, ...kids) {
  const el = $(id);
  if (el) el.replaceChildren(...kids.flat(Infinity).filter((k) => k !== null && k !== undefined));
}

function overviewPage() {
  pageShell('Overview',
    h('div', { id: 'overview-cards', class: 'cards', 'data-testid': 'overview-cards' }),
    h('div', { id: 'overview-charts', class: 'charts' }));
  every(OVERVIEW_EVERY_MS, async () => {
    const o = await api('/api/overview');
    clearError();
    const nodes = o.nodes || {};
    const hour = o.last_hour || {};
    fill('overview-cards',
      card('Edges online', fmtInt(nodes.online), { testid: 'edges-online', cls: 'ok' }),
      card('Edges offline', fmtInt(nodes.offline),
        { testid: 'edges-offline', cls: nodes.offline ? 'warn' : '', note: 'no heartbeat lately' }),
      card('Edges stopped', fmtInt(nodes.stopped), { testid: 'edges-stopped', note: 'shut down gracefully' }),
      card('Functions', fmtInt(o.functions), { testid: 'function-count' }),
      card('Invocations', fmtInt(hour.invocations), { testid: 'invocations-hour', note: 'last hour' }),
      card('Errors', fmtInt(hour.errors),
        { testid: 'errors-hour', cls: hour.errors ? 'bad' : '', note: 'last hour' }),
      card('p50 (≈)', fmtMs(hour.p50_ms), { testid: 'p50-hour', note: 'last hour, weighted mean of edges' }),
      card('p99 (max of edges)', fmtMs(hour.p99_ms), { testid: 'p99-hour', note: 'last hour, an upper bound' }));
    const minutes = o.minutes || [];
    fill('overview-charts',
      countChart(minutes, 'chart-overview-counts', ', all functions'),
      latencyChart(minutes, 'chart-overview-latency', ', all functions'));
  });
}

function functionsPage() {
  pageShell('Functions', h('div', { id: 'functions-table' }));
  every(PAGE_EVERY_MS, async () => {
    const body = await api('/api/functions');
    clearError();
    const fns = (body.functions || []).slice().sort((a, b) => String(a.name).localeCompare(String(b.name)));
    if (fns.length === 0) {
      fill('functions-table', h('p', { class: 'empty', 'data-testid': 'functions-empty' },
        'No functions deployed yet. Deploy one with `aether deploy` or POST /api/functions.'));
      return;
    }
    fill('functions-table', table(
      ['Name', 'Kind', ['Version', 'num'], ['Size', 'num'], 'sha256', 'Deployed at'],
      fns.map((f) => h('tr', { 'data-testid': 'function-row', 'data-name': f.name },
        h('td', null, h('a', { href: `#/functions/${enc(f.name)}`, 'data-testid': 'function-link' }, f.name)),
        h('td', null, f.kind || '—'),
        h('td', { class: 'num', 'data-testid': 'function-version' }, `v${f.version}`),
        h('td', { class: 'num' }, `${fmtInt(f.size_kb)} KiB`),
        h('td', { class: 'mono', title: f.sha256 }, String(f.sha256 || '').slice(0, 12)),
        h('td', { class: 'nowrap', title: f.uploaded_at }, fmtTime(f.uploaded_at)))),
      { id: 'functions', 'data-testid': 'functions' }));
  });
}

function limitsText(limits) {
  const l = limits || {};
  const parts = [];
  if (l.timeout) parts.push(`timeout ${l.timeout}`);
  if (l.memory) parts.push(`memory ${l.memory}`);
  return parts.length ? parts.join(', ') : 'edge defaults';
}

function functionPage(name) {
  pageShell(name,
    h('div', { class: 'fn-head' },
      h('span', { id: 'fn-current', class: 'muted', 'data-testid': 'fn-current' }),
      h('span', { class: 'spacer' }),
      h('a', { href: `#/events${query({ function: name })}` }, 'events of this function'),
      h('button', {
        id: 'delete-function', type: 'button', class: 'danger', 'data-testid': 'delete-function',
        onclick: () => deleteFunction(name),
      }, 'Delete')),
    h('div', { id: 'fn-cards', class: 'cards' }),
    h('div', { id: 'fn-charts', class: 'charts' }),
    h('h2', null, 'Versions'),
    h('div', { id: 'fn-versions' }),
    h('h2', null, 'Edges'),
    h('div', { id: 'fn-edges' }),
    h('h2', null, 'Last failures'),
    h('div', { id: 'fn-failures', 'data-testid': 'fn-failures' }));
  $('page-title').setAttribute('data-testid', 'function-name');
  every(PAGE_EVERY_MS, async () => {
    const [info, nodes, stats, failures] = await Promise.all([
      api(`/api/functions/${enc(name)}`),
      api('/api/nodes'),
      api(`/api/functions/${enc(name)}/stats`).catch((e) => {
        if (e instanceof AuthError) throw e;
        return null;
      }),
      recentFailures(name),
    ]);
    clearError();
    renderFunction(name, info, nodes, stats, failures);
  });
}

async function recentFailures(name) {
  const { events } = await newestEvents({ kind: 'execution_failed', function: name }, FAILURES_SHOWN);
  return events.reverse();
}

function renderFunction(name, info, nodes, stats, failures) {
  const current = info.current_version;
  fill('fn-current', `current version v${current}, ${info.versions.length} stored`);
  const st = stats || {};
  fill('fn-cards',
    card('Invocations', fmtInt(st.invocations), { testid: 'fn-invocations', note: 'reported since the control plane started' }),
    card('Errors', fmtInt(st.errors), { testid: 'fn-errors', cls: st.errors ? 'bad' : '' }),
    card('p50 (≈)', fmtMs(st.p50_ms), { testid: 'fn-p50', note: 'latest windows, weighted mean of edges' }),
    card('p99 (max of edges)', fmtMs(st.p99_ms), { testid: 'fn-p99', note: 'latest windows' }));
  const minutes = st.minutes || [];
  fill('fn-charts', countChart(minutes, 'chart-fn-counts', ''), latencyChart(minutes, 'chart-fn-latency', ''));

  const versions = info.versions.slice().reverse();
  fill('fn-versions', table(
    ['Version', 'sha256', ['Size', 'num'], 'Deployed at', 'Args', 'Env', 'Limits', ''],
    versions.map((v) => {
      const isCurrent = v.version === current;
      return h('tr', {
        class: isCurrent ? 'current' : null, 'data-testid': 'version-row', 'data-version': v.version,
        'data-current': isCurrent ? 'true' : 'false',
      },
      h('td', null, `v${v.version} `, isCurrent ? h('span', { class: 'badge current' }, 'current') : null),
      h('td', { class: 'mono', title: v.sha256 }, String(v.sha256 || '').slice(0, 12)),
      h('td', { class: 'num' }, `${fmtInt(v.size_kb)} KiB`),
      h('td', { class: 'nowrap', title: v.deployed_at }, fmtTime(v.deployed_at)),
      h('td', { class: 'mono' }, (v.args || []).map((a) => h('span', { class: 'tag' }, a))),
      // Keys only: values may be secrets.
      h('td', { class: 'mono' }, Object.keys(v.env || {}).map((k) => h('span', { class: 'tag' }, k))),
      h('td', null, limitsText(v.limits)),
      h('td', null, isCurrent ? null : h('button', {
        type: 'button', class: 'small secondary', id: `rollback-${v.version}`,
        'data-testid': `rollback-${v.version}`, onclick: () => rollback(name, v.version),
      }, 'Roll back')));
    }),
    { id: 'versions', 'data-testid': 'versions' }));

  const rows = (nodes || []).map((n) => {
    const held = n.functions ? n.functions[name] : undefined;
    const lagging = held !== undefined && held !== current;
    const per = (st.nodes || {})[n.node_id] || {};
    let state;
    if (held === undefined) state = h('span', { class: 'badge missing' }, 'not held');
    else if (lagging) state = h('span', { class: 'badge lagging' }, 'lagging');
    else state = h('span', { class: 'badge current' }, 'current');
    return h('tr', { class: lagging ? 'lagging' : null, 'data-testid': 'fn-edge-row', 'data-node': n.node_id },
      h('td', { class: 'mono' }, n.node_id),
      h('td', { class: `status-${n.status}` }, n.status),
      h('td', { 'data-testid': 'fn-edge-version' }, held === undefined ? '—' : `v${held}`),
      h('td', { 'data-testid': 'fn-edge-state' }, state),
      h('td', { class: 'num' }, fmtInt(per.invocations)),
      h('td', { class: 'num' }, fmtInt(per.errors)),
      h('td', { class: 'num' }, fmtMs(per.p50_ms)),
      h('td', { class: 'num' }, fmtMs(per.p99_ms)),
      h('td', { title: per.last_report }, per.last_report ? fmtAgo(per.last_report) : '—'));
  });
  fill('fn-edges', rows.length === 0 ? h('p', { class: 'empty' }, 'No edges registered.') : table(
    ['Edge', 'Status', 'Holds', '', ['Invocations', 'num'], ['Errors', 'num'], ['p50', 'num'], ['p99', 'num'], 'Last report'],
    rows, { id: 'fn-edges-table', 'data-testid': 'fn-edges-table' }));

  fill('fn-failures', failures.length === 0
    ? h('p', { class: 'empty' }, 'No failures in the recent event log.')
    : failures.map((ev) => {
      const d = ev.data || {};
      return h('div', { class: 'failure', 'data-testid': 'failure', 'data-id': ev.id },
        h('div', null, h('strong', null, String(d.code ?? 'error')), ': ', String(d.message ?? '')),
        h('div', { class: 'meta' },
          `#${ev.id} · ${fmtTime(ev.received_at)} · edge ${ev.node_id ?? '?'} · version ${d.version ?? '?'} · `
          + `${fmtMs(d.execution_time_ms)}`),
        d.stderr ? h('pre', { 'data-testid': 'failure-stderr' }, String(d.stderr)) : null);
    }));
}

async function rollback(name, version) {
  if (!(await confirmAction(`Roll ${name} back to version ${version}? Every edge will switch to it.`,
    `Roll back to v${version}`))) return;
  try {
    await api(`/api/functions/${enc(name)}/rollback`, { method: 'POST', body: { version } });
    flash(`${name} rolled back to v${version}.`);
  } catch (e) {
    if (!(e instanceof AuthError)) flash(`Roll back failed: ${e.message}`, true);
    return;
  }
  route();
}

async function deleteFunction(name) {
  if (!(await confirmAction(`Delete ${name} and all its versions? Every edge will stop serving it.`,
    `Delete ${name}`))) return;
  try {
    await api(`/api/functions/${enc(name)}`, { method: 'DELETE' });
    flash(`${name} deleted.`);
  } catch (e) {
    if (!(e instanceof AuthError)) flash(`Delete failed: ${e.message}`, true);
    return;
  }
  location.hash = '#/functions';
}

function nodesPage() {
  pageShell('Nodes', h('div', { id: 'nodes-table' }));
  every(PAGE_EVERY_MS, async () => {
    const [nodes, overview] = await Promise.all([
      api('/api/nodes'),
      api('/api/overview').catch((e) => {
        if (e instanceof AuthError) throw e;
        return {};
      }),
    ]);
    clearError();
    const stats = overview.node_stats || {};
    if (!nodes || nodes.length === 0) {
      fill('nodes-table', h('p', { class: 'empty' }, 'No edges registered yet.'));
      return;
    }
    fill('nodes-table', table(
      ['Edge', 'Status', 'URL', 'Last heartbeat', 'Registered', 'Versions held',
        ['Invocations, last hour', 'num'], ['Errors, last hour', 'num']],
      nodes.map((n) => {
        const held = Object.entries(n.functions || {});
        const st = stats[n.node_id] || {};
        return h('tr', { 'data-testid': 'node-row', 'data-node': n.node_id },
          h('td', { class: 'mono' }, n.node_id),
          h('td', null, h('span', { class: `badge status-${n.status}`, 'data-testid': 'node-status' }, n.status)),
          h('td', { class: 'mono' }, n.url),
          h('td', { class: 'nowrap', title: n.last_seen }, fmtTime(n.last_seen),
            h('div', { class: 'muted' }, fmtAgo(n.last_seen))),
          h('td', { class: 'nowrap', title: n.registered_at }, fmtTime(n.registered_at)),
          h('td', null, held.length === 0 ? h('span', { class: 'muted' }, 'none')
            : held.map(([fn, v]) => h('a', { class: 'tag', href: `#/functions/${enc(fn)}` }, `${fn} v${v}`))),
          h('td', { class: 'num', 'data-testid': 'node-invocations' }, fmtInt(st.invocations ?? 0)),
          h('td', { class: 'num', 'data-testid': 'node-errors' }, fmtInt(st.errors ?? 0)));
      }),
      { id: 'nodes', 'data-testid': 'nodes' }));
  });
}

function eventsPage(params) {
  const filters = {
    function: params.get('function') || '',
    node: params.get('node') || '',
    kind: params.get('kind') || '',
  };
  const input = (key, label, listId) => h('label', null, label,
    h('input', {
      id: `filter-${key}`, 'data-testid': `filter-${key}`, type: 'search', value: filters[key],
      list: listId, spellcheck: 'false', autocomplete: 'off', placeholder: 'any',
    }));
  pageShell('Events',
    h('div', { class: 'filters' },
      input('function', 'Function', 'functions-known'),
      input('node', 'Node', 'nodes-known'),
      input('kind', 'Kind', 'kinds-known'),
      h('span', { id: 'events-live', class: 'live', 'data-testid': 'events-live' },
        `live, every ${EVENTS_EVERY_MS / 1000} s`)),
    h('datalist', { id: 'functions-known' }),
    h('datalist', { id: 'nodes-known' }),
    h('datalist', { id: 'kinds-known' }, KINDS.map((k) => h('option', { value: k }))),
    h('p', { id: 'events-note', class: 'muted' }),
    table(['#', 'Received', 'Kind', 'Node', 'Function', 'Data'], [],
      { id: 'events-list', 'data-testid': 'events-list' }));
  api('/api/functions').then((b) => fill('functions-known',
    (b.functions || []).map((f) => h('option', { value: f.name })))).catch(() => {});
  api('/api/nodes').then((ns) => fill('nodes-known',
    (ns || []).map((n) => h('option', { value: n.node_id })))).catch(() => {});

  let debounce = null;
  for (const key of Object.keys(filters)) {
    $(`filter-${key}`).addEventListener('input', (ev) => {
      filters[key] = ev.target.value.trim();
      clearTimeout(debounce);
      debounce = setTimeout(() => {
        history.replaceState(null, '', `#/events${query(filters)}`);
        stopTimers();
        startTail(filters);
      }, 400);
    });
  }
  startTail(filters);
}

function startTail(filters) {
  const tbody = document.querySelector('#events-list tbody');
  tbody.replaceChildren();
  let since = null;
  let first = true;
  every(EVENTS_EVERY_MS, async () => {
    let events;
    let next;
    if (since === null) {
      ({ events, next } = await newestEvents(filters, EVENTS_KEPT));
      fill('events-note', `The newest ${EVENTS_KEPT} matching events at most, then new ones as they arrive.`);
    } else {
      ({ events, next } = await eventsAfter(since, filters, EVENTS_KEPT));
    }
    since = next;
    clearError();
    for (const ev of events) tbody.prepend(eventRow(ev, !first));
    while (tbody.rows.length > EVENTS_KEPT) tbody.deleteRow(-1);
    if (first && tbody.rows.length === 0) {
      tbody.append(h('tr', { class: 'placeholder' }, h('td', { colspan: 6, class: 'empty' }, 'No events yet.')));
    } else if (events.length > 0) {
      const placeholder = tbody.querySelector('tr.placeholder');
      if (placeholder) placeholder.remove();
    }
    first = false;
  });
}

function eventRow(ev, fresh) {
  let data;
  try {
    data = JSON.stringify(ev.data);
  } catch {
    data = String(ev.data);
  }
  return h('tr', { class: fresh ? 'fresh' : null, 'data-testid': 'event-row', 'data-id': ev.id, 'data-kind': ev.event },
    h('td', { class: 'num' }, String(ev.id)),
    h('td', { class: 'nowrap', title: ev.received_at }, fmtTime(ev.received_at)),
    h('td', { 'data-testid': 'event-kind' }, ev.event),
    h('td', { class: 'mono' }, ev.node_id ?? '—'),
    h('td', { 'data-testid': 'event-function' }, ev.function ?? '—'),
    h('td', null, h('pre', { 'data-testid': 'event-data' }, data)));
}

// ---------------------------------------------------------------- routing

function route() {
  stopTimers();
  const raw = location.hash.replace(/^#/, '') || '/';
  const [path, q] = raw.split('?', 2);
  const parts = path.split('/').filter(Boolean);
  const page = parts[0] || 'overview';
  for (const a of document.querySelectorAll('#nav a')) {
    a.classList.toggle('active', a.dataset.page === page);
  }
  if (page === 'functions' && parts.length > 1) {
    let name;
    try {
      name = decodeURIComponent(parts.slice(1).join('/'));
    } catch {
      name = parts.slice(1).join('/');
    }
    functionPage(name);
  } else if (page === 'functions') functionsPage();
  else if (page === 'nodes') nodesPage();
  else if (page === 'events') eventsPage(new URLSearchParams(q || ''));
  else overviewPage();
}

async function boot() {
  $('signin-form').addEventListener('submit', onSignIn);
  $('signout').addEventListener('click', onSignOut);
  window.addEventListener('hashchange', () => {
    if ($('signin').hidden) route();
  });
  if (await probe()) signedIn();
  else if ($('signin').hidden) signedOut('');
}

boot();
