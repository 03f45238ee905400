// A small Server-Sent Events reader for fetch() response bodies, plus the
// OpenAI-style chat-completion stream interpretation used by the playground.

export interface SSEEvent {
  /** The `event:` field ("message" when absent). */
  event: string;
  /** All `data:` lines of the event joined with "\n". */
  data: string;
  /** The `id:` field, if any. */
  id?: string;
}

/**
 * Incremental SSE parser (per the WHATWG event-stream rules): feed it text in
 * arbitrary pieces; it calls `onEvent` for each complete event. Lines may end
 * in CRLF, LF or CR, also when the CR and LF arrive in different pieces.
 */
export class SSEParser {
  private buf = '';
  private dataLines: string[] = [];
  private eventType = '';
  private lastId: string | undefined;
  private pendingCR = false;

  constructor(private readonly onEvent: (e: SSEEvent) => void) {}

  push(text: string): void {
    if (text === '') return;
    if (this.pendingCR) {
      // A CR ended the previous piece; a following LF belongs to the same line break.
      if (text[0] === '\n') text = text.slice(1);
      this.pendingCR = false;
    }
    this.buf += text;
    let start = 0;
    for (;;) {
      let i = start;
      const n = this.buf.length;
      while (i < n && this.buf[i] !== '\n' && this.buf[i] !== '\r') i++;
      if (i >= n) break;
      const line = this.buf.slice(start, i);
      if (this.buf[i] === '\r') {
        if (i + 1 < n) {
          start = this.buf[i + 1] === '\n' ? i + 2 : i + 1;
        } else {
          this.pendingCR = true;
          start = i + 1;
        }
      } else {
        start = i + 1;
      }
      this.line(line);
    }
    this.buf = this.buf.slice(start);
  }

  /** Signals end of stream. Per spec an unterminated final event is discarded; we dispatch it if it has data, to be lenient. */
  end(): void {
    if (this.buf !== '') {
      this.line(this.buf);
      this.buf = '';
    }
    this.dispatch();
  }

  private line(line: string): void {
    if (line === '') {
      this.dispatch();
      return;
    }
    if (line[0] === ':') return; // comment / keep-alive
    const colon = line.indexOf(':');
    let field: string;
    let value: string;
    if (colon === -1) {
      field = line;
      value = '';
    } else {
      field = line.slice(0, colon);
      value = line.slice(colon + 1);
      if (value[0] === ' ') value = value.slice(1);
    }
    switch (field) {
      case 'data':
        this.dataLines.push(value);
        break;
      case 'event':
        this.eventType = value;
        break;
      case 'id':
        if (!value.includes('\0')) this.lastId = value;
        break;
      default:
        // `retry` and unknown fields are ignored.
        break;
    }
  }

  private dispatch(): void {
    if (this.dataLines.length === 0) {
      this.eventType = '';
      return;
    }
    const e: SSEEvent = { event: this.eventType || 'message', data: this.dataLines.join('\n') };
    if (this.lastId !== undefined) e.id = this.lastId;
    this.dataLines = [];
    this.eventType = '';
    this.onEvent(e);
  }
}

/** Reads SSE events from a byte stream (e.g. `response.body`), decoding UTF-8 across chunk boundaries. */
export async function* readSSE(body: ReadableStream<Uint8Array>): AsyncGenerator<SSEEvent> {
  const reader = body.getReader();
  const decoder = new TextDecoder('utf-8');
  const queue: SSEEvent[] = [];
  const parser = new SSEParser((e) => queue.push(e));
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      parser.push(decoder.decode(value, { stream: true }));
      while (queue.length) yield queue.shift()!;
    }
    parser.push(decoder.decode());
    parser.end();
    while (queue.length) yield queue.shift()!;
  } finally {
    // Stops the underlying fetch if the consumer bails out early.
    reader.cancel().catch(() => {});
    try {
      reader.releaseLock();
    } catch {
      /* already released */
    }
  }
}

// ---- Chat completion stream ------------------------------------------------

export interface ChatUsage {
  prompt_tokens?: number;
  completion_tokens?: number;
  total_tokens?: number;
  /** USD as an exact decimal JSON number; display uses cost_micros instead. */
  cost?: number;
  cost_micros?: number;
}

export interface APIErrorBody {
  message: string;
  type?: string;
  code?: string;
}

export type ChatStreamEvent =
  | { type: 'delta'; content: string; id?: string }
  | { type: 'finish'; reason: string; id?: string }
  | { type: 'error'; error: APIErrorBody; id?: string }
  | { type: 'usage'; usage: ChatUsage; id?: string }
  | { type: 'done' };

interface ChunkChoice {
  index?: number;
  delta?: { content?: string | null; role?: string };
  finish_reason?: string | null;
}

interface Chunk {
  id?: string;
  choices?: ChunkChoice[];
  usage?: ChatUsage | null;
  error?: APIErrorBody;
}

/**
 * Interprets one SSE `data` payload of a chat-completion stream. Returns the
 * events it carries (a chunk can carry content, a finish reason, an error and
 * usage at once). Throws on malformed JSON.
 */
export function interpretChatData(data: string): ChatStreamEvent[] {
  const trimmed = data.trim();
  if (trimmed === '[DONE]') return [{ type: 'done' }];
  if (trimmed === '') return [];
  const chunk = JSON.parse(trimmed) as Chunk;
  const out: ChatStreamEvent[] = [];
  const id = chunk.id;
  for (const c of chunk.choices ?? []) {
    const content = c.delta?.content;
    if (typeof content === 'string' && content !== '') out.push({ type: 'delta', content, id });
    // A chunk that carries an error ends the stream with it: Beaver's final
    // chunk after a mid-stream failure has finish_reason "length" (the
    // spec's value for a cut answer) beside the error; older servers sent
    // "error".
    if (c.finish_reason === 'error' || chunk.error) {
      // handled below together with chunk.error
    } else if (c.finish_reason) {
      out.push({ type: 'finish', reason: c.finish_reason, id });
    }
  }
  const errored = chunk.error || (chunk.choices ?? []).some((c) => c.finish_reason === 'error');
  if (errored) {
    const e = chunk.error;
    out.push({
      type: 'error',
      id,
      error: {
        message: (e && typeof e.message === 'string' && e.message) || 'The stream ended with an error.',
        type: e?.type,
        code: e?.code,
      },
    });
  }
  if (chunk.usage) out.push({ type: 'usage', usage: chunk.usage, id });
  return out;
}

/** Reads a chat-completion SSE body and yields interpreted events, ending after `[DONE]`. */
export async function* readChatStream(body: ReadableStream<Uint8Array>): AsyncGenerator<ChatStreamEvent> {
  // A failed stream reports its error twice (OpenAI's error event, then the
  // final chunk that carries it): yield it once.
  let failed = false;
  for await (const ev of readSSE(body)) {
    let events: ChatStreamEvent[];
    try {
      events = interpretChatData(ev.data);
    } catch {
      yield { type: 'error', error: { message: 'Malformed data in the response stream.' } };
      continue;
    }
    for (const e of events) {
      if (e.type === 'error') {
        if (failed) continue;
        failed = true;
      }
      yield e;
      if (e.type === 'done') return;
    }
  }
}
