// Browser scenarios for the gateway's console, run one per process by ConsoleBrowserSystemTest:
//   node console-scenarios.mjs <scenario>
// Environment: REAL_URL (gateway in front of the CPU worker), SCRIPTED_URL (gateway in front of the scripted
// worker), API_KEY, ADMIN_KEY, SCREENSHOT_DIR (optional), CHROMIUM (default /usr/bin/chromium).
// Exit code 0 when the scenario passed; otherwise the failure is printed.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { launch } from './browser.mjs';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`environment variable ${name} is not set`);
  return v;
};
const TIMEOUT = 30_000;

/** Opens a page that fails the scenario on any uncaught script error. */
async function open(context, url) {
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.assertNoScriptErrors = () => assert.deepEqual(errors, [], 'script errors on the page');
  await page.goto(url);
  return page;
}

async function screenshot(page, name) {
  const dir = process.env.SCREENSHOT_DIR;
  if (!dir) return;
  mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: join(dir, name) });
  console.log(`screenshot: ${join(dir, name)}`);
}

/** Records, at every DOM change of the last reply, its state and the lengths of reasoning and answer. */
async function recordReply(page) {
  await page.evaluate(() => {
    window.__samples = [];
    new MutationObserver(() => {
      const a = [...document.querySelectorAll('article.assistant')].at(-1);
      if (!a) return;
      window.__samples.push({
        state: a.dataset.state,
        reasoning: a.querySelector('.reasoning-text').textContent.length,
        reasoningOpen: a.querySelector('details.reasoning').open,
        answer: a.querySelector('.answer').textContent.length,
      });
    }).observe(document.getElementById('conversation'), { subtree: true, childList: true, characterData: true, attributes: true });
  });
}

async function send(page, prompt) {
  await page.fill('#prompt', prompt);
  await page.press('#prompt', 'Enter');
}

const lastReply = (page) => page.locator('article.assistant').last();
const figure = (page, name) => lastReply(page).locator(`[data-figure="${name}"]`);

async function settings(page, values) {
  for (const [id, v] of Object.entries(values)) await page.fill(`#${id}`, String(v));
}

const scenarios = {
  /** The CPU worker's reasoning streams into the open reasoning block; the figures of the reply are shown. */
  async 'reasoning-streams'(context) {
    const page = await open(context, `${env('REAL_URL')}/`);
    await settings(page, { 'api-key': env('API_KEY'), temperature: 0, 'max-tokens': 160 });
    await recordReply(page);
    await send(page, 'What is a ring?');
    const reply = lastReply(page);
    await reply.and(page.locator('[data-state="done"]')).waitFor();
    const samples = await page.evaluate(() => window.__samples);
    const live = new Set(samples.filter((s) => s.state === 'streaming' && s.reasoning > 0).map((s) => s.reasoning));
    assert.ok(live.size >= 2, `reasoning should grow while streaming, saw lengths ${[...live]}`);
    assert.ok(samples.some((s) => s.state === 'streaming' && s.reasoningOpen), 'the reasoning block is open while it streams');
    assert.ok((await reply.locator('.reasoning-text').textContent()).length > 0);
    assert.match(await figure(page, 'ttft').textContent(), /^\d[\d,]* ms$/);
    assert.match(await figure(page, 'rate').textContent(), /^\d[\d,.]*$/);
    assert.match(await figure(page, 'prompt').textContent(), /^[1-9]\d*$/);
    const completion = Number(await figure(page, 'completion').textContent());
    assert.ok(completion > 1 && completion <= 160, `completion tokens ${completion}`);
    assert.match(await figure(page, 'finish').textContent(), /^(stop|length)$/);
    // the tiny model never writes </think>: the whole reply is reasoning, and the page says so
    const answer = await reply.locator('.answer').textContent();
    assert.ok(answer.length > 0, 'the answer area is never silently empty');
    assert.equal(await reply.locator('.error').isVisible(), false);
    page.assertNoScriptErrors();
  },

  /** A wrong API key: a readable 401 message in the reply, no stall. */
  async unauthorized(context) {
    const page = await open(context, `${env('REAL_URL')}/`);
    await settings(page, { 'api-key': 'sk-wrong' });
    await send(page, 'Hello?');
    const error = lastReply(page).locator('.error');
    await error.waitFor();
    assert.match(await error.textContent(), /^Unauthorized \(401\): Incorrect API key provided\. Check the key in the settings\.$/);
    assert.equal(await lastReply(page).getAttribute('data-state'), 'error');
    assert.equal(await page.locator('#send').isEnabled(), true, 'Send works again');
    page.assertNoScriptErrors();
  },

  /** A parameter out of range: 400 with the parameter named. */
  async 'bad-parameter'(context) {
    const page = await open(context, `${env('REAL_URL')}/`);
    await settings(page, { 'api-key': env('API_KEY'), temperature: 5 });
    await send(page, 'Hello?');
    const error = lastReply(page).locator('.error');
    await error.waitFor();
    const text = await error.textContent();
    assert.match(text, /^Bad request \(400\): .*temperature.* — parameter: temperature$/);
    page.assertNoScriptErrors();
  },

  /** The operations page: refused without the admin key, then the CPU worker listed as ready. */
  async operations(context) {
    const page = await open(context, `${env('REAL_URL')}/console`);
    const error = page.locator('#ops-error');
    await error.waitFor();
    assert.match(await error.textContent(), /^Unauthorized \(401\): An admin key is required/);
    await page.fill('#admin-key', 'wrong-admin-key');
    await page.click('#admin button[type="submit"]');
    await page.waitForFunction(() => document.getElementById('ops-error').textContent.includes('Incorrect admin key'));
    await page.fill('#admin-key', env('ADMIN_KEY'));
    await page.click('#admin button[type="submit"]');
    const row = page.locator('#workers tbody tr').first();
    await row.locator('[data-field="state"]', { hasText: 'ready' }).waitFor();
    assert.equal(await page.locator('#workers tbody tr').count(), 1);
    assert.equal(await error.isVisible(), false);
    assert.match(await row.locator('[data-field="address"]').textContent(), /^127\.0\.0\.1:\d+$/);
    assert.equal(await row.locator('[data-field="model"]').textContent(), 'tiny-ring-a');
    assert.match(await row.locator('[data-field="backend"]').textContent(), /^cpu · /);
    assert.equal(await row.locator('[data-field="layers"]').textContent(), '0–3 of 3');
    assert.equal(await row.locator('[data-field="running"]').textContent(), '0');
    assert.match(await row.locator('[data-field="kv"]').textContent(), /%$/);
    assert.match(await row.locator('[data-field="breaker"]').textContent(), /^closed/);
    assert.equal(await page.locator('#gateway [data-field="workers"]').textContent(), '1 / 1');
    assert.match(await page.locator('#gateway [data-field="queue"]').textContent(), /^0 \/ \d+/);
    // live: the status line's time moves on
    const before = await page.locator('#live-status').textContent();
    await page.waitForFunction((t) => document.getElementById('live-status').textContent !== t, before);
    assert.match(await page.locator('#live-status').textContent(), /^live · /);
    await screenshot(page, 'console-operations.png');
    page.assertNoScriptErrors();
  },

  /** Reasoning, then a Markdown answer from the scripted worker: rendered, and nothing in it runs. */
  async 'markdown-answer'(context) {
    const page = await open(context, `${env('SCRIPTED_URL')}/`);
    await settings(page, { 'api-key': env('API_KEY'), 'system-prompt': 'Answer in Markdown.', seed: 7 });
    await recordReply(page);
    await send(page, 'What is a ring? MARKDOWN');
    const reply = lastReply(page);
    await reply.and(page.locator('[data-state="done"]')).waitFor();
    const samples = await page.evaluate(() => window.__samples);
    const streaming = samples.filter((s) => s.state === 'streaming');
    assert.ok(new Set(streaming.map((s) => s.reasoning)).size >= 3, 'reasoning streams in');
    assert.ok(new Set(streaming.map((s) => s.answer)).size >= 3, 'the answer streams in');
    assert.ok(streaming.some((s) => s.reasoning > 0 && s.answer === 0 && s.reasoningOpen), 'reasoning shown open before the answer');
    assert.equal(await reply.locator('details.reasoning').evaluate((d) => d.open), false, 'folded once the answer began');
    assert.match(await reply.locator('.reasoning-text').textContent(), /^The user asks what a ring is/);
    const answer = reply.locator('.answer');
    assert.equal(await answer.locator('h2').textContent(), 'Rings in brief');
    assert.equal(await answer.locator('strong').first().textContent(), 'ring');
    assert.equal(await answer.locator('ul > li').count(), 3);
    assert.equal(await answer.locator('pre > code.language-java').textContent(),
      'int sum = a + b; // <script>window.__xss = 1</script>');
    const links = answer.locator('a');
    assert.equal(await links.count(), 1, 'only the https link is a link');
    assert.equal(await links.getAttribute('href'), 'https://en.wikipedia.org/wiki/Ring_(mathematics)');
    assert.equal(await answer.locator('script, img, iframe').count(), 0);
    assert.match(await answer.textContent(), /<img src=x onerror="window.__xss=1">/);
    assert.equal(await page.evaluate(() => window.__xss), undefined, 'nothing from the answer ran');
    assert.equal(await figure(page, 'finish').textContent(), 'stop');
    await page.locator('#prompt').fill('');
    await screenshot(page, 'console-playground.png');
    page.assertNoScriptErrors();
  },

  /** Stop mid-stream: the reply says so, and the operations page sees the worker's running count fall to 0. */
  async 'stop-frees-the-worker'(context) {
    const ops = await open(context, `${env('SCRIPTED_URL')}/console`);
    await ops.fill('#admin-key', env('ADMIN_KEY'));
    await ops.click('#admin button[type="submit"]');
    const row = ops.locator('#workers tbody tr').first();
    await row.locator('[data-field="state"]', { hasText: 'ready' }).waitFor();

    const page = await open(context, `${env('SCRIPTED_URL')}/`);
    await settings(page, { 'api-key': env('API_KEY'), 'max-tokens': 4000 });
    await send(page, 'Tell me everything. LONG');
    const reply = lastReply(page);
    await reply.locator('.reasoning-text').filter({ hasText: /\S/ }).waitFor();
    await ops.waitForFunction(() => document.querySelector('#workers tbody tr [data-field="running"]').textContent === '1');
    assert.equal(await row.locator('[data-field="inFlight"]').textContent(), '1');
    assert.equal(await page.locator('#stop').isEnabled(), true);
    await page.click('#stop');
    await reply.and(page.locator('[data-state="stopped"]')).waitFor();
    assert.equal(await figure(page, 'finish').textContent(), 'stopped');
    assert.match(await reply.locator('.notice').textContent(), /^Stopped: the request was cancelled\.$/);
    assert.equal(await page.locator('#send').isEnabled(), true);
    assert.equal(await page.locator('#stop').isEnabled(), false);
    const stoppedAt = Date.now();
    await ops.waitForFunction(() => document.querySelector('#workers tbody tr [data-field="running"]').textContent === '0',
      null, { timeout: 10_000 });
    console.log(`worker running count back to 0 ${Date.now() - stoppedAt} ms after stop`);
    assert.equal(await row.locator('[data-field="inFlight"]').textContent(), '0');
    ops.assertNoScriptErrors();
    page.assertNoScriptErrors();
  },

  /** An error event in the middle of the stream becomes a readable message next to what already arrived. */
  async 'mid-stream-error'(context) {
    const page = await open(context, `${env('SCRIPTED_URL')}/`);
    await settings(page, { 'api-key': env('API_KEY') });
    await send(page, 'Please FAIL halfway.');
    const reply = lastReply(page);
    await reply.and(page.locator('[data-state="error"]')).waitFor();
    assert.match(await reply.locator('.error').textContent(), /^The stream failed \(worker_failed\): The worker failed mid-generation/);
    assert.ok((await reply.locator('.reasoning-text').textContent()).length > 0, 'what arrived before the error stays');
    page.assertNoScriptErrors();
  },

  /** Over the per-key concurrency limit: 429 with the Retry-After time. */
  async 'rate-limited'(context) {
    const first = await open(context, `${env('SCRIPTED_URL')}/`);
    await settings(first, { 'api-key': env('API_KEY'), 'max-tokens': 4000 });
    await send(first, 'Keep going. LONG');
    await lastReply(first).locator('.reasoning-text').filter({ hasText: /\S/ }).waitFor();
    const second = await open(context, `${env('SCRIPTED_URL')}/`);
    await settings(second, { 'api-key': env('API_KEY') });
    await send(second, 'Me too?');
    const error = lastReply(second).locator('.error');
    await error.waitFor();
    assert.match(await error.textContent(), /^Too many requests \(429\): .+ Retry after \d+ s\.$/);
    await first.click('#stop');
    await lastReply(first).and(first.locator('[data-state="stopped"]')).waitFor();
    first.assertNoScriptErrors();
    second.assertNoScriptErrors();
  },
};

const name = process.argv[2];
if (!scenarios[name]) {
  console.error(`unknown scenario '${name}'; known: ${Object.keys(scenarios).join(', ')}`);
  process.exit(2);
}
const browser = await launch();
const started = Date.now();
try {
  await scenarios[name](browser.context);
  console.log(`scenario ${name} passed in ${Date.now() - started} ms`);
} catch (e) {
  console.error(`scenario ${name} failed after ${Date.now() - started} ms:\n${e.stack ?? e}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
