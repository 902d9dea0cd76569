// Projector web console (served as /console.js): polls GET /api/projections every second and
// renders it, runs projection actions, lists dead letters and runs read-only SQL.
// Everything that came from the server is inserted with textContent, never as HTML: names,
// errors and query results come from plugins and event data, and must be treated as hostile.
'use strict';

const TOKEN_KEY = 'projector-token';
const POLL_MS = 1000;
const READY_EVERY = 5;        // check /ready every 5th poll: it is only a header hint
const SPARK_SAMPLES = 60;
const SPARK_W = 120, SPARK_H = 24;
const SVG_NS = 'http://www.w3.org/2000/svg';
const DASH = '–';
const ACTIONS = [
  ['pause', 'Pause'], ['resume', 'Resume'], ['reset', 'Reset'], ['rebuild', 'Rebuild'],
  ['rollback', 'Rollback'], ['dead-letters', 'Dead letters'],
];
// The destructive actions, and what confirm() says before them.
const CONFIRM = {
  reset: 'Reset %s? Its tables and dead letters are emptied and it projects again from the start of the log.',
  rebuild: 'Rebuild %s from the start beside the running version, and swap when caught up?',
  rollback: 'Roll %s back to its previous version?',
};

const $ = (sel) => document.querySelector(sel);

// ---- formatting ----------------------------------------------------------------------------

const intFmt = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const oneFmt = new Intl.NumberFormat(undefined, { minimumFractionDigits: 1, maximumFractionDigits: 1 });
const fmtInt = (n) => (n == null ? DASH : intFmt.format(n));
const fmtSecs = (s) => (s == null ? DASH : oneFmt.format(s));
const fmtRate = (r) => (r == null ? DASH : (r >= 100 ? intFmt : oneFmt).format(r));

function fmtDuration(s) {
  if (s == null) return DASH;
  if (s < 60) return oneFmt.format(s) + ' s';
  if (s < 3600) return oneFmt.format(s / 60) + ' min';
  return oneFmt.format(s / 3600) + ' h';
}

function fmtAgo(unixMs) {
  if (unixMs == null) return DASH;
  const s = Math.max(0, (Date.now() - unixMs) / 1000);
  if (s < 60) return Math.round(s) + ' s ago';
  if (s < 3600) return Math.round(s / 60) + ' min ago';
  if (s < 86400) return Math.round(s / 3600) + ' h ago';
  return Math.round(s / 86400) + ' d ago';
}

// Query results are shown as they are (no thousands separators): they are data, where ids and
// years with separators would mislead.
function fmtValue(v) {
  if (v == null) return DASH;
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text != null) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

// ---- the API ---------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

// One request to the API, with the token if one is stored. Resolves to the parsed JSON;
// rejects with ApiError carrying the server's {"error"} text when there is one.
function authHeaders() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { Authorization: 'Bearer ' + token } : {};
}

async function api(method, path, body) {
  const headers = { Accept: 'application/json', ...authHeaders() };
  const token = headers.Authorization;
  const init = { method, headers, cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, 'cannot reach the server (' + e.message + ')');
  }
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { /* not JSON: the text is the error */ }
  if (res.status === 401) askForToken(token);
  if (!res.ok) {
    const msg = data && typeof data.error === 'string' ? data.error : text.slice(0, 300);
    throw new ApiError(res.status, `${res.status} ${res.statusText}${msg ? ': ' + msg : ''}`);
  }
  return data;
}

function setPill(node, ok, text) {
  node.textContent = text;
  node.className = 'pill ' + (ok ? 'ok' : 'err');
  node.title = text;
}

function setStatus(text, isError) {
  const s = $('#status');
  s.textContent = text ? `${new Date().toLocaleTimeString()}  ${text}` : '';
  s.className = 'status' + (isError ? ' err' : '');
}

// ---- auth ------------------------------------------------------------------------------------

function askForToken(sentToken) {
  const form = $('#auth');
  if (!form.hidden) return;
  form.hidden = false;
  $('#auth-note').textContent = sentToken ? 'the stored token was refused' : '';
  $('#token').focus();
}

function saveToken(ev) {
  ev.preventDefault();
  const token = $('#token').value.trim();
  if (!token) return;
  sessionStorage.setItem(TOKEN_KEY, token);
  $('#token').value = '';
  $('#auth').hidden = true;
  poll();
}

// ---- the projections table ------------------------------------------------------------------

const rows = new Map();   // name -> { tr, cells, line, history }

// Rows are made once and then updated in place, so a button is never replaced under the
// pointer between polls.
function makeRow(name) {
  const tr = document.createElement('tr');
  tr.dataset.projection = name;
  const cells = {};
  for (const col of ['name', 'state', 'version', 'lag_events', 'lag_seconds', 'events_per_second',
                     'dead_letters', 'reload', 'spark', 'actions']) {
    const td = tr.insertCell();
    td.dataset.col = col;
    cells[col] = td;
  }
  for (const col of ['lag_events', 'lag_seconds', 'events_per_second', 'dead_letters']) {
    cells[col].classList.add('num');
  }
  cells.name.textContent = name;
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('class', 'spark');
  svg.setAttribute('viewBox', `0 0 ${SPARK_W} ${SPARK_H}`);
  svg.setAttribute('preserveAspectRatio', 'none');
  const base = document.createElementNS(SVG_NS, 'line');
  base.setAttribute('x1', 0); base.setAttribute('x2', SPARK_W);
  base.setAttribute('y1', SPARK_H - 0.5); base.setAttribute('y2', SPARK_H - 0.5);
  const line = document.createElementNS(SVG_NS, 'polyline');
  svg.append(base, line);
  cells.spark.append(svg);
  for (const [action, label] of ACTIONS) {
    const b = el('button', label);
    b.type = 'button';
    b.dataset.action = action;
    cells.actions.append(b);
  }
  return { tr, cells, line, history: [] };
}

function renderState(td, p) {
  td.replaceChildren();
  td.dataset.state = p.state;
  td.append(el('span', p.state, 'state state-' + String(p.state).replace(/\s+/g, '-')));
  const notes = [];
  if (p.rebuild) {
    const r = p.rebuild;
    const pct = r.progress == null ? DASH : Math.floor(r.progress * 100) + '%';
    notes.push([`${r.kind} → v${r.version}: ${pct}, eta ${fmtDuration(r.eta_seconds)}`, '']);
  }
  if (p.state === 'stopped' && p.stopped) notes.push([p.stopped, 'err']);
  if (p.error) notes.push([p.error, 'err']);
  if (p.source_error) notes.push(['source: ' + p.source_error, 'err']);
  for (const [text, cls] of notes) {
    const s = el('span', text, 'sub ' + cls);
    s.title = text;   // the full text; the cell clips it to one line
    td.append(s);
  }
}

function drawSpark(r) {
  const h = r.history;
  const max = Math.max(1, ...h.filter((v) => v != null));
  const step = SPARK_W / (SPARK_SAMPLES - 1);
  const pts = [];
  h.forEach((v, i) => {
    if (v == null) return;   // unknown lag: leave it out rather than draw it as zero
    const x = SPARK_W - (h.length - 1 - i) * step;
    const y = SPARK_H - 1 - (v / max) * (SPARK_H - 2);
    pts.push(x.toFixed(1) + ',' + y.toFixed(1));
  });
  r.line.setAttribute('points', pts.join(' '));
  r.cells.spark.title = `lag now ${fmtInt(h[h.length - 1])}, max ${fmtInt(max)} events`;
}

function updateRow(r, p) {
  const c = r.cells;
  r.tr.dataset.state = p.state;
  renderState(c.state, p);
  c.version.textContent = p.version == null ? DASH : 'v' + p.version;
  c.version.title = p.sha256 ? 'sha256 ' + p.sha256 : '';
  c.lag_events.textContent = (p.lag_events != null && p.lag_events_exact === false ? '≈ ' : '')
    + fmtInt(p.lag_events);
  c.lag_events.title = `position ${fmtInt(p.position)} of head ${fmtInt(p.head)}`;
  c.lag_seconds.textContent = fmtSecs(p.lag_seconds);
  c.events_per_second.textContent = fmtRate(p.events_per_second);
  c.dead_letters.textContent = fmtInt(p.dead_letters);
  c.dead_letters.classList.toggle('warn', p.dead_letters > 0);
  const last = p.reloads && p.reloads.length ? p.reloads[p.reloads.length - 1] : null;
  c.reload.textContent = last ? `${last.outcome} · ${fmtAgo(last.unix_ms)}` : DASH;
  c.reload.title = last ? [last.plugin_file, last.detail].filter(Boolean).join(': ') : '';
  // Only the applicable one of Pause and Resume is shown: Resume also restarts a stopped one.
  const resumable = !!p.paused || p.state === 'stopped';
  c.actions.querySelector('[data-action="pause"]').hidden = resumable;
  c.actions.querySelector('[data-action="resume"]').hidden = !resumable;
  r.history.push(p.lag_events);
  if (r.history.length > SPARK_SAMPLES) r.history.shift();
  drawSpark(r);
}

function renderProjections(data) {
  const tbody = $('#projections tbody');
  const seen = new Set();
  for (const p of data.projections || []) {
    seen.add(p.name);
    let r = rows.get(p.name);
    if (!r) { r = makeRow(p.name); rows.set(p.name, r); }
    updateRow(r, p);
    tbody.append(r.tr);   // re-appending keeps the server's order; it moves, never recreates
  }
  for (const [name, r] of rows) {
    if (!seen.has(name)) { r.tr.remove(); rows.delete(name); }
  }
  $('#no-projections').hidden = rows.size > 0;
  $('#head').textContent = data.head == null ? '' : 'head ' + fmtInt(data.head);
  const unnamed = data.unnamed_reloads || [];
  $('#unnamed-reloads').hidden = unnamed.length === 0;
  $('#unnamed-reloads ul').replaceChildren(...unnamed.slice(-5).map((u) =>
    el('li', `${fmtAgo(u.unix_ms)}: ${u.plugin_file || DASH} ${u.outcome}${u.detail ? ' (' + u.detail + ')' : ''}`)));
}

let pollTimer = null;
let pollCount = 0;
let polling = false, pollAgain = false;

// Polls chain with setTimeout rather than setInterval, so a slow server never has requests
// piling up; a poll asked for while one is running (after an action) runs right after it.
async function poll() {
  if (polling) { pollAgain = true; return; }
  polling = true;
  clearTimeout(pollTimer);
  try {
    renderProjections(await api('GET', '/api/projections'));
    setPill($('#conn'), true, 'ok');
  } catch (e) {
    setPill($('#conn'), false, e.status === 401 ? 'API token needed' : e.message);
  }
  if (pollCount++ % READY_EVERY === 0) checkReady();
  polling = false;
  if (pollAgain) { pollAgain = false; poll(); return; }
  pollTimer = setTimeout(poll, POLL_MS);
}

async function checkReady() {
  const pill = $('#ready');
  try {
    const res = await fetch('/ready', { cache: 'no-store', headers: authHeaders() });
    if (res.status === 401) { pill.hidden = true; return; }   // the token form says it already
    const data = await res.json().catch(() => ({}));
    const reasons = Array.isArray(data.reasons) ? data.reasons.join('; ') : '';
    setPill(pill, res.ok, res.ok ? 'ready' : 'not ready' + (reasons ? ': ' + reasons : ''));
    pill.hidden = false;
  } catch (_) {
    pill.hidden = true;   // the connection pill already says the server is unreachable
  }
}

async function runAction(name, action, button) {
  if (action === 'dead-letters') return showDeadLetters(name);
  if (CONFIRM[action] && !confirm(CONFIRM[action].replace('%s', name))) return;
  const buttons = button.parentElement.querySelectorAll('button');
  buttons.forEach((b) => { b.disabled = true; });
  try {
    const res = await api('POST', `/api/projections/${encodeURIComponent(name)}/${action}`, {});
    const msg = (res && res.message) || action + ' done';
    setStatus(msg.includes(name) ? msg : `${name}: ${msg}`, false);
  } catch (e) {
    setStatus(`${name}: ${action} failed: ${e.message}`, true);
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
  }
  poll();
}

// ---- dead letters ----------------------------------------------------------------------------

let dlRequest = 0;   // only the newest request may fill the panel

async function showDeadLetters(name) {
  const panel = $('#dead-letters');
  const req = ++dlRequest;
  panel.hidden = false;
  panel.dataset.projection = name;
  panel.dataset.state = 'loading';
  $('#dl-title').textContent = 'Dead letters: ' + name;
  $('#dl-total').textContent = 'loading…';
  $('#dl-error').textContent = '';
  $('#dl-none').hidden = true;
  $('#dl-table').hidden = true;
  panel.scrollIntoView({ block: 'nearest' });
  let data;
  try {
    data = await api('GET', `/api/projections/${encodeURIComponent(name)}/dead-letters?limit=100`);
  } catch (e) {
    if (req !== dlRequest) return;
    $('#dl-total').textContent = '';
    $('#dl-error').textContent = e.message;
    panel.dataset.state = 'error';
    return;
  }
  if (req !== dlRequest) return;
  const list = (data && data.dead_letters) || [];
  const total = data && data.total != null ? data.total : list.length;
  $('#dl-total').textContent = `${fmtInt(total)} in total` +
    (list.length < total ? `, showing the first ${fmtInt(list.length)}` : '');
  $('#dl-none').hidden = list.length > 0;
  $('#dl-table').hidden = list.length === 0;
  $('#dl-table tbody').replaceChildren(...list.map((d) => {
    const tr = document.createElement('tr');
    tr.dataset.id = d.id;
    const cells = [[d.id, 'num'], [d.stream, ''], [d.revision, 'num'], [d.event_type, ''],
                   [d.attempts, 'num'], [fmtAgo(d.last_failed_unix_ms), ''], [d.last_error, 'clip']];
    for (const [v, cls] of cells) {
      const td = el('td', fmtValue(v), cls);
      if (cls === 'clip') td.title = d.first_error && d.first_error !== d.last_error
        ? `last: ${d.last_error}\nfirst: ${d.first_error}` : fmtValue(v);
      tr.append(td);
    }
    return tr;
  }));
  panel.dataset.state = 'loaded';
}

// ---- SQL -------------------------------------------------------------------------------------

async function runSql() {
  const sql = $('#sql').value.trim();
  if (!sql) return;
  const button = $('#run-sql');
  const results = $('#results');
  button.disabled = true;
  results.dataset.state = 'running';
  $('#sql-meta').textContent = 'running…';
  $('#sql-error').textContent = '';
  const started = performance.now();
  try {
    renderResults(await api('POST', '/api/query', { sql }), performance.now() - started);
    results.dataset.state = 'done';
  } catch (e) {
    $('#sql-meta').textContent = '';
    $('#sql-error').textContent = e.message;
    results.dataset.state = 'error';
  } finally {
    button.disabled = false;
  }
}

function renderResults(data, ms) {
  const columns = (data && data.columns) || [];
  const rowsIn = (data && data.rows) || [];
  const head = document.createElement('tr');
  for (const col of columns) head.append(el('th', col));
  $('#results thead').replaceChildren(head);
  $('#results tbody').replaceChildren(...rowsIn.map((row) => {
    const tr = document.createElement('tr');
    columns.forEach((col, i) => {
      // Rows are objects keyed by column; arrays are accepted too, in column order.
      const v = Array.isArray(row) ? row[i] : row[col];
      tr.append(el('td', fmtValue(v), v == null ? 'null' : typeof v === 'number' ? 'num' : ''));
    });
    return tr;
  }));
  $('#sql-meta').textContent = `${fmtInt(rowsIn.length)} row${rowsIn.length === 1 ? '' : 's'}` +
    ` in ${Math.round(ms)} ms`;
  // Which committed position of each projection the answer reflects.
  const line = $('#positions');
  const positions = Object.entries((data && data.positions) || {});
  line.replaceChildren(el('span', 'read at: '));
  if (positions.length === 0) line.append(el('span', 'no projection'));
  positions.forEach(([name, pos], i) => {
    const s = el('span', `${name} @ ${fmtInt(pos)}`);
    s.dataset.projection = name;
    s.dataset.position = pos == null ? '' : pos;
    line.append(...(i ? [el('span', ', '), s] : [s]));
  });
}

// ---- wiring ----------------------------------------------------------------------------------

document.addEventListener('DOMContentLoaded', () => {
  $('#projections tbody').addEventListener('click', (ev) => {
    const b = ev.target.closest('button[data-action]');
    if (!b || b.disabled) return;
    runAction(b.closest('tr').dataset.projection, b.dataset.action, b);
  });
  $('#run-sql').addEventListener('click', runSql);
  $('#sql').addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); runSql(); }
  });
  $('#auth').addEventListener('submit', saveToken);
  $('#dl-close').addEventListener('click', () => {
    dlRequest++;
    $('#dead-letters').hidden = true;
  });
  poll();
});
