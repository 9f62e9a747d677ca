// The operations page: a live view of the gateway's workers and admission, from GET /console/api/events
// (one snapshot a second over SSE, read with fetch so the admin key travels in the Authorization header).
import { readEvents } from './sse.js';
import { tabStore, errorOf, describeHttpError, num, ago, el } from './common.js';

const KEY_STORE = 'ringserve.adminKey';
const RETRY_MS = 2000;
const $ = (id) => document.getElementById(id);
const keyInput = $('admin-key');
const status = $('live-status');
const errorBox = $('ops-error');
const rows = $('workers').tBodies[0];

let connection = null;
let retryTimer = 0;

keyInput.value = tabStore.get(KEY_STORE);
$('admin').addEventListener('submit', (e) => {
  e.preventDefault();
  tabStore.set(KEY_STORE, keyInput.value.trim());
  connect();
});

function setStatus(state, text) {
  status.dataset.state = state;
  status.textContent = text;
}

function showError(text) {
  errorBox.textContent = text;
  errorBox.hidden = !text;
}

async function connect() {
  clearTimeout(retryTimer);
  connection?.abort();
  const controller = new AbortController();
  connection = controller;
  const key = keyInput.value.trim();
  setStatus('connecting', 'connecting…');
  try {
    const response = await fetch('/console/api/events', {
      headers: { Accept: 'text/event-stream', ...(key ? { Authorization: `Bearer ${key}` } : {}) },
      signal: controller.signal,
    });
    if (!response.ok) {
      const text = describeHttpError(response.status, await errorOf(response), response.headers.get('Retry-After'));
      showError(text);
      if (response.status === 401 || response.status === 403) {
        // a key problem: retrying would fail the same way until the key changes
        setStatus('error', 'not connected');
        if (response.status === 401) keyInput.focus();
        return;
      }
      throw new Error(text);
    }
    showError('');
    setStatus('live', 'live');
    for await (const event of readEvents(response)) {
      if (event.event === 'state') render(JSON.parse(event.data));
    }
    throw new Error('the event stream ended');
  } catch (e) {
    if (controller.signal.aborted) return;
    setStatus('retrying', `disconnected (${e.message}); retrying…`);
    retryTimer = setTimeout(connect, RETRY_MS);
  }
}

function setField(name, value, title) {
  const dd = document.querySelector(`#gateway [data-field="${name}"]`);
  dd.textContent = value;
  if (title) dd.title = title; else dd.removeAttribute('title');
}

function breakdown(counts) {
  return Object.entries(counts.by ?? {}).map(([k, v]) => `${k}: ${num(v)}`).join(', ');
}

function render(s) {
  const g = s.gateway;
  setStatus('live', `live · ${new Date(s.time).toLocaleTimeString()}`);
  setField('model', g.model, g.apiAuth ? 'API keys required' : 'API open (no keys configured)');
  setField('workers', `${g.workersReady} / ${g.workersKnown}`);
  setField('inFlight', num(g.inFlight));
  setField('queue', `${num(g.queue.size)} / ${num(g.queue.capacity)}`, `longest wait ${num(g.queue.maxWaitMs)} ms`);
  setField('admitted', num(g.admitted));
  setField('rejected', num(g.rejected.total), breakdown(g.rejected));
  setField('rerouted', num(g.rerouted.total), breakdown(g.rerouted));
  setField('tokens', `${num(g.tokens.by?.in ?? 0)} / ${num(g.tokens.by?.out ?? 0)}`);
  renderWorkers(s.workers, Date.parse(s.time));
}

/** Why a worker is not ready, from what the gateway knows. */
function notReadyReason(w) {
  if (w.incompatibility) return 'another model';
  if (!w.model) return 'no info yet';
  if (w.draining) return 'draining';
  if (!w.serving) return 'not serving';
  if (w.breaker.state === 'OPEN' || w.breaker.state === 'FORCED_OPEN') return 'circuit open';
  return 'not ready';
}

const COLUMNS = ['address', 'model', 'backend', 'layers', 'state', 'running', 'waiting', 'inFlight', 'kv', 'breaker', 'lastError'];

function renderWorkers(workers, now) {
  $('no-workers').hidden = workers.length > 0;
  const seen = new Set();
  for (const w of workers) {
    seen.add(w.address);
    let row = [...rows.rows].find((r) => r.dataset.address === w.address);
    if (!row) {
      row = el('tr', { 'data-address': w.address });
      for (const c of COLUMNS) {
        row.append(el(c === 'address' ? 'th' : 'td', { 'data-field': c, scope: c === 'address' ? 'row' : null,
          class: ['running', 'waiting', 'inFlight'].includes(c) ? 'n' : null }));
      }
      rows.append(row);
    }
    const cell = (c) => row.querySelector(`[data-field="${c}"]`);
    cell('address').textContent = w.address;
    cell('model').textContent = w.model ?? '–';
    cell('model').title = w.architecture ?? '';
    cell('backend').textContent = w.backend ? `${w.backend} · ${w.device || 'unknown device'}` : '–';
    cell('layers').textContent = w.layers ? `${w.layers.start}–${w.layers.end} of ${w.layers.total}` : '–';
    const state = cell('state');
    state.replaceChildren(el('span', { class: `badge ${w.ready ? 'ok' : 'bad'}`, text: w.ready ? 'ready' : notReadyReason(w) }));
    state.title = w.incompatibility ?? '';
    cell('running').textContent = num(w.running);
    cell('waiting').textContent = num(w.waiting);
    cell('inFlight').textContent = num(w.inFlight);
    const kv = cell('kv');
    const pct = `${num((w.kvUsage ?? 0) * 100, 1)} %`;
    kv.replaceChildren(el('meter', { min: 0, max: 1, value: w.kvUsage ?? 0, 'aria-label': `KV cache used: ${pct}` }),
      ` ${pct}`);
    kv.title = `${num(w.kvTotalBlocks - w.kvFreeBlocks)} of ${num(w.kvTotalBlocks)} blocks in use`;
    const b = w.breaker;
    const rate = b.failureRate >= 0 ? ` · ${num(b.failureRate, 1)} % failed` : '';
    cell('breaker').replaceChildren(el('span', { class: `badge ${b.state === 'CLOSED' ? 'ok' : b.state === 'HALF_OPEN' ? 'warn' : 'bad'}`,
      text: b.state.toLowerCase().replace('_', ' ') }), rate);
    const err = cell('lastError');
    if (w.lastError) {
      err.textContent = `${w.lastError.message} · ${ago(w.lastError.at, now)}`;
      err.title = w.lastError.at;
    } else {
      err.textContent = '–';
      err.removeAttribute('title');
    }
  }
  for (const row of [...rows.rows]) {
    if (!seen.has(row.dataset.address)) row.remove();
  }
}

connect();
