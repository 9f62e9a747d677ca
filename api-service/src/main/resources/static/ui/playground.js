// The playground: chats with the served model through POST /v1/chat/completions (stream: true), shows the
// reasoning apart from the answer, renders the answer as Markdown, and can stop a reply mid-stream.
import { renderMarkdown } from './markdown.js';
import { readEvents } from './sse.js';
import { tabStore, errorOf, describeHttpError, describeStreamError, num, el } from './common.js';

const KEY_STORE = 'ringserve.apiKey';
const $ = (id) => document.getElementById(id);

const ui = {
  key: $('api-key'), system: $('system-prompt'), temperature: $('temperature'), topP: $('top-p'), topK: $('top-k'),
  maxTokens: $('max-tokens'), seed: $('seed'), stop: $('stop-strings'), prompt: $('prompt'), composer: $('composer'),
  send: $('send'), stopButton: $('stop'), clear: $('clear'), conversation: $('conversation'), model: $('model-name'),
};

/** The turns sent as context: user messages and the answers (never the reasoning). */
let history = [];
let modelId = null;
/** The reply in progress: its AbortController, or null. */
let running = null;

ui.key.value = tabStore.get(KEY_STORE);
ui.key.addEventListener('input', () => {
  tabStore.set(KEY_STORE, ui.key.value.trim());
  modelId = null;
});

function authHeaders() {
  const key = ui.key.value.trim();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

/** The served model's id from GET /v1/models (needed as "model" in requests). */
async function resolveModel(signal) {
  if (modelId) return modelId;
  const r = await fetch('/v1/models', { headers: authHeaders(), signal });
  if (!r.ok) throw Object.assign(new Error(describeHttpError(r.status, await errorOf(r), r.headers.get('Retry-After'))), { shown: true });
  const body = await r.json();
  modelId = body.data?.[0]?.id ?? null;
  if (!modelId) throw Object.assign(new Error('The gateway lists no model.'), { shown: true });
  ui.model.textContent = `model: ${modelId}`;
  return modelId;
}

/** Numbers from the settings; empty fields are left out so the gateway applies the model's defaults. */
function samplingParameters() {
  const p = {};
  const number = (input, name, integer) => {
    const raw = input.value.trim();
    if (raw === '') return;
    const v = Number(raw);
    p[name] = Number.isFinite(v) ? (integer ? Math.trunc(v) : v) : raw;
  };
  number(ui.temperature, 'temperature');
  number(ui.topP, 'top_p');
  number(ui.topK, 'top_k', true);
  number(ui.maxTokens, 'max_tokens', true);
  number(ui.seed, 'seed', true);
  const stops = ui.stop.value.split('\n').filter((s) => s !== '');
  if (stops.length) p.stop = stops;
  return p;
}

function figure(name, label) {
  return [el('dt', { text: label }), el('dd', { 'data-figure': name, text: '–' })];
}

/** The DOM of one assistant reply. */
function replyView() {
  const reasoningText = el('div', { class: 'reasoning-text' });
  const reasoningStatus = el('span', { class: 'reasoning-status muted' });
  const reasoning = el('details', { class: 'reasoning', hidden: true },
    el('summary', {}, 'Reasoning ', reasoningStatus), reasoningText);
  const answer = el('div', { class: 'answer markdown' });
  const error = el('p', { class: 'error', role: 'alert', hidden: true });
  const figures = el('dl', { class: 'figures', 'aria-label': 'Figures of this reply' },
    ...figure('ttft', 'first token'), ...figure('rate', 'tokens/s'), ...figure('prompt', 'prompt tokens'),
    ...figure('completion', 'completion tokens'), ...figure('finish', 'finish'));
  const article = el('article', { class: 'message assistant', 'data-state': 'waiting', 'aria-busy': 'true' },
    el('h2', { class: 'visually-hidden', text: 'Reply' }), reasoning, answer, error, figures);
  return { article, reasoning, reasoningText, reasoningStatus, answer, error, figures };
}

function setFigure(view, name, value) {
  view.figures.querySelector(`[data-figure="${name}"]`).textContent = value;
}

function setBusy(busy) {
  ui.send.disabled = busy;
  ui.stopButton.disabled = !busy;
  ui.composer.setAttribute('aria-busy', String(busy));
}

async function send() {
  const text = ui.prompt.value;
  if (!text.trim() || running) return;
  $('empty-hint')?.remove();
  ui.conversation.append(el('article', { class: 'message user' },
    el('h2', { class: 'visually-hidden', text: 'You' }), el('p', { class: 'user-text', text })));
  ui.prompt.value = '';
  const view = replyView();
  ui.conversation.append(view.article);
  view.article.scrollIntoView({ block: 'end' });

  const controller = new AbortController();
  running = controller;
  setBusy(true);
  const turn = { role: 'user', content: text };
  const state = { reasoning: '', answer: '', chunks: 0, finish: null, usage: null, first: null, last: null,
    done: false, userToggled: false };
  // what this script last set the reasoning block to; any other toggle is the reader's
  let autoOpen = false;
  view.reasoning.addEventListener('toggle', () => { if (view.reasoning.open !== autoOpen) state.userToggled = true; });
  const started = performance.now();
  let frame = 0;
  const render = () => {
    frame = 0;
    if (state.reasoning) {
      view.reasoning.hidden = false;
      view.reasoningText.textContent = state.reasoning;
    }
    view.answer.innerHTML = renderMarkdown(state.answer);
    if (state.first !== null) {
      setFigure(view, 'ttft', `${num(state.first - started)} ms`);
      const seconds = ((state.last ?? state.first) - state.first) / 1000;
      const tokens = state.usage?.completion_tokens ?? state.chunks;
      if (seconds > 0 && tokens > 1) setFigure(view, 'rate', `${state.usage ? '' : '≈'}${num((tokens - 1) / seconds, 1)}`);
    }
    if (!state.usage) setFigure(view, 'completion', state.chunks ? `≈${num(state.chunks)}` : '–');
  };
  const schedule = () => { if (!frame) frame = requestAnimationFrame(render); };

  try {
    const model = await resolveModel(controller.signal);
    const messages = [];
    if (ui.system.value.trim()) messages.push({ role: 'system', content: ui.system.value });
    messages.push(...history, turn);
    const body = { model, messages, stream: true, stream_options: { include_usage: true }, ...samplingParameters() };
    view.article.dataset.state = 'waiting';
    const response = await fetch('/v1/chat/completions', {
      method: 'POST', headers: { 'Content-Type': 'application/json', Accept: 'text/event-stream', ...authHeaders() },
      body: JSON.stringify(body), signal: controller.signal,
    });
    if (!response.ok) {
      throw Object.assign(new Error(describeHttpError(response.status, await errorOf(response),
        response.headers.get('Retry-After'))), { shown: true });
    }
    view.article.dataset.state = 'streaming';
    view.reasoningStatus.textContent = '(thinking…)';
    autoOpen = true;
    view.reasoning.open = true;
    for await (const event of readEvents(response)) {
      if (event.data === '[DONE]') { state.done = true; break; }
      let chunk;
      try { chunk = JSON.parse(event.data); } catch { continue; }
      if (chunk.error) throw Object.assign(new Error(describeStreamError(chunk.error)), { shown: true });
      if (chunk.usage) state.usage = chunk.usage;
      for (const choice of chunk.choices ?? []) {
        const delta = choice.delta ?? {};
        const now = performance.now();
        if (delta.reasoning_content) {
          state.reasoning += delta.reasoning_content;
          state.chunks++;
          state.first ??= now;
          state.last = now;
        }
        if (delta.content) {
          if (!state.answer && !state.userToggled) {
            // the answer begins: fold the reasoning away unless the reader opened or closed it
            autoOpen = false;
            view.reasoning.open = false;
          }
          state.answer += delta.content;
          state.chunks++;
          state.first ??= now;
          state.last = now;
        }
        if (choice.finish_reason) state.finish = choice.finish_reason;
      }
      schedule();
    }
    if (!state.done) throw Object.assign(new Error('The stream ended before the reply was complete (no [DONE]).'), { shown: true });
    view.article.dataset.state = 'done';
    setFigure(view, 'finish', state.finish ?? '–');
    history.push(turn, { role: 'assistant', content: state.answer });
  } catch (e) {
    if (controller.signal.aborted) {
      view.article.dataset.state = 'stopped';
      setFigure(view, 'finish', 'stopped');
      view.error.className = 'notice';
      view.error.textContent = 'Stopped: the request was cancelled.';
      if (state.answer) history.push(turn, { role: 'assistant', content: state.answer });
    } else {
      view.article.dataset.state = 'error';
      setFigure(view, 'finish', state.finish ?? 'error');
      view.error.textContent = e.shown ? e.message : `Could not reach the gateway: ${e.message}`;
    }
    view.error.hidden = false;
  } finally {
    if (frame) cancelAnimationFrame(frame);
    render();
    if (state.usage) {
      setFigure(view, 'prompt', num(state.usage.prompt_tokens));
      setFigure(view, 'completion', num(state.usage.completion_tokens));
    }
    view.reasoningStatus.textContent = state.reasoning ? `(${num(state.reasoning.length)} characters)` : '';
    if (!state.reasoning) view.reasoning.hidden = true;
    if (!state.answer && !state.reasoning && view.article.dataset.state === 'done') {
      view.answer.textContent = '(empty reply)';
    } else if (!state.answer && view.article.dataset.state === 'done') {
      view.answer.innerHTML = '<p class="muted">(no answer: the reply ended while reasoning)</p>';
    }
    view.article.setAttribute('aria-busy', 'false');
    running = null;
    setBusy(false);
    ui.prompt.focus();
  }
}

ui.composer.addEventListener('submit', (e) => {
  e.preventDefault();
  send();
});
ui.prompt.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    send();
  }
});
ui.stopButton.addEventListener('click', () => running?.abort());
document.addEventListener('keydown', (e) => { if (e.key === 'Escape') running?.abort(); });
ui.clear.addEventListener('click', () => {
  running?.abort();
  history = [];
  ui.conversation.replaceChildren(el('p', { id: 'empty-hint', class: 'muted', text: 'New chat: nothing sent yet.' }));
  ui.prompt.focus();
});

// with a key kept for this tab, show the model's name at once (without one, after the first reply)
if (ui.key.value.trim()) resolveModel().catch(() => {});
