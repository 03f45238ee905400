// The official `openai` and `@anthropic-ai/sdk` npm clients against a
// running `beaver api`. Run by e2e/sdk/sdk_test.go, which starts Beaver with
// the fake upstream behind every provider and passes the URL and keys in
// the environment (@google/genai too, against Beaver's Gemini-native
// surface): BEAVER_BASE_URL, BEAVER_KEY (funded), BEAVER_BROKE_KEY
// (no balance), BEAVER_RPM_KEY (rpm_limit 1, unused until the 429 check),
// BEAVER_OTHER_KEY (a second funded account: reads and free counts only),
// BEAVER_MODELS, BEAVER_REASONING_MODELS, BEAVER_EMBEDDING_MODEL,
// BEAVER_TLS_BASE_URL (a TLS proxy in front of Beaver: the realtime client
// speaks wss only) and BEAVER_REALTIME_MODEL.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI, { APIError, AuthenticationError, NotFoundError, RateLimitError, toFile } from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { GoogleGenAI, ApiError as GoogleApiError } from '@google/genai';
import { OpenAIRealtimeWS } from 'openai/realtime/ws';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: this script is run by e2e/sdk/sdk_test.go`);
  return v;
};
const baseURL = env('BEAVER_BASE_URL') + '/v1';
const models = env('BEAVER_MODELS').split(',');
const embeddingModel = env('BEAVER_EMBEDDING_MODEL');
// maxRetries 0: a 429 or 5xx is seen at once, not retried.
const client = (apiKey) => new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 20_000 });
const beaver = client(env('BEAVER_KEY'));
// The Anthropic client appends /v1/messages to its base URL.
const anthropic = new Anthropic({ baseURL: env('BEAVER_BASE_URL'), apiKey: env('BEAVER_KEY'), maxRetries: 0, timeout: 20_000 });
const reasoningModels = env('BEAVER_REASONING_MODELS').split(',');

const tools = [{
  type: 'function',
  function: {
    name: 'lookup',
    description: 'Looks a word up.',
    parameters: { type: 'object', properties: { input: { type: 'string' } }, required: ['input'] },
  },
}];

const words = (s) => s.trim().split(/\s+/).filter(Boolean).length;

// usage.cost (USD, plain decimal) and usage.cost_micros, Beaver's additions.
function assertCost(usage, what) {
  assert.ok(usage, `${what}: no usage`);
  assert.ok(Number.isInteger(usage.cost_micros) && usage.cost_micros > 0, `${what}: cost_micros ${JSON.stringify(usage)}`);
  assert.equal(typeof usage.cost, 'number', `${what}: cost ${JSON.stringify(usage)}`);
  assert.equal(Math.round(usage.cost * 1e6), usage.cost_micros, `${what}: cost vs cost_micros ${JSON.stringify(usage)}`);
  assert.ok(usage.prompt_tokens > 0 && usage.completion_tokens > 0, `${what}: tokens ${JSON.stringify(usage)}`);
  assert.equal(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens);
}

test('models.list and models.retrieve', async () => {
  const ids = [];
  for await (const m of beaver.models.list()) {
    ids.push(m.id);
    assert.equal(m.object, 'model');
  }
  for (const id of models) assert.ok(ids.includes(id), `models.list has no ${id}`);
  // The client sends the id as one path segment: /v1/models/openai%2Fgpt-4o-mini.
  const sent = [];
  const recording = new OpenAI({
    baseURL, apiKey: env('BEAVER_KEY'), maxRetries: 0,
    fetch: (url, init) => { sent.push(new URL(String(url)).pathname); return fetch(url, init); },
  });
  for (const [name, want] of [['openai/gpt-4o-mini', 'openai/gpt-4o-mini'], ['gpt-4o-mini', 'openai/gpt-4o-mini'],
    ['anthropic/claude-3-5-haiku-20241022', 'anthropic/claude-3-5-haiku-20241022'], ['gemini-1.5-flash', 'google/gemini-1.5-flash']]) {
    const m = await recording.models.retrieve(name);
    assert.equal(sent.at(-1), '/v1/models/' + name.replace('/', '%2F'));
    assert.equal(m.id, want, `models.retrieve(${name})`);
    assert.equal(m.object, 'model');
  }
  await assert.rejects(beaver.models.retrieve('openai/no-such-model'), (e) => {
    assert.ok(e instanceof NotFoundError, `want NotFoundError, got ${e}`);
    assert.equal(e.code, 'model_not_found');
    return true;
  });
});

for (const model of models) {
  test(`chat ${model}`, async () => {
    const { data, response } = await beaver.chat.completions.create({
      model, messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'hi [[words:5]]' }],
    }).withResponse();
    assert.equal(data.object, 'chat.completion');
    assert.equal(data.choices.length, 1);
    assert.equal(words(data.choices[0].message.content), 5, JSON.stringify(data));
    assert.equal(data.choices[0].finish_reason, 'stop');
    assertCost(data.usage, 'chat');
    assert.ok(response.headers.get('x-beaver-cost-micros'), 'X-Beaver-Cost-Micros');
    assert.ok(response.headers.get('x-beaver-balance-micros'), 'X-Beaver-Balance-Micros');
  });

  test(`stream with include_usage ${model}`, async () => {
    const stream = await beaver.chat.completions.create({
      model, stream: true, stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'hi [[words:6]]' }],
    });
    let content = '';
    let finish = null;
    let usageChunk = null;
    for await (const chunk of stream) {
      assert.equal(chunk.object, 'chat.completion.chunk');
      for (const c of chunk.choices) {
        content += c.delta?.content ?? '';
        finish = c.finish_reason ?? finish;
      }
      if (chunk.choices.length === 0 && chunk.usage) usageChunk = chunk;
    }
    assert.equal(words(content), 6, content);
    assert.equal(finish, 'stop');
    assert.ok(usageChunk, 'no usage chunk (choices: [])');
    assertCost(usageChunk.usage, 'stream usage chunk');
  });

  test(`tools round trip ${model}`, async () => {
    const marker = `node-roundtrip-${model.replace('/', '-')}`;
    const messages = [{ role: 'user', content: `look it up [[tool]] ${marker}` }];
    const first = await beaver.chat.completions.create({ model, tools, messages });
    const choice = first.choices[0];
    assert.equal(choice.finish_reason, 'tool_calls', JSON.stringify(first));
    assert.equal(choice.message.tool_calls?.length, 1, JSON.stringify(first));
    const call = choice.message.tool_calls[0];
    assert.equal(call.type, 'function');
    assert.equal(call.function.name, 'lookup');
    assert.deepEqual(JSON.parse(call.function.arguments), { input: 'fake' });
    assert.ok(call.id);
    assertCost(first.usage, 'tool call');

    messages.push(choice.message, { role: 'tool', tool_call_id: call.id, content: `result-${marker} [[words:3]]` });
    const second = await beaver.chat.completions.create({ model, tools, messages });
    assert.equal(second.choices.length, 1);
    const m = second.choices[0].message;
    assert.ok(m.content || m.tool_calls?.length, JSON.stringify(second));
    assertCost(second.usage, 'after tool result');
  });

  test(`stream() helper events ${model}`, async () => {
    // A tool call: tool_calls.function.arguments.done.
    const done = [];
    const toolStream = beaver.chat.completions.stream({
      model, tools, messages: [{ role: 'user', content: 'look it up [[tool]]' }],
    });
    toolStream.on('tool_calls.function.arguments.done', (e) => done.push(e));
    const withTool = await toolStream.finalChatCompletion();
    assert.equal(done.length, 1, `tool_calls.function.arguments.done fired ${done.length} times`);
    assert.equal(done[0].name, 'lookup');
    assert.equal(done[0].arguments, '{"input":"fake"}');
    assert.equal(withTool.choices[0].finish_reason, 'tool_calls');
    assert.equal(withTool.choices[0].message.tool_calls?.[0]?.function?.name, 'lookup');

    // Text: content.done, once, with the whole text.
    const contents = [];
    let deltas = '';
    const textStream = beaver.chat.completions.stream({
      model, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'hi [[words:4]]' }],
    });
    textStream.on('content.delta', (e) => { deltas += e.delta; });
    textStream.on('content.done', (e) => contents.push(e.content));
    const text = await textStream.finalChatCompletion();
    assert.equal(contents.length, 1, `content.done fired ${contents.length} times`);
    assert.equal(contents[0], deltas);
    assert.equal(words(contents[0]), 4, contents[0]);
    assert.equal(text.choices[0].message.content, contents[0]);
    assertCost(text.usage, 'stream() usage');
  });
}

// Tool loops on reasoning models: the provider refuses the second turn
// (400) unless it gets back what came with the first (DeepSeek's
// reasoning_content, Gemini 3's thought signatures; the fake refuses as
// they do). Each SDK sends back the answer exactly as it received it.
for (const model of reasoningModels) {
  const question = 'look it up [[tool]] [[reasoning:12]]';
  const { parameters } = tools[0].function;

  test(`reasoning tool round trip, chat.completions ${model}`, async () => {
    const messages = [{ role: 'user', content: question }];
    const first = await beaver.chat.completions.create({ model, tools, messages });
    const { message } = first.choices[0];
    assert.equal(first.choices[0].finish_reason, 'tool_calls', JSON.stringify(first));
    // Beaver's fields beside OpenAI's: reasoning_content, extra_content.google.thought_signature.
    assert.ok(message.reasoning_content || message.tool_calls[0].extra_content?.google?.thought_signature, JSON.stringify(message));
    messages.push(message, { role: 'tool', tool_call_id: message.tool_calls[0].id, content: 'it is 42' });
    const second = await beaver.chat.completions.create({ model, tools, messages });
    assertCost(second.usage, 'after tool result');
  });

  test(`reasoning tool round trip, anthropic messages ${model}`, async () => {
    const anthropicTools = [{ name: 'lookup', description: 'Looks a word up.', input_schema: parameters }];
    const ask = { role: 'user', content: question };
    for (const streamed of [false, true]) {
      const params = { model, max_tokens: 200, tools: anthropicTools, messages: [ask] };
      const first = streamed ? await anthropic.messages.stream(params).finalMessage() : await anthropic.messages.create(params);
      assert.equal(first.stop_reason, 'tool_use', JSON.stringify(first));
      // The reasoning state rides on a thinking block before the call.
      assert.equal(first.content[0].type, 'thinking', JSON.stringify(first.content));
      const call = first.content.find((b) => b.type === 'tool_use');
      const second = await anthropic.messages.create({
        ...params,
        messages: [ask, { role: 'assistant', content: first.content }, {
          role: 'user',
          content: [{ type: 'tool_result', tool_use_id: call.id, content: 'it is 42' }, { type: 'text', text: 'thanks [[words:3]]' }],
        }],
      });
      assert.equal(second.stop_reason, 'end_turn', JSON.stringify(second));
      assert.equal(words(second.content[0].text), 3, JSON.stringify(second));
    }
  });

  test(`reasoning tool round trip, responses ${model}`, async () => {
    const fnTools = [{ type: 'function', name: 'lookup', description: 'Looks a word up.', parameters }];
    for (const streamed of [false, true]) {
      const params = { model, tools: fnTools, input: question };
      const first = streamed ? await beaver.responses.stream(params).finalResponse() : await beaver.responses.create(params);
      assert.equal(first.status, 'completed', JSON.stringify(first));
      // The reasoning state rides on a reasoning item before the call.
      assert.equal(first.output[0].type, 'reasoning', JSON.stringify(first.output));
      const call = first.output.find((it) => it.type === 'function_call');
      const second = await beaver.responses.create({
        model, tools: fnTools,
        input: [{ role: 'user', content: 'look it up' }, ...first.output,
          { type: 'function_call_output', call_id: call.call_id, output: 'it is 42' }],
      });
      assert.equal(second.status, 'completed', JSON.stringify(second));
      assert.ok(second.output_text, JSON.stringify(second));
    }
  });
}

// Stored responses: store defaults to true, so each answer can be read
// back, continued with previous_response_id, listed and deleted; another
// account's key sees none of it.
const other = client(env('BEAVER_OTHER_KEY'));
const notFound = (promise, what) => assert.rejects(promise, (e) => {
  assert.ok(e instanceof NotFoundError, `${what}: want NotFoundError, got ${e?.constructor?.name}: ${e}`);
  assert.equal(e.status, 404, `${what}: ${e}`);
  return true;
});
// The output text from the output items (not the SDK's output_text
// convenience, so a retrieved and a created response compare alike).
const outputText = (r) => r.output.filter((it) => it.type === 'message')
  .flatMap((it) => it.content).filter((c) => c.type === 'output_text').map((c) => c.text).join('');

for (const model of models) {
  test(`stored responses ${model}`, async () => {
    const first = await beaver.responses.create({ model, input: 'remember this [[words:4]]' });
    assert.equal(first.status, 'completed', JSON.stringify(first));
    assert.ok(first.id, JSON.stringify(first));
    assert.equal(words(outputText(first)), 4, JSON.stringify(first));

    const got = await beaver.responses.retrieve(first.id);
    assert.equal(got.id, first.id);
    assert.equal(got.object, 'response');
    assert.equal(got.status, 'completed');
    assert.equal(outputText(got), outputText(first));

    const marker = `node-second-turn-${model.replace('/', '-')}`;
    const second = await beaver.responses.create({ model, previous_response_id: first.id, input: `and now ${marker} [[words:3]]` });
    assert.equal(second.status, 'completed', JSON.stringify(second));
    assert.notEqual(second.id, first.id);
    assert.equal(second.previous_response_id, first.id, JSON.stringify(second));
    assert.equal(words(outputText(second)), 3, JSON.stringify(second));

    // input_items lists the turn's own input: the second request's message.
    const items = [];
    for await (const it of beaver.responses.inputItems.list(second.id)) items.push(it);
    assert.equal(items.length, 1, JSON.stringify(items));
    assert.equal(items[0].type, 'message', JSON.stringify(items));
    assert.equal(items[0].role, 'user', JSON.stringify(items));
    assert.ok(items[0].id, JSON.stringify(items));
    assert.ok(JSON.stringify(items[0].content).includes(marker), JSON.stringify(items));

    // Another account: as if the responses did not exist.
    await notFound(other.responses.retrieve(first.id), 'retrieve with another account');
    await notFound(other.responses.delete(first.id), 'delete with another account');
    await notFound(other.responses.create({ model, previous_response_id: first.id, input: 'hi' }),
      'previous_response_id of another account');
    await notFound(other.responses.inputItems.list(first.id), 'input_items with another account');

    await beaver.responses.delete(second.id);
    await notFound(beaver.responses.retrieve(second.id), 'retrieve after delete');
    await notFound(beaver.responses.delete(second.id), 'delete twice');
    // The first turn is untouched by deleting the second.
    assert.equal((await beaver.responses.retrieve(first.id)).id, first.id);
    await beaver.responses.delete(first.id);
    await notFound(beaver.responses.retrieve(first.id), 'retrieve the first turn after delete');
  });
}

// Background responses (a Temporal dev server and a worker run beside the
// API when the temporal CLI is installed: BEAVER_BACKGROUND=true): create
// answers queued, retrieve polls to completed, cancel cancels one still
// running (400 once finished); another account sees nothing.
test('background responses: create, retrieve until completed, cancel', {
  skip: process.env.BEAVER_BACKGROUND !== 'true' && '!!! no temporal CLI: no Temporal and no worker',
}, async () => {
  const model = 'openai/gpt-4o-mini';
  const bg = await beaver.responses.create({ model, input: 'in the background [[words:5]]', background: true });
  assert.equal(bg.background, true, JSON.stringify(bg));
  assert.ok(['queued', 'in_progress'].includes(bg.status), JSON.stringify(bg));
  let got = bg;
  const deadline = Date.now() + 60_000;
  while (got.status === 'queued' || got.status === 'in_progress') {
    assert.ok(Date.now() < deadline, `still ${got.status}`);
    await new Promise((r) => setTimeout(r, 100));
    got = await beaver.responses.retrieve(bg.id);
  }
  assert.equal(got.status, 'completed', JSON.stringify(got));
  assert.equal(words(outputText(got)), 5, JSON.stringify(got));
  assert.equal(got.usage.output_tokens, 5, JSON.stringify(got));
  await assert.rejects(beaver.responses.cancel(bg.id), (e) => e instanceof APIError && e.status === 400);
  await notFound(other.responses.retrieve(bg.id), 'retrieve a background response with another account');
  await notFound(other.responses.cancel(bg.id), 'cancel with another account');

  const slow = await beaver.responses.create({ model, input: 'slowly [[chunk-delay:200]] [[words:20]]', background: true });
  const cancelled = await beaver.responses.cancel(slow.id);
  assert.equal(cancelled.status, 'cancelled', JSON.stringify(cancelled));
  assert.equal((await beaver.responses.retrieve(slow.id)).status, 'cancelled');
});

// count_tokens: Anthropic's shape for every model, nothing charged. The
// other account runs nothing billed, so its balance must not move.
test('@anthropic-ai/sdk messages.countTokens', async () => {
  const counter = new Anthropic({ baseURL: env('BEAVER_BASE_URL'), apiKey: env('BEAVER_OTHER_KEY'), maxRetries: 0, timeout: 20_000 });
  const balance = async () => {
    const res = await fetch(env('BEAVER_BASE_URL') + '/account/balance', { headers: { authorization: `Bearer ${env('BEAVER_OTHER_KEY')}` } });
    assert.equal(res.status, 200, await res.clone().text());
    const b = await res.json();
    assert.ok(Number.isInteger(b.balance_micros) && b.balance_micros > 0, JSON.stringify(b));
    return b.balance_micros;
  };
  const before = await balance();
  for (const model of models) {
    const messages = [{ role: 'user', content: 'How many tokens are in this sentence, roughly?' }];
    const plain = await counter.messages.countTokens({ model, messages });
    assert.ok(Number.isInteger(plain.input_tokens) && plain.input_tokens > 0, `${model}: ${JSON.stringify(plain)}`);
    const withSystem = await counter.messages.countTokens({ model, messages, system: 'You are a careful assistant who answers briefly.' });
    assert.ok(withSystem.input_tokens > plain.input_tokens, `${model}: system adds tokens: ${plain.input_tokens} -> ${withSystem.input_tokens}`);
  }
  assert.equal(await balance(), before, 'count_tokens changed the balance');
});

test('embeddings', async () => {
  // Without encoding_format the client asks for base64 and decodes it.
  const def = await beaver.embeddings.create({ model: embeddingModel, input: ['first text', 'second text'] });
  assert.equal(def.object, 'list');
  assert.equal(def.data.length, 2);
  assert.ok(def.data[0].embedding.length > 0, JSON.stringify(def).slice(0, 500));
  assert.equal(def.data[0].embedding.length, def.data[1].embedding.length);
  assert.ok(Array.from(def.data[0].embedding).every(Number.isFinite));
  assert.equal(def.data[1].index, 1);
  assert.ok(def.usage?.prompt_tokens > 0, JSON.stringify(def.usage));

  const floats = await beaver.embeddings.create({ model: embeddingModel, input: 'first text', encoding_format: 'float' });
  assert.equal(floats.data.length, 1);
  assert.ok(Array.isArray(floats.data[0].embedding) && floats.data[0].embedding.every(Number.isFinite));
  assert.equal(floats.data[0].embedding.length, def.data[0].embedding.length);
});

test('images', async () => {
  // GPT Image: base64 always, token usage with Beaver's cost.
  const gen = await beaver.images.generate({ model: 'openai/gpt-image-1', prompt: 'a beaver at dusk', n: 2, size: '1024x1024', quality: 'low' });
  assert.equal(gen.data.length, 2, JSON.stringify(gen).slice(0, 500));
  assert.ok(gen.data.every((d) => d.b64_json && !d.url));
  assert.equal(gen.usage.output_tokens, 2 * 272);
  assert.ok(gen.usage.cost_micros > 0, JSON.stringify(gen.usage));
  // An edit: two images, multipart.
  const png = Buffer.from(gen.data[0].b64_json, 'base64');
  const edit = await beaver.images.edit({ model: 'openai/gpt-image-1', prompt: 'make it night', size: '1024x1024', quality: 'low',
    image: [await toFile(png, 'a.png', { type: 'image/png' }), await toFile(png, 'b.png', { type: 'image/png' })] });
  assert.equal(edit.data.length, 1);
  assert.ok(edit.usage.input_tokens_details.image_tokens > 0, JSON.stringify(edit.usage));
  assert.ok(edit.usage.cost_micros > 0);
  // xAI: a URL, priced per image.
  const url = await beaver.images.generate({ model: 'xai/grok-imagine-image', prompt: 'a beaver', response_format: 'url' });
  assert.ok(url.data[0].url?.startsWith('https://'), JSON.stringify(url));
  assert.ok(url.usage.cost_micros > 0, JSON.stringify(url.usage));
});

test('files and batches (what the API answers without a worker)', async () => {
  const content = JSON.stringify({ custom_id: 'a', method: 'POST', url: '/v1/chat/completions',
    body: { model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] } }) + '\n';
  const f = await beaver.files.create({ file: await toFile(Buffer.from(content), 'in.jsonl'), purpose: 'batch' });
  assert.ok(f.id.startsWith('file-'), JSON.stringify(f));
  assert.equal(f.bytes, Buffer.byteLength(content));
  assert.equal((await beaver.files.retrieve(f.id)).filename, 'in.jsonl');
  assert.equal(await (await beaver.files.content(f.id)).text(), content);
  const page = await beaver.files.list({ purpose: 'batch' });
  assert.ok(page.data.some((x) => x.id === f.id));

  const bad = await beaver.files.create({ file: await toFile(Buffer.from('not json\n'), 'bad.jsonl'), purpose: 'batch' });
  const b = await beaver.batches.create({ input_file_id: bad.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
  assert.equal(b.status, 'failed', JSON.stringify(b));
  assert.equal(b.errors?.data?.[0]?.code, 'invalid_json_line');
  assert.equal((await beaver.batches.retrieve(b.id)).id, b.id);
  assert.equal((await beaver.files.delete(f.id)).deleted, true);
});

test('typed errors', async () => {
  const chat = { model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] };
  const expect = (promise, Class, status, code) => assert.rejects(promise, (e) => {
    assert.ok(e instanceof Class, `want ${Class.name} ${status}, got ${e?.constructor?.name}: ${e}`);
    assert.equal(e.status, status, String(e));
    assert.equal(e.code, code, String(e));
    assert.ok(e.error?.message && e.error?.type, JSON.stringify(e.error));
    return true;
  });

  await expect(client('sk-beaver-not-a-real-key').chat.completions.create(chat), AuthenticationError, 401, 'invalid_api_key');
  await expect(client(env('BEAVER_BROKE_KEY')).chat.completions.create(chat), APIError, 402, 'insufficient_balance');
  await expect(beaver.chat.completions.create({ ...chat, model: 'openai/no-such-model' }), NotFoundError, 404, 'model_not_found');

  const limited = client(env('BEAVER_RPM_KEY'));
  await limited.chat.completions.create(chat);
  const start = Date.now();
  await expect(limited.chat.completions.create(chat), RateLimitError, 429, 'rate_limit_exceeded');
  assert.ok(Date.now() - start < 3000, 'the 429 was retried');
});

// @google/genai against Beaver's Gemini-native surface (/v1beta/models/
// {model}:{method}, the key in x-goog-api-key), on a Google model and an
// OpenAI one.
const google = (apiKey) => new GoogleGenAI({ apiKey, httpOptions: { baseUrl: env('BEAVER_BASE_URL'), timeout: 20_000 } });
const genai = google(env('BEAVER_KEY'));

test('@google/genai generateContent and generateContentStream', async () => {
  for (const model of [reasoningModels.find((m) => m.startsWith('google/')), 'openai/gpt-4o-mini']) {
    const r = await genai.models.generateContent({ model, contents: 'say hello [[words:5]]',
      config: { systemInstruction: 'be terse', maxOutputTokens: 200, temperature: 0.5 } });
    assert.equal(words(r.text), 5, `${model}: ${JSON.stringify(r)}`);
    assert.equal(r.modelVersion, model);
    assert.equal(r.candidates[0].finishReason, 'STOP');
    assert.ok(r.usageMetadata.promptTokenCount > 0 && r.usageMetadata.costMicros > 0, JSON.stringify(r.usageMetadata));
    assert.ok(r.responseId, 'no responseId');

    let text = '';
    let last;
    for await (const chunk of await genai.models.generateContentStream({ model, contents: 'stream please [[words:6]]' })) {
      text += chunk.text ?? '';
      last = chunk;
    }
    assert.equal(words(text), 6, `${model}: ${text}`);
    assert.ok(last.usageMetadata?.costMicros > 0, JSON.stringify(last));
  }
});

test('@google/genai function calling round trip on Gemini 3 (thought signatures)', async () => {
  const model = reasoningModels.find((m) => m.startsWith('google/gemini-3'));
  const config = { tools: [{ functionDeclarations: [{ name: 'lookup', description: 'Looks a word up.',
    parameters: { type: 'OBJECT', properties: { input: { type: 'STRING' } }, required: ['input'] } }] }] };
  const question = { role: 'user', parts: [{ text: 'look it up [[tool]]' }] };
  const r = await genai.models.generateContent({ model, contents: [question], config });
  const call = r.functionCalls?.[0];
  assert.equal(call?.name, 'lookup', JSON.stringify(r));
  const turn = r.candidates[0].content;
  assert.ok(turn.parts.some((p) => p.functionCall && p.thoughtSignature), `no thought signature: ${JSON.stringify(turn)}`);
  const answer = { role: 'user', parts: [{ functionResponse: { id: call.id, name: call.name, response: { result: 'found' } } },
    { text: 'thanks [[words:3]]' }] };
  const r2 = await genai.models.generateContent({ model, contents: [question, turn, answer], config });
  assert.equal(words(r2.text), 3, JSON.stringify(r2));
});

test('@google/genai countTokens, embedContent and errors', async () => {
  const n = await genai.models.countTokens({ model: models[0], contents: 'how many tokens is this' });
  assert.ok(n.totalTokens > 0, JSON.stringify(n));
  const e = await genai.models.embedContent({ model: embeddingModel, contents: 'hello world' });
  assert.ok(e.embeddings?.[0]?.values?.length > 0, JSON.stringify(e));

  const expect = (promise, status) => assert.rejects(promise, (err) => {
    assert.ok(err instanceof GoogleApiError, `want ApiError ${status}, got ${err?.constructor?.name}: ${err}`);
    assert.equal(err.status, status, String(err));
    return true;
  });
  await expect(genai.models.generateContent({ model: 'openai/no-such-model', contents: 'hi' }), 404);
  await expect(google('sk-beaver-not-a-real-key').models.generateContent({ model: models[0], contents: 'hi' }), 401);
});

// The npm client's realtime session (openai/realtime/ws, the key in
// Authorization) through Beaver's GET /v1/realtime: two responses, each
// response.done carrying Beaver's charge.
test('realtime: OpenAIRealtimeWS session with two charged responses', async () => {
  const tls = new OpenAI({ baseURL: env('BEAVER_TLS_BASE_URL') + '/v1', apiKey: env('BEAVER_KEY'), maxRetries: 0 });
  const rt = new OpenAIRealtimeWS({ model: env('BEAVER_REALTIME_MODEL'), options: { rejectUnauthorized: false } }, tls);
  const errors = [];
  rt.on('error', (err) => errors.push(err));
  const next = (type) => new Promise((resolve) => rt.once(type, resolve));
  const session = await next('session.created');
  assert.equal(session.session.model, 'gpt-realtime');
  rt.send({ type: 'session.update', session: { type: 'realtime', output_modalities: ['text'], instructions: 'Be brief.' } });
  await next('session.updated');
  let total = 0;
  for (const [text, n] of [['hello [[words:4]]', 4], ['again [[words:2]]', 2]]) {
    let said = '';
    const onDelta = (ev) => { said += ev.delta; };
    rt.on('response.output_text.delta', onDelta);
    rt.send({ type: 'conversation.item.create',
      item: { type: 'message', role: 'user', content: [{ type: 'input_text', text }] } });
    rt.send({ type: 'response.create' });
    const done = await next('response.done');
    rt.off('response.output_text.delta', onDelta);
    assert.equal(words(said), n, said);
    const u = done.response.usage;
    assert.ok(u.input_tokens > 0 && u.output_tokens === n, JSON.stringify(u));
    assert.ok(Number.isInteger(u.cost_micros) && u.cost_micros > 0, JSON.stringify(u));
    assert.equal(Math.round(u.cost * 1e6), u.cost_micros);
    assert.equal(u.generation_id, 'rt_' + done.response.id);
    total += u.cost_micros;
  }
  const closed = new Promise((resolve) => rt.socket.once('close', resolve));
  rt.close();
  await closed;
  assert.deepEqual(errors, []);
  assert.ok(total > 0);
});

// Batches and fine-tuning run by the worker (BEAVER_BACKGROUND=true), each
// on an account of its own (BEAVER_BATCH_KEY, BEAVER_FT_KEY) whose balance
// must drop by exactly the charges the check sees.
const background = { skip: process.env.BEAVER_BACKGROUND !== 'true' && '!!! no temporal CLI: no Temporal and no worker' };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const account = async (key, path) => {
  const res = await fetch(env('BEAVER_BASE_URL') + path, { headers: { authorization: `Bearer ${key}` } });
  return { status: res.status, body: await res.json() };
};
const balanceOf = async (key) => {
  const { status, body } = await account(key, '/account/balance');
  assert.equal(status, 200, JSON.stringify(body));
  return body;
};
// generation is GET /v1/generation?id= once it exists (null after waitMs).
const generation = async (key, id, waitMs = 20_000) => {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const { status, body } = await account(key, `/v1/generation?id=${encodeURIComponent(id)}`);
    if (status === 200) return body.data;
    assert.equal(status, 404, JSON.stringify(body));
    if (Date.now() > deadline) return null;
    await sleep(100);
  }
};
const until = async (what, get, done) => {
  const deadline = Date.now() + 45_000;
  for (;;) {
    const x = await get();
    if (done(x)) return x;
    assert.ok(Date.now() < deadline, `${what}: still ${JSON.stringify(x)}`);
    await sleep(100);
  }
};

test('batches to completion: files.create, batches.create/retrieve/list/cancel, files.content', background, async () => {
  const key = env('BEAVER_BATCH_KEY');
  const c = client(key);
  const before = (await balanceOf(key)).balance_micros;
  const jsonl = (lines) => lines.map((l) => JSON.stringify(l)).join('\n') + '\n';
  const upload = async (name, lines) => (await c.files.create({ file: await toFile(Buffer.from(jsonl(lines)), name), purpose: 'batch' })).id;
  const chatLines = models.map((model, i) => ({ custom_id: `node-chat-${i}`, method: 'POST', url: '/v1/chat/completions',
    body: { model, messages: [{ role: 'user', content: `batch line ${i} [[words:${i + 2}]]` }] } }));
  const embdLines = [['first text'], ['second text', 'third text']].map((input, i) => ({ custom_id: `node-embd-${i}`, method: 'POST',
    url: '/v1/embeddings', body: { model: embeddingModel, input } }));
  const chat = await c.batches.create({ input_file_id: await upload('chat.jsonl', chatLines), endpoint: '/v1/chat/completions',
    completion_window: '24h', metadata: { check: 'openai-node' } });
  const embd = await c.batches.create({ input_file_id: await upload('embd.jsonl', embdLines), endpoint: '/v1/embeddings',
    completion_window: '24h' });

  let total = 0;
  for (const [batch, n, embed] of [[chat, models.length, false], [embd, 2, true]]) {
    const done = await until(`batch ${batch.id}`, () => c.batches.retrieve(batch.id),
      (b) => !['validating', 'in_progress', 'finalizing'].includes(b.status));
    assert.equal(done.status, 'completed', JSON.stringify(done));
    assert.deepEqual(done.request_counts, { total: n, completed: n, failed: 0 }, JSON.stringify(done));
    assert.ok(done.output_file_id && done.completed_at, JSON.stringify(done));
    const out = (await (await c.files.content(done.output_file_id)).text()).trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(out.length, n);
    for (const [i, line] of out.entries()) {
      assert.equal(line.custom_id, `node-${embed ? 'embd' : 'chat'}-${i}`, JSON.stringify(line));
      assert.equal(line.response.status_code, 200, JSON.stringify(line));
      const body = line.response.body;
      if (embed) {
        assert.ok(body.data.length > 0 && body.usage.prompt_tokens > 0, JSON.stringify(body));
        assert.ok(Number.isInteger(body.usage.cost_micros) && body.usage.cost_micros > 0, JSON.stringify(body.usage));
      } else {
        assert.equal(body.model, models[i]);
        assert.equal(words(body.choices[0].message.content), i + 2, JSON.stringify(body));
        assertCost(body.usage, `batch chat line ${i}`);
      }
      const g = await generation(key, body.id);
      assert.equal(g?.charged_micros, body.usage.cost_micros, `line ${i}: ${JSON.stringify(g)}`);
      total += body.usage.cost_micros;
    }
  }
  const after = (await balanceOf(key)).balance_micros;
  assert.ok(total > 0);
  assert.equal(before - after, total, `balance ${before} → ${after}, the lines' charges sum to ${total}`);

  const listed = [];
  for await (const b of c.batches.list({ limit: 10 })) listed.push(b.id);
  assert.deepEqual(listed.slice(0, 2), [embd.id, chat.id]);

  const slow = Array.from({ length: 13 }, (_, i) => ({ custom_id: `slow-${i}`, method: 'POST', url: '/v1/chat/completions',
    body: { model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: 'slowly [[slow:500]] [[words:3]]' }] } }));
  const sb = await c.batches.create({ input_file_id: await upload('slow.jsonl', slow), endpoint: '/v1/chat/completions', completion_window: '24h' });
  const cancelling = await c.batches.cancel(sb.id);
  assert.ok(['cancelling', 'cancelled'].includes(cancelling.status), JSON.stringify(cancelling));
  const cancelled = await until(`cancel ${sb.id}`, () => c.batches.retrieve(sb.id), (b) => b.status !== 'cancelling');
  assert.equal(cancelled.status, 'cancelled', JSON.stringify(cancelled));
  assert.ok(cancelled.cancelled_at, JSON.stringify(cancelled));
  await notFound(other.batches.retrieve(chat.id), 'batches.retrieve with another account');
});

test('fine-tuning: files.create (fine-tune), fineTuning.jobs create/retrieve/list/listEvents/cancel, the model', background, async () => {
  const key = env('BEAVER_FT_KEY');
  const model = env('BEAVER_FINE_TUNE_MODEL');
  const c = client(key);
  const before = (await balanceOf(key)).balance_micros;
  const examples = Array.from({ length: 10 }, (_, i) => JSON.stringify({ messages: [
    { role: 'user', content: `What is example ${i}?` }, { role: 'assistant', content: `It is example number ${i}.` }] })).join('\n') + '\n';
  const f = await c.files.create({ file: await toFile(Buffer.from(examples), 'train.jsonl'), purpose: 'fine-tune' });
  assert.ok(f.id.startsWith('file-fake'), `OpenAI's file id: ${JSON.stringify(f)}`);
  assert.equal(f.purpose, 'fine-tune');

  const job = await c.fineTuning.jobs.create({ model, training_file: f.id, suffix: 'sdk-node',
    method: { type: 'supervised', supervised: { hyperparameters: { n_epochs: 1 } } } });
  assert.ok(job.id.startsWith('ftjob-'), JSON.stringify(job));
  assert.equal(job.training_file, f.id);
  await notFound(other.fineTuning.jobs.retrieve(job.id), 'fineTuning.jobs.retrieve with another account');
  const done = await until(`job ${job.id}`, () => c.fineTuning.jobs.retrieve(job.id),
    (j) => !['validating_files', 'queued', 'running'].includes(j.status));
  assert.equal(done.status, 'succeeded', JSON.stringify(done));
  assert.ok(done.trained_tokens > 0 && done.fine_tuned_model, JSON.stringify(done));
  const events = [];
  for await (const e of c.fineTuning.jobs.listEvents(job.id)) events.push(e);
  assert.ok(events.length >= 3 && events.every((e) => e.object === 'fine_tuning.job.event'), JSON.stringify(events));
  const jobs = [];
  for await (const j of c.fineTuning.jobs.list()) jobs.push(j.id);
  assert.deepEqual(jobs, [job.id]);

  // trained_tokens × the marked-up training price (rounded up, as every charge), once.
  const g = await generation(key, job.id);
  assert.ok(g, `no charge for ${job.id}`);
  const line = g.cost_details?.lines?.find((l) => l.dimension === 'training');
  assert.equal(line?.quantity, done.trained_tokens, JSON.stringify(g));
  assert.equal(g.charged_micros, Math.ceil(line.price_micros * done.trained_tokens / 1e6), JSON.stringify(g));
  assert.ok(g.charged_micros > 0 && g.charged_micros >= g.provider_cost_micros, JSON.stringify(g));

  const second = await c.fineTuning.jobs.create({ model, training_file: f.id });
  const cancelled = await c.fineTuning.jobs.cancel(second.id);
  assert.equal(cancelled.status, 'cancelled', JSON.stringify(cancelled));
  const g2 = await generation(key, second.id);
  assert.equal(g2?.charged_micros, 0, JSON.stringify(g2));
  assert.equal((await balanceOf(key)).reserved_micros, 0, 'holds left after both jobs settled');

  const answer = await c.chat.completions.create({ model: 'openai/' + done.fine_tuned_model,
    messages: [{ role: 'user', content: 'hi fine-tuned [[words:3]]' }] });
  assertCost(answer.usage, 'fine-tuned model');
  await assert.rejects(other.chat.completions.create({ model: 'openai/' + done.fine_tuned_model, messages: [{ role: 'user', content: 'hi' }] }),
    (e) => e instanceof NotFoundError && e.code === 'model_not_found');
  const after = (await balanceOf(key)).balance_micros;
  assert.equal(before - after, g.charged_micros + answer.usage.cost_micros, `balance ${before} → ${after}`);
});
