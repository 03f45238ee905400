import { describe, expect, it } from 'vitest';
import { SSEParser, interpretChatData, readChatStream, readSSE, type ChatStreamEvent, type SSEEvent } from './sse';

function parseAll(pieces: string[]): SSEEvent[] {
  const out: SSEEvent[] = [];
  const p = new SSEParser((e) => out.push(e));
  for (const piece of pieces) p.push(piece);
  p.end();
  return out;
}

function streamOf(chunks: (string | Uint8Array)[]): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  return new ReadableStream<Uint8Array>({
    start(controller) {
      for (const c of chunks) controller.enqueue(typeof c === 'string' ? enc.encode(c) : c);
      controller.close();
    },
  });
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

const chunk = (content: string) =>
  JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content }, finish_reason: null }] });
const usageChunk = JSON.stringify({
  id: 'c1',
  object: 'chat.completion.chunk',
  choices: [],
  usage: { prompt_tokens: 12, completion_tokens: 3, total_tokens: 15, cost: 0.000021, cost_micros: 21 },
});

const STREAM =
  `data: ${chunk('Hello')}\n\n` +
  `: keep-alive comment\n\n` +
  `data: ${chunk(' wörld 🦫')}\n\n` +
  `data: ${JSON.stringify({ id: 'c1', choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] })}\n\n` +
  `data: ${usageChunk}\n\n` +
  `data: [DONE]\n\n`;

describe('SSEParser', () => {
  it('parses simple events', () => {
    const evs = parseAll(['data: a\n\ndata: b\n\n']);
    expect(evs.map((e) => e.data)).toEqual(['a', 'b']);
    expect(evs[0].event).toBe('message');
  });

  it('joins multi-line data with newlines and handles fields', () => {
    const evs = parseAll(['event: note\nid: 7\ndata: line1\ndata:line2\ndata\nretry: 10\n\n']);
    expect(evs).toEqual([{ event: 'note', id: '7', data: 'line1\nline2\n' }]);
  });

  it('handles CRLF and CR line endings, including CR/LF split across pieces', () => {
    expect(parseAll(['data: x\r\n\r\ndata: y\r\rdata: z\n\n']).map((e) => e.data)).toEqual(['x', 'y', 'z']);
    expect(parseAll(['data: x\r', '\n\r', '\ndata: y\r', '\r']).map((e) => e.data)).toEqual(['x', 'y']);
  });

  it('ignores comments and events without data', () => {
    expect(parseAll([': ping\n\nevent: x\n\n\n\ndata: ok\n\n']).map((e) => e.data)).toEqual(['ok']);
  });

  it('produces the same events whatever the split points are', () => {
    const whole = parseAll([STREAM]);
    expect(whole).toHaveLength(5);
    for (let i = 0; i <= STREAM.length; i++) {
      expect(parseAll([STREAM.slice(0, i), STREAM.slice(i)])).toEqual(whole);
    }
    // one character at a time
    expect(parseAll(STREAM.split(''))).toEqual(whole);
  });

  it('dispatches a final event without trailing blank line at end()', () => {
    expect(parseAll(['data: last']).map((e) => e.data)).toEqual(['last']);
  });
});

describe('readSSE', () => {
  it('decodes UTF-8 split inside a multi-byte character', async () => {
    const bytes = new TextEncoder().encode('data: 🦫ü\n\n');
    const parts = [bytes.slice(0, 7), bytes.slice(7, 9), bytes.slice(9)];
    const evs = await collect(readSSE(streamOf(parts)));
    expect(evs.map((e) => e.data)).toEqual(['🦫ü']);
  });

  it('reads every byte split of a full stream identically', async () => {
    const bytes = new TextEncoder().encode(STREAM);
    const expected = await collect(readSSE(streamOf([bytes])));
    for (let i = 1; i < bytes.length; i += 7) {
      const got = await collect(readSSE(streamOf([bytes.slice(0, i), bytes.slice(i)])));
      expect(got).toEqual(expected);
    }
  });
});

describe('interpretChatData', () => {
  it('reads deltas, finish, usage and [DONE]', () => {
    expect(interpretChatData(chunk('hi'))).toEqual([{ type: 'delta', content: 'hi', id: 'c1' }]);
    expect(interpretChatData(usageChunk)).toEqual([
      {
        type: 'usage',
        id: 'c1',
        usage: { prompt_tokens: 12, completion_tokens: 3, total_tokens: 15, cost: 0.000021, cost_micros: 21 },
      },
    ]);
    expect(interpretChatData('[DONE]')).toEqual([{ type: 'done' }]);
    expect(interpretChatData(' [DONE] ')).toEqual([{ type: 'done' }]);
  });

  it('reads the mid-stream error chunk', () => {
    const data = JSON.stringify({
      id: 'c1',
      object: 'chat.completion.chunk',
      choices: [{ index: 0, delta: {}, finish_reason: 'error' }],
      error: { message: 'upstream went away', type: 'upstream_error', code: 'upstream_error' },
    });
    expect(interpretChatData(data)).toEqual([
      { type: 'error', id: 'c1', error: { message: 'upstream went away', type: 'upstream_error', code: 'upstream_error' } },
    ]);
  });

  it('treats finish_reason error without an error body as an error', () => {
    const data = JSON.stringify({ choices: [{ index: 0, delta: {}, finish_reason: 'error' }] });
    expect(interpretChatData(data)).toEqual([{ type: 'error', id: undefined, error: { message: 'The stream ended with an error.', type: undefined, code: undefined } }]);
  });

  it('throws on malformed JSON', () => {
    expect(() => interpretChatData('{nope')).toThrow();
  });
});

describe('readChatStream', () => {
  it('yields the whole conversation in order and stops at [DONE]', async () => {
    const evs = await collect(readChatStream(streamOf([STREAM.slice(0, 50), STREAM.slice(50), 'data: {"ignored":true}\n\n'])));
    const types = evs.map((e) => e.type);
    expect(types).toEqual(['delta', 'delta', 'finish', 'usage', 'done']);
    const text = evs.filter((e): e is Extract<ChatStreamEvent, { type: 'delta' }> => e.type === 'delta').map((e) => e.content).join('');
    expect(text).toBe('Hello wörld 🦫');
    const usage = evs.find((e) => e.type === 'usage');
    expect(usage && usage.type === 'usage' && usage.usage.cost_micros).toBe(21);
  });

  it('reports an error then still reads usage', async () => {
    const err = JSON.stringify({
      id: 'c1',
      choices: [{ index: 0, delta: {}, finish_reason: 'error' }],
      error: { message: 'boom', type: 'upstream_error', code: 'upstream_error' },
    });
    const s = `data: ${chunk('par')}\n\ndata: ${err}\n\ndata: ${usageChunk}\n\ndata: [DONE]\n\n`;
    const evs = await collect(readChatStream(streamOf([s])));
    expect(evs.map((e) => e.type)).toEqual(['delta', 'error', 'usage', 'done']);
  });

  it('reports a failed stream once: error event, then the final chunk carrying it', async () => {
    const body = { message: 'boom', type: 'upstream_error', param: null, code: 'upstream_error' };
    const final = JSON.stringify({ id: 'c1', choices: [{ index: 0, delta: {}, finish_reason: 'length' }], error: body });
    const s = `data: ${chunk('par')}\n\ndata: ${JSON.stringify({ error: body })}\n\ndata: ${final}\n\ndata: ${usageChunk}\n\ndata: [DONE]\n\n`;
    const evs = await collect(readChatStream(streamOf([s])));
    expect(evs.map((e) => e.type)).toEqual(['delta', 'error', 'usage', 'done']);
  });

  it('reports malformed data but continues', async () => {
    const evs = await collect(readChatStream(streamOf([`data: {bad\n\ndata: ${chunk('x')}\n\ndata: [DONE]\n\n`])));
    expect(evs.map((e) => e.type)).toEqual(['error', 'delta', 'done']);
  });
});
