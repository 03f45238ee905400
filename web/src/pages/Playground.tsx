import { useEffect, useRef, useState } from 'preact/hooks';
import { api, errorMessage, streamRequest } from '../api/client';
import type { Balance, Model } from '../api/types';
import { Button, ErrorBox, Loading, Money, Notice, PageHeader } from '../components/ui';
import { formatInt, providerLabel } from '../lib/format';
import { useAsync, useTitle } from '../lib/hooks';
import { formatMicros } from '../lib/money';
import { Link } from '../lib/router';
import { readChatStream, type ChatUsage } from '../lib/sse';

interface Msg {
  role: 'user' | 'assistant';
  content: string;
  model?: string;
  usage?: ChatUsage;
  error?: string;
  stopped?: boolean;
  streaming?: boolean;
  balanceAfter?: number;
}

const DEFAULT_MODEL = 'openai/gpt-4o-mini';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function Playground() {
  useTitle('Playground');
  const models = useAsync((signal) => api<{ data: Model[] }>('GET', '/v1/models', undefined, { signal, auth: false }), []);
  const [model, setModel] = useState('');
  const [system, setSystem] = useState('');
  const [maxTokens, setMaxTokens] = useState('');
  const [input, setInput] = useState('');
  const [messages, setMessages] = useState<Msg[]>([]);
  const [streaming, setStreaming] = useState(false);
  const [balance, setBalance] = useState<Balance | null>(null);
  const [balanceError, setBalanceError] = useState<unknown>(null);
  const [status, setStatus] = useState('');
  const [formError, setFormError] = useState<string | null>(null);
  const ctrlRef = useRef<AbortController | null>(null);
  const logRef = useRef<HTMLDivElement>(null);
  const inputRef = useRef<HTMLTextAreaElement>(null);

  // Chat models only: embedding models answer POST /v1/embeddings, not chat.
  const list = (models.data?.data ?? []).filter(
    (m) => !(Array.isArray(m.capabilities) && m.capabilities.includes('embeddings')),
  );
  useEffect(() => {
    if (!model && list.length) setModel(list.some((m) => m.id === DEFAULT_MODEL) ? DEFAULT_MODEL : list[0].id);
  }, [list.length]);

  const loadBalance = async (): Promise<Balance | null> => {
    try {
      const b = await api<Balance>('GET', '/account/balance');
      setBalance(b);
      setBalanceError(null);
      return b;
    } catch (e) {
      setBalanceError(e);
      return null;
    }
  };
  useEffect(() => {
    void loadBalance();
    return () => ctrlRef.current?.abort();
  }, []);

  useEffect(() => {
    const el = logRef.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [messages]);

  const patchLast = (patch: Partial<Msg> | ((m: Msg) => Partial<Msg>)) =>
    setMessages((ms) => {
      const copy = ms.slice();
      const last = copy[copy.length - 1];
      copy[copy.length - 1] = { ...last, ...(typeof patch === 'function' ? patch(last) : patch) };
      return copy;
    });

  const send = async () => {
    const text = input.trim();
    if (!text || streaming) return;
    if (!model) {
      setFormError('Pick a model first.');
      return;
    }
    let max: number | undefined;
    if (maxTokens.trim()) {
      if (!/^\d+$/.test(maxTokens.trim()) || Number(maxTokens) < 1) {
        setFormError('Max tokens must be a whole number of 1 or more.');
        return;
      }
      max = Number(maxTokens);
    }
    setFormError(null);
    const before = balance?.balance_micros;
    const history = [...messages.filter((m) => !m.error || m.content), { role: 'user' as const, content: text }];
    const apiMessages = [...(system.trim() ? [{ role: 'system', content: system.trim() }] : []), ...history.map((m) => ({ role: m.role, content: m.content }))];
    setMessages([...messages, { role: 'user', content: text }, { role: 'assistant', content: '', model, streaming: true }]);
    setInput('');
    setStreaming(true);
    setStatus('The assistant is replying…');
    const ctrl = new AbortController();
    ctrlRef.current = ctrl;
    let usage: ChatUsage | undefined;
    let wasStopped = false;
    try {
      const body: Record<string, unknown> = { model, messages: apiMessages, stream: true, stream_options: { include_usage: true } };
      if (max) body.max_tokens = max;
      const res = await streamRequest('/v1/chat/completions', body, ctrl.signal);
      if (!res.body) throw new Error('The response has no body to stream.');
      for await (const ev of readChatStream(res.body)) {
        if (ev.type === 'delta') patchLast((m) => ({ content: m.content + ev.content }));
        else if (ev.type === 'error') patchLast({ error: ev.error.message });
        else if (ev.type === 'usage') {
          usage = ev.usage;
          patchLast({ usage: ev.usage });
        }
      }
    } catch (e) {
      if (e instanceof DOMException && e.name === 'AbortError') {
        wasStopped = true;
        patchLast({ stopped: true });
      }
      else patchLast({ error: errorMessage(e) });
    } finally {
      ctrlRef.current = null;
      patchLast({ streaming: false });
      setStreaming(false);
    }
    // Balance after the reply. The charge is written when the stream ends; if the ledger
    // has not caught up yet (or the request was stopped), poll briefly.
    const cost = usage?.cost_micros;
    const expectChange = (cost !== undefined && cost > 0) || wasStopped;
    let after = await loadBalance();
    for (let i = 0; i < 6 && expectChange && after && before !== undefined && after.balance_micros === before; i++) {
      await sleep(i < 2 ? 250 : 500);
      after = await loadBalance();
    }
    if (after) patchLast({ balanceAfter: after.balance_micros });
    setStatus(cost !== undefined ? `Reply finished. Cost ${formatMicros(cost)}.` : 'Reply finished.');
    inputRef.current?.focus();
  };

  const stop = () => {
    ctrlRef.current?.abort();
    setStatus('Stopped.');
  };

  const lastAssistant = [...messages].reverse().find((m) => m.role === 'assistant' && !m.streaming);
  const selected = list.find((m) => m.id === model);

  return (
    <div class="playground">
      <PageHeader title="Playground" subtitle="Chat with any model through your session. Replies stream token by token and are billed to your balance.">
        <div class="pg-balance card" aria-live="polite">
          <span class="stat-label">Balance</span>
          {balance ? <Money micros={balance.balance_micros} testid="pg-balance" class="stat-value-sm" /> : balanceError ? <span>—</span> : <span class="hint">…</span>}
        </div>
      </PageHeader>
      <ErrorBox error={models.error} onRetry={models.reload} />
      <ErrorBox error={balanceError} />
      {balance && BigInt(balance.available_micros) <= 0n && (
        <Notice kind="warn" testid="pg-empty-balance">
          Your balance is empty. <Link href="/billing#top-up">Add credits</Link> to chat.
        </Notice>
      )}
      <div class="pg-grid">
        <aside class="card pg-settings" aria-label="Settings">
          <div class="field">
            <label for="pg-model">Model</label>
            {models.loading && !list.length ? (
              <Loading label="Loading models…" />
            ) : (
              <select id="pg-model" value={model} onChange={(e) => setModel(e.currentTarget.value)} disabled={streaming} data-testid="pg-model">
                {list.map((m) => (
                  <option key={m.id} value={m.id}>
                    {m.id}
                  </option>
                ))}
              </select>
            )}
          </div>
          {selected && (
            <p class="hint" data-testid="pg-model-price">
              {providerLabel(selected.provider)} · {formatMicros(selected.pricing.input_per_million_micros)} in / {formatMicros(selected.pricing.output_per_million_micros)} out per 1M tokens
              {selected.pricing.request_fee_micros ? ` + ${formatMicros(selected.pricing.request_fee_micros)} per request` : ''}
            </p>
          )}
          <details class="advanced">
            <summary>Advanced settings</summary>
            <div class="field">
              <label for="pg-system">System prompt (optional)</label>
              <textarea id="pg-system" rows={3} value={system} onInput={(e) => setSystem(e.currentTarget.value)} disabled={streaming} />
            </div>
            <div class="field">
              <label for="pg-max">Max tokens (optional)</label>
              <input id="pg-max" inputMode="numeric" placeholder={selected ? String(selected.max_output_tokens) : ''} value={maxTokens} onInput={(e) => setMaxTokens(e.currentTarget.value)} disabled={streaming} />
            </div>
          </details>
          <Button variant="ghost" small onClick={() => setMessages([])} disabled={streaming || messages.length === 0} data-testid="pg-clear">
            Clear conversation
          </Button>
        </aside>
        <section class="card pg-chat" aria-label="Conversation">
          <div class="pg-log" ref={logRef} data-testid="pg-messages" aria-busy={streaming ? 'true' : 'false'}>
            {messages.length === 0 && <p class="empty hint">Send a message to start. Enter sends, Shift+Enter adds a line.</p>}
            {messages.map((m, i) => (
              <article key={i} class={`msg msg-${m.role}`} data-testid={`msg-${m.role}`} data-streaming={m.streaming ? 'true' : 'false'}>
                <div class="msg-role">{m.role === 'user' ? 'You' : m.model ?? 'Assistant'}</div>
                {(m.content || m.streaming || !m.error) && (
                  <div class="msg-body" data-testid={m.role === 'assistant' ? 'assistant-text' : undefined}>
                    {m.content}
                    {m.streaming && <span class="cursor" aria-hidden="true" />}
                  </div>
                )}
                {m.error && (
                  <div class="alert alert-error" role="alert" data-testid="pg-error">
                    {m.error}
                  </div>
                )}
                {m.stopped && <div class="hint">Stopped. You are charged for the tokens delivered so far.</div>}
                {m.role === 'assistant' && !m.streaming && (m.usage || m.balanceAfter !== undefined) && (
                  <div class="msg-meta" data-testid="pg-reply-meta">
                    {m.usage && (
                      <>
                        <span data-testid="pg-tokens">
                          {formatInt(m.usage.prompt_tokens ?? 0)} prompt + {formatInt(m.usage.completion_tokens ?? 0)} completion tokens
                        </span>
                        {m.usage.cost_micros !== undefined && (
                          <span>
                            Cost <Money micros={m.usage.cost_micros} testid={m === lastAssistant ? 'pg-last-cost' : undefined} />
                          </span>
                        )}
                      </>
                    )}
                    {m.balanceAfter !== undefined && (
                      <span>
                        Balance <Money micros={m.balanceAfter} testid={m === lastAssistant ? 'pg-balance-after' : undefined} />
                      </span>
                    )}
                  </div>
                )}
              </article>
            ))}
          </div>
          <div class="sr-only" role="status" aria-live="polite" data-testid="pg-status">
            {status}
          </div>
          <form
            class="pg-compose"
            onSubmit={(e) => {
              e.preventDefault();
              void send();
            }}
          >
            <label for="pg-input" class="sr-only">
              Message
            </label>
            <textarea
              id="pg-input"
              ref={inputRef}
              rows={3}
              placeholder="Ask anything…"
              value={input}
              onInput={(e) => setInput(e.currentTarget.value)}
              onKeyDown={(e) => {
                if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
                  e.preventDefault();
                  void send();
                }
              }}
              data-testid="pg-input"
            />
            <div class="pg-buttons">
              {streaming ? (
                <Button variant="danger" onClick={stop} data-testid="pg-stop">
                  Stop
                </Button>
              ) : (
                <Button type="submit" variant="primary" disabled={!input.trim() || !model} data-testid="pg-send">
                  Send
                </Button>
              )}
            </div>
            {formError && (
              <div class="field-error" role="alert">
                {formError}
              </div>
            )}
          </form>
        </section>
      </div>
    </div>
  );
}
