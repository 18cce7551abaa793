// The Flint console: one page, a view per location hash (#/, #/functions/NAME, #/resources),
// each drawn from the JSON endpoints under /console/api/ and refreshed every two seconds; a
// function's logs follow as server-sent events. Data is only ever put in the page as text.
import { barChart } from './chart.js';

const POLL_MS = 2000;
const MAX_LOG_RECORDS = 500;
const session = { csrf: '', devMode: true };
let current = null; // the view being shown: { stop() }

// h builds an element: h('td', {class: 'num'}, 'text', child…).
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

async function api(path, opts = {}) {
  const headers = { ...(opts.headers || {}) };
  if (opts.method === 'POST' && session.csrf) headers['X-Flint-Csrf'] = session.csrf;
  const r = await fetch('/console/api/' + path, { credentials: 'same-origin', ...opts, headers });
  if (r.status === 401) {
    location.href = '/console/signin';
    throw new Error('signed out');
  }
  const body = await r.json();
  if (!r.ok) throw new Error(body.error || `HTTP ${r.status}`);
  return body;
}

function setStatus(text, isErr) {
  const el = document.getElementById('status');
  el.textContent = text;
  el.className = isErr ? 'error' : 'muted';
}

const fmtMs = (v) => !v ? '–' : v < 10 ? v.toFixed(2) + ' ms' : v < 1000 ? v.toFixed(1) + ' ms' : (v / 1000).toFixed(2) + ' s';
const fmtTime = (t) => new Date(t).toLocaleTimeString();

// poller calls fn now and every POLL_MS until stopped; errors show in the status line.
function poller(fn) {
  let stopped = false, timer = null;
  const tick = async () => {
    try {
      await fn();
      setStatus(`updated ${new Date().toLocaleTimeString()}`);
    } catch (e) {
      if (!stopped) setStatus(e.message, true);
    }
    if (!stopped) timer = setTimeout(tick, POLL_MS);
  };
  tick();
  return { stop() { stopped = true; clearTimeout(timer); } };
}

// ---- functions list ----

function functionsView(view) {
  let marker = '';
  const history = [];
  const body = h('tbody', { id: 'functions-body' });
  const pageInfo = h('span', { class: 'muted', id: 'page-info' });
  const prev = h('button', { id: 'prev-page', onclick: () => { marker = history.pop() || ''; refresh(); } }, '← Previous');
  const next = h('button', { id: 'next-page' }, 'Next →');
  let nextMarker = '';
  next.addEventListener('click', () => { history.push(marker); marker = nextMarker; refresh(); });
  const envs = h('div', { class: 'stats', id: 'environments' });
  view.replaceChildren(
    h('h1', {}, 'Functions'),
    h('p', { class: 'muted' }, 'Last hour on this node. Environments now:'), envs,
    h('table', { id: 'functions' },
      h('thead', {}, h('tr', {},
        h('th', {}, 'Function'), h('th', {}, 'Runtime'), h('th', { class: 'num' }, 'Memory'),
        h('th', { class: 'num' }, 'Invocations'), h('th', { class: 'num' }, 'Errors'),
        h('th', { class: 'num' }, 'p50'), h('th', { class: 'num' }, 'p99'), h('th', { class: 'num' }, 'Cold starts'))),
      body),
    h('div', { class: 'pager' }, prev, next, pageInfo));
  const load = async () => {
    const page = await api(`functions?limit=50${marker ? '&marker=' + encodeURIComponent(marker) : ''}`);
    nextMarker = page.nextMarker || '';
    prev.disabled = history.length === 0 && !marker;
    next.disabled = !nextMarker;
    pageInfo.textContent = `page ${history.length + 1} · ${page.functions.length} functions`;
    if (page.environments) renderEnvironments(envs, page.environments);
    body.replaceChildren(...page.functions.map((f) => h('tr', { 'data-name': f.name },
      h('td', {}, h('a', { href: '#/functions/' + encodeURIComponent(f.name) }, f.name)),
      h('td', {}, f.runtime || 'image'),
      h('td', { class: 'num' }, `${f.memorySize} MB`),
      h('td', { class: 'num invocations' }, f.stats.invocations),
      h('td', { class: 'num errors' + (f.stats.errors ? ' err' : '') }, f.stats.errors),
      h('td', { class: 'num p50' }, fmtMs(f.stats.p50Ms)),
      h('td', { class: 'num p99' }, fmtMs(f.stats.p99Ms)),
      h('td', { class: 'num cold' }, f.stats.coldStarts))));
    if (!page.functions.length) body.replaceChildren(h('tr', {}, h('td', { colspan: 8, class: 'muted' }, 'No functions yet.')));
  };
  let p = poller(load);
  const refresh = () => { p.stop(); p = poller(load); };
  return { stop: () => p.stop() };
}

function renderEnvironments(el, e, prefix = 'env-') {
  const states = prefix === 'env-' ? ['starting', 'idle', 'busy', 'frozen', 'provisioned', 'spares']
    : ['starting', 'idle', 'busy', 'frozen', 'provisioned'];
  el.replaceChildren(...states.map((k) =>
    h('div', { class: 'stat', id: prefix + k }, h('b', {}, e[k] ?? 0), h('span', {}, k))));
}

// ---- function page ----

function functionView(view, name) {
  const stat = (id, label) => h('div', { class: 'stat' }, h('b', { id }, '–'), h('span', {}, label));
  const charts = {
    rate: h('div', { id: 'chart-rate' }), errors: h('div', { id: 'chart-errors' }),
    duration: h('div', { id: 'chart-duration' }), concurrency: h('div', { id: 'chart-concurrency' }),
  };
  const config = h('dl', { class: 'config', id: 'config' });
  const versions = h('tbody', { id: 'versions' });
  const aliases = h('tbody', { id: 'aliases' });
  const recent = h('tbody', { id: 'recent' });
  const envs = h('div', { class: 'stats', id: 'environments' });
  const fnEnvs = h('div', { class: 'stats', id: 'function-environments' });
  const asyncLine = h('p', { id: 'async-queue', class: 'muted' }, 'none');
  const payload = h('textarea', { id: 'invoke-payload', spellcheck: 'false' });
  payload.value = '{\n  "hello": "flint"\n}';
  const qualifier = h('input', { id: 'invoke-qualifier', placeholder: '$LATEST, a version or an alias' });
  const result = h('div', { id: 'invoke-result' });
  const button = h('button', { class: 'primary', id: 'invoke-button' }, 'Invoke');
  button.addEventListener('click', async () => {
    button.disabled = true;
    result.replaceChildren(h('p', { class: 'muted' }, 'Invoking…'));
    try {
      const q = qualifier.value.trim();
      const out = await api(`functions/${encodeURIComponent(name)}/invoke${q ? '?qualifier=' + encodeURIComponent(q) : ''}`,
        { method: 'POST', body: payload.value, headers: { 'Content-Type': 'application/json' } });
      result.replaceChildren(
        h('p', {}, h('span', { class: 'pill ' + (out.functionError ? 'error' : 'success'), id: 'invoke-outcome' }, out.functionError || 'Succeeded'),
          ' request ', h('code', { id: 'invoke-request-id' }, out.requestId), ` · version ${out.executedVersion} · ${fmtMs(out.durationMs)}`),
        h('pre', { id: 'invoke-payload-out' }, out.payload),
        out.logResult ? h('pre', { id: 'invoke-log' }, atob(out.logResult)) : null);
    } catch (e) {
      result.replaceChildren(h('p', { class: 'error', id: 'invoke-error' }, e.message));
    } finally {
      button.disabled = false;
    }
  });
  const filter = h('input', { id: 'log-filter', placeholder: 'filter pattern: ERROR "a phrase" -exclude ?either ?or, { $.level = "ERROR" }' });
  const logView = h('pre', { id: 'log-view' });
  const logState = h('span', { class: 'muted', id: 'log-state' }, 'connecting…');
  const records = []; // { time, text, report }
  const drawLogs = () => {
    logView.replaceChildren(...records.map((r) => h('div', { class: 'log-record' },
      h('span', { class: 'log-time' }, fmtTime(r.time) + ' '), r.text)));
    logView.scrollTop = logView.scrollHeight;
  };

  view.replaceChildren(
    h('p', {}, h('a', { href: '#/' }, '← Functions')),
    h('h1', { id: 'function-name' }, name),
    h('div', { class: 'stats' },
      stat('stat-invocations', 'invocations (1 h)'), stat('stat-errors', 'errors'), stat('stat-p50', 'p50 duration'),
      stat('stat-p99', 'p99 duration'), stat('stat-cold', 'cold starts')),
    h('h2', {}, 'Last hour, per minute'),
    h('div', { class: 'charts' },
      h('div', { class: 'chart' }, h('h3', {}, 'Invocations'), charts.rate),
      h('div', { class: 'chart' }, h('h3', {}, 'Errors'), charts.errors),
      h('div', { class: 'chart' }, h('h3', {}, 'Duration p99 (ms)'), charts.duration),
      h('div', { class: 'chart' }, h('h3', {}, 'Concurrency (mean)'), charts.concurrency)),
    h('div', { class: 'grid2' },
      h('div', {},
        h('h2', {}, 'Invoke'),
        h('div', { class: 'card' }, payload, h('div', { class: 'toolbar' }, qualifier, button), result),
        h('h2', {}, 'Async invocations waiting'), asyncLine),
      h('div', {},
        h('h2', {}, 'Configuration'), h('div', { class: 'card' }, config),
        h('h2', {}, 'Environments of this function'), fnEnvs,
        h('h2', {}, 'Environments on this node (all functions)'), envs,
        h('h2', {}, 'Versions'),
        h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Version'), h('th', {}, 'Description'), h('th', {}, 'Last modified'))), versions),
        h('h2', {}, 'Aliases'),
        h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Alias'), h('th', {}, 'Version'), h('th', {}, 'Routing'))), aliases))),
    h('h2', {}, 'Recent invocations'),
    h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Time'), h('th', {}, 'Request ID'), h('th', {}, 'Version'),
      h('th', {}, 'Outcome'), h('th', { class: 'num' }, 'Duration'), h('th', {}, 'Start'), h('th', { class: 'num' }, 'Init duration'))), recent),
    h('h2', {}, 'Logs ', logState),
    h('div', { class: 'toolbar' }, filter),
    logView);

  let detail = null;
  const drawRecent = () => {
    if (!detail) return;
    recent.replaceChildren(...detail.recent.map((inv) => {
      return h('tr', {},
        h('td', {}, fmtTime(inv.time)),
        h('td', {}, h('code', {}, inv.requestId)),
        h('td', {}, inv.version),
        h('td', {}, h('span', { class: 'pill ' + inv.outcome }, inv.outcome)),
        h('td', { class: 'num' }, fmtMs(inv.durationMs)),
        h('td', {}, h('span', { class: 'pill ' + (inv.cold ? 'cold' : 'warm') }, inv.cold ? 'cold' : 'warm')),
        h('td', { class: 'num' }, inv.initMs ? fmtMs(inv.initMs) : ''));
    }));
    if (!detail.recent.length) recent.replaceChildren(h('tr', {}, h('td', { colspan: 7, class: 'muted' }, 'No invocations in this server\'s memory yet.')));
  };

  const load = async () => {
    const d = await api('functions/' + encodeURIComponent(name));
    detail = d;
    const s = d.stats;
    document.getElementById('stat-invocations').textContent = s.invocations;
    document.getElementById('stat-errors').textContent = s.errors;
    document.getElementById('stat-p50').textContent = fmtMs(s.p50Ms);
    document.getElementById('stat-p99').textContent = fmtMs(s.p99Ms);
    document.getElementById('stat-cold').textContent = s.coldStarts;
    barChart(charts.rate, d.series.map((p) => p.invocations));
    barChart(charts.errors, d.series.map((p) => p.errors), { color: '#c92a2a' });
    barChart(charts.duration, d.series.map((p) => p.p99Ms), { color: '#7048e8', unit: ' ms', digits: 1 });
    barChart(charts.concurrency, d.series.map((p) => p.concurrency), { color: '#2b8a3e', digits: 2 });
    const c = d.configuration;
    const rows = [['Runtime', c.Runtime || c.PackageType], ['Handler', c.Handler], ['Memory', `${c.MemorySize} MB`],
      ['Timeout', `${c.Timeout} s`], ['Architectures', (c.Architectures || []).join(', ')],
      ['Reserved concurrency', d.reservedConcurrency ?? 'none'], ['Log format', c.LoggingConfig ? c.LoggingConfig.LogFormat : 'Text'],
      ['Code SHA-256', c.CodeSha256], ['Last modified', c.LastModified], ['ARN', c.FunctionArn],
      ['Environment', c.Environment && c.Environment.Variables ? Object.keys(c.Environment.Variables).join(', ') : '']];
    config.replaceChildren(...rows.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v ?? '')]));
    versions.replaceChildren(...d.versions.map((v) => h('tr', {}, h('td', {}, v.Version), h('td', {}, v.Description), h('td', {}, v.LastModified))));
    aliases.replaceChildren(...d.aliases.map((a) => {
      const w = a.RoutingConfig && a.RoutingConfig.AdditionalVersionWeights || {};
      const extra = Object.values(w).reduce((x, y) => x + y, 0);
      const routing = [`${a.FunctionVersion}: ${Math.round((1 - extra) * 100)}%`,
        ...Object.entries(w).map(([v, x]) => `${v}: ${Math.round(x * 100)}%`)].join(' · ');
      return h('tr', {}, h('td', {}, a.Name), h('td', {}, a.FunctionVersion), h('td', {}, routing));
    }));
    if (!d.aliases.length) aliases.replaceChildren(h('tr', {}, h('td', { colspan: 3, class: 'muted' }, 'No aliases.')));
    if (d.environments) renderEnvironments(envs, d.environments);
    if (d.functionEnvironments) renderEnvironments(fnEnvs, d.functionEnvironments, 'fn-env-');
    asyncLine.textContent = d.async
      ? `${d.async.depth} queued, ${d.async.in_flight} running, oldest ${fmtMs(d.async.oldest_age_ns / 1e6)}`
      : 'none';
    drawRecent();
  };
  const p = poller(load);

  // The live tail: the server filters the records with the filter pattern (CloudWatch's
  // grammar, package cwlogs); a new pattern opens a new stream.
  let es = null;
  const follow = () => {
    if (es) es.close();
    const q = filter.value.trim();
    es = new EventSource(`/console/api/functions/${encodeURIComponent(name)}/logs` + (q ? `?filter=${encodeURIComponent(q)}` : ''));
    es.addEventListener('open', () => {
      // A (re)connection replays the newest records: start over rather than repeat them.
      records.length = 0;
      drawLogs();
      logState.textContent = 'live';
    });
    es.addEventListener('error', () => {
      logState.textContent = 'reconnecting…';
      api('session').catch(() => {}); // signed out (session ended): api goes to the sign-in page
    });
    es.addEventListener('record', (ev) => {
      records.push(JSON.parse(ev.data));
      if (records.length > MAX_LOG_RECORDS) records.shift();
      drawLogs();
    });
  };
  let typing = null;
  filter.addEventListener('input', () => {
    clearTimeout(typing);
    typing = setTimeout(follow, 300);
  });
  follow();
  return { stop() { p.stop(); clearTimeout(typing); es.close(); } };
}

// ---- queues, mappings, secrets ----

function resourcesView(view) {
  const asyncBody = h('tbody', { id: 'async' });
  const mappings = h('tbody', { id: 'mappings' });
  const secrets = h('tbody', { id: 'secrets' });
  view.replaceChildren(
    h('h1', {}, 'Queues, mappings & secrets'),
    h('h2', {}, 'Async invocation queue'),
    h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Function'), h('th', { class: 'num' }, 'Depth'),
      h('th', { class: 'num' }, 'In flight'), h('th', { class: 'num' }, 'Oldest event age'))), asyncBody),
    h('h2', {}, 'Event source mappings'),
    h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'UUID'), h('th', {}, 'Source'), h('th', {}, 'Function'),
      h('th', {}, 'State'), h('th', { class: 'num' }, 'Batch size'), h('th', { class: 'num' }, 'Records behind'),
      h('th', { class: 'num' }, 'Oldest record age'))), mappings),
    h('h2', {}, 'Secrets (names only)'),
    h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Name'), h('th', {}, 'Description'), h('th', {}, 'Last changed'))), secrets));
  const empty = (body, n, text) => body.replaceChildren(h('tr', {}, h('td', { colspan: n, class: 'muted' }, text)));
  const p = poller(async () => {
    const d = await api('resources');
    asyncBody.replaceChildren(...d.async.map((q) => h('tr', {}, h('td', {}, q.function), h('td', { class: 'num' }, q.depth),
      h('td', { class: 'num' }, q.in_flight), h('td', { class: 'num' }, fmtMs(q.oldest_age_ns / 1e6)))));
    if (!d.async.length) empty(asyncBody, 4, 'No events waiting.');
    mappings.replaceChildren(...d.mappings.map((m) => h('tr', {}, h('td', {}, h('code', {}, m.uuid)), h('td', {}, m.eventSourceArn),
      h('td', {}, m.functionArn.split(':').slice(6).join(':')), h('td', { title: m.stateReason || '' }, m.state), h('td', { class: 'num' }, m.batchSize),
      h('td', { class: 'num' }, m.behind ?? '–'), h('td', { class: 'num' }, m.oldestAgeMs == null ? '–' : fmtMs(m.oldestAgeMs)))));
    if (!d.mappings.length) empty(mappings, 7, 'No event source mappings.');
    secrets.replaceChildren(...d.secrets.map((s) => h('tr', {}, h('td', {}, s.name), h('td', {}, s.description || ''),
      h('td', {}, s.lastChangedDate ? new Date(s.lastChangedDate * 1000).toLocaleString() : ''))));
    if (!d.secrets.length) empty(secrets, 3, 'No secrets.');
  });
  return { stop: () => p.stop() };
}

function route() {
  if (current) current.stop();
  const view = document.getElementById('view');
  const hash = location.hash || '#/';
  let m;
  if ((m = hash.match(/^#\/functions\/(.+)$/))) current = functionView(view, decodeURIComponent(m[1]));
  else if (hash === '#/resources') current = resourcesView(view);
  else current = functionsView(view);
}

async function start() {
  try {
    Object.assign(session, await api('session'));
  } catch (e) {
    setStatus(e.message, true);
    return;
  }
  document.getElementById('who').textContent = session.devMode
    ? 'local development mode (no access keys)' : `signed in as ${session.accessKeyId}`;
  const signout = document.getElementById('signout');
  signout.hidden = session.devMode;
  signout.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    await fetch('/console/signout', { method: 'POST', credentials: 'same-origin', headers: { 'X-Flint-Csrf': session.csrf } });
    location.href = '/console/signin';
  });
  window.addEventListener('hashchange', route);
  route();
}

start();
