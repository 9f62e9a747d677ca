// The official OpenAI Node SDK against a running ring-serve gateway. Run by NodeOpenAiSdkSystemTest
// (node --test) with RINGSERVE_BASE_URL, RINGSERVE_API_KEY, RINGSERVE_MODEL and RINGSERVE_EXPECTED (a JSON
// file with the worker command line's greedy outputs for the same prompts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import OpenAI, { APIError, AuthenticationError, BadRequestError } from 'openai';

const baseURL = process.env.RINGSERVE_BASE_URL;
const apiKey = process.env.RINGSERVE_API_KEY;
const model = process.env.RINGSERVE_MODEL;
const expected = JSON.parse(readFileSync(process.env.RINGSERVE_EXPECTED, 'utf8'));
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 30_000 });

const greedyChat = (extra = {}) => ({
  model,
  messages: [{ role: 'user', content: expected.question }],
  max_completion_tokens: expected.maxTokens,
  temperature: 0,
  ...extra,
});
const finishOf = (tokens) => (tokens < expected.maxTokens ? 'stop' : 'length');

test('streaming chat with include_usage: one usage chunk, finish_reason, ends, equals the CLI', async () => {
  const stream = await client.chat.completions.create(greedyChat({ stream: true, stream_options: { include_usage: true } }));
  let content = '';
  let reasoning = '';
  const finishReasons = [];
  const usageChunks = [];
  let chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    assert.equal(chunk.object, 'chat.completion.chunk');
    assert.equal(chunk.model, model);
    if (chunk.usage) {
      usageChunks.push(chunk.usage);
      assert.deepEqual(chunk.choices, [], 'the usage chunk has no choices');
    }
    for (const choice of chunk.choices) {
      content += choice.delta.content ?? '';
      reasoning += choice.delta.reasoning_content ?? '';
      if (choice.finish_reason) finishReasons.push(choice.finish_reason);
    }
  }
  // the for-await loop returned: the SDK saw the end of the stream ([DONE])
  assert.ok(chunks > 3, `only ${chunks} chunks`);
  assert.equal(usageChunks.length, 1, 'exactly one usage chunk');
  const usage = usageChunks[0];
  assert.equal(usage.completion_tokens, expected.chat.tokens);
  assert.ok(usage.prompt_tokens > 0);
  assert.equal(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens);
  assert.deepEqual(finishReasons, [finishOf(expected.chat.tokens)]);
  assert.ok(reasoning.length > 0, 'reasoning_content must arrive (the prompt ends inside <think>)');
  assert.equal(reasoning, expected.chat.reasoning);
  assert.equal(content, expected.chat.content);
});

test('non-streaming chat: reasoning_content and content equal the CLI', async () => {
  const completion = await client.chat.completions.create(greedyChat());
  assert.equal(completion.object, 'chat.completion');
  assert.equal(completion.choices.length, 1);
  const choice = completion.choices[0];
  assert.equal(choice.message.role, 'assistant');
  assert.equal(choice.message.reasoning_content, expected.chat.reasoning);
  assert.equal(choice.message.content, expected.chat.content);
  assert.equal(choice.finish_reason, finishOf(expected.chat.tokens));
  assert.equal(completion.usage.completion_tokens, expected.chat.tokens);
});

test('/v1/completions equals the CLI, streaming and not', async () => {
  const completion = await client.completions.create({ model, prompt: expected.prompt, max_tokens: expected.maxTokens, temperature: 0 });
  assert.equal(completion.choices[0].text, expected.completion.text);
  assert.equal(completion.choices[0].finish_reason, finishOf(expected.completion.tokens));
  assert.equal(completion.usage.completion_tokens, expected.completion.tokens);

  const stream = await client.completions.create({ model, prompt: expected.prompt, max_tokens: expected.maxTokens, temperature: 0, stream: true });
  let text = '';
  const finishReasons = [];
  for await (const chunk of stream) {
    for (const choice of chunk.choices) {
      text += choice.text ?? '';
      if (choice.finish_reason) finishReasons.push(choice.finish_reason);
    }
  }
  assert.equal(text, expected.completion.text);
  assert.deepEqual(finishReasons, [finishOf(expected.completion.tokens)]);
});

test('a stop string ends the output right before it', async () => {
  const full = expected.completion.text;
  const stop = full.substring(Math.floor(full.length / 2), Math.floor(full.length / 2) + 2);
  assert.ok(stop.trim().length > 0, `the middle of the greedy text is blank: ${JSON.stringify(full)}`);
  const completion = await client.completions.create({ model, prompt: expected.prompt, max_tokens: expected.maxTokens, temperature: 0, stop: [stop] });
  assert.equal(completion.choices[0].text, full.substring(0, full.indexOf(stop)));
  assert.equal(completion.choices[0].finish_reason, 'stop');

  const stream = await client.completions.create({ model, prompt: expected.prompt, max_tokens: expected.maxTokens, temperature: 0, stop: stop, stream: true });
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.text ?? '';
  assert.equal(text, full.substring(0, full.indexOf(stop)));
});

test('errors arrive as APIError with status, type and param', async () => {
  await assert.rejects(client.chat.completions.create(greedyChat({ temperature: 5 })), (e) => {
    assert.ok(e instanceof APIError, `not an APIError: ${e}`);
    assert.ok(e instanceof BadRequestError || e.status === 400);
    assert.equal(e.status, 400);
    assert.equal(e.param, 'temperature');
    assert.equal(e.type, 'invalid_request_error');
    assert.ok(e.message.length > 0);
    return true;
  });
  await assert.rejects(client.chat.completions.create(greedyChat({ model: 'no-such-model' })), (e) => {
    assert.ok(e instanceof APIError);
    assert.ok(e.status === 404 || e.status === 400, `status ${e.status}`);
    assert.equal(e.param, 'model');
    return true;
  });
  await assert.rejects(client.chat.completions.create(greedyChat({ stream: true, max_completion_tokens: -1 })), (e) => {
    assert.ok(e instanceof APIError);
    assert.equal(e.status, 400);
    assert.equal(e.param, 'max_completion_tokens');
    return true;
  });
  const wrong = new OpenAI({ baseURL, apiKey: 'sk-wrong', maxRetries: 0 });
  await assert.rejects(wrong.models.list(), (e) => {
    assert.ok(e instanceof AuthenticationError, `not an AuthenticationError: ${e}`);
    assert.equal(e.status, 401);
    assert.equal(e.code, 'invalid_api_key');
    return true;
  });
});

test('models list names the served model', async () => {
  const models = [];
  for await (const m of client.models.list()) models.push(m.id);
  assert.deepEqual(models, [model]);
});
