import { useMemo, useState } from 'preact/hooks';
import { api } from '../api/client';
import type { Model } from '../api/types';
import { Async } from '../components/ui';
import { CATEGORY_ORDER, categoryLabel, formatInt, providerLabel } from '../lib/format';
import { useAsync, useSession, useTitle } from '../lib/hooks';
import { formatMicros, toMicros } from '../lib/money';
import { Link } from '../lib/router';

type SortKey = 'name' | 'provider' | 'category' | 'context' | 'input' | 'output' | 'fee';

const columns: { key: SortKey; label: string; num?: boolean }[] = [
  { key: 'name', label: 'Model' },
  { key: 'provider', label: 'Provider' },
  { key: 'category', label: 'Category' },
  { key: 'context', label: 'Context', num: true },
  { key: 'input', label: 'Input / 1M', num: true },
  { key: 'output', label: 'Output / 1M', num: true },
  { key: 'fee', label: 'Per request', num: true },
];

function cmpBig(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function compare(a: Model, b: Model, key: SortKey): number {
  switch (key) {
    case 'name':
      return (a.name || a.id).localeCompare(b.name || b.id);
    case 'provider':
      return providerLabel(a.provider).localeCompare(providerLabel(b.provider)) || a.id.localeCompare(b.id);
    case 'category':
      return CATEGORY_ORDER.indexOf(a.pricing?.category) - CATEGORY_ORDER.indexOf(b.pricing?.category);
    case 'context':
      return (a.context_length ?? 0) - (b.context_length ?? 0);
    case 'input':
      return cmpBig(toMicros(a.pricing.input_per_million_micros), toMicros(b.pricing.input_per_million_micros));
    case 'output':
      return cmpBig(toMicros(a.pricing.output_per_million_micros), toMicros(b.pricing.output_per_million_micros));
    case 'fee':
      return cmpBig(toMicros(a.pricing.request_fee_micros ?? 0), toMicros(b.pricing.request_fee_micros ?? 0));
  }
}

export function ModelsTable({ models }: { models: Model[] }) {
  const [provider, setProvider] = useState('');
  const [category, setCategory] = useState('');
  const [q, setQ] = useState('');
  const [sort, setSort] = useState<{ key: SortKey; dir: 1 | -1 }>({ key: 'input', dir: 1 });

  const providers = useMemo(() => [...new Set(models.map((m) => m.provider))].sort(), [models]);
  const categories = useMemo(
    () => [...new Set(models.map((m) => m.pricing?.category).filter(Boolean))].sort((a, b) => CATEGORY_ORDER.indexOf(a) - CATEGORY_ORDER.indexOf(b)),
    [models],
  );
  const rows = useMemo(() => {
    const needle = q.trim().toLowerCase();
    return models
      .filter((m) => (!provider || m.provider === provider) && (!category || m.pricing?.category === category))
      .filter((m) => !needle || m.id.toLowerCase().includes(needle) || (m.name ?? '').toLowerCase().includes(needle))
      .sort((a, b) => compare(a, b, sort.key) * sort.dir || a.id.localeCompare(b.id));
  }, [models, provider, category, q, sort]);

  const toggle = (key: SortKey) => setSort((s) => (s.key === key ? { key, dir: s.dir === 1 ? -1 : 1 } : { key, dir: 1 }));

  return (
    <section aria-labelledby="models-title" class="models">
      <div class="section-head">
        <h2 id="models-title">Models and prices</h2>
        <p class="subtitle">Prices are what you are charged, in USD per million tokens, including Beaver's markup.</p>
      </div>
      <div class="filters" role="search">
        <div class="field">
          <label for="filter-q">Search</label>
          <input id="filter-q" type="search" placeholder="gpt, claude, sonar…" value={q} onInput={(e) => setQ(e.currentTarget.value)} data-testid="models-search" />
        </div>
        <div class="field">
          <label for="filter-provider">Provider</label>
          <select id="filter-provider" value={provider} onChange={(e) => setProvider(e.currentTarget.value)} data-testid="models-provider">
            <option value="">All providers</option>
            {providers.map((p) => (
              <option key={p} value={p}>
                {providerLabel(p)}
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="filter-category">Category</label>
          <select id="filter-category" value={category} onChange={(e) => setCategory(e.currentTarget.value)} data-testid="models-category">
            <option value="">All categories</option>
            {categories.map((c) => (
              <option key={c} value={c}>
                {categoryLabel(c)}
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="filter-sort">Sort by</label>
          <select
            id="filter-sort"
            value={`${sort.key}:${sort.dir}`}
            onChange={(e) => {
              const [key, dir] = e.currentTarget.value.split(':');
              setSort({ key: key as SortKey, dir: dir === '-1' ? -1 : 1 });
            }}
            data-testid="models-sort"
          >
            {columns.flatMap((c) => [
              <option key={`${c.key}:1`} value={`${c.key}:1`}>
                {c.label} {c.key === 'name' || c.key === 'provider' ? '(A–Z)' : c.key === 'category' ? '(budget first)' : '(low to high)'}
              </option>,
              <option key={`${c.key}:-1`} value={`${c.key}:-1`}>
                {c.label} {c.key === 'name' || c.key === 'provider' ? '(Z–A)' : c.key === 'category' ? '(premium first)' : '(high to low)'}
              </option>,
            ])}
          </select>
        </div>
      </div>
      <p class="hint" aria-live="polite">
        {rows.length} of {models.length} models
      </p>
      <div class="table-wrap">
        <table class="table stack" data-testid="models-table">
          <thead>
            <tr>
              {columns.map((c) => (
                <th key={c.key} scope="col" class={c.num ? 'num' : ''} aria-sort={sort.key === c.key ? (sort.dir === 1 ? 'ascending' : 'descending') : 'none'}>
                  <button type="button" class="sort" onClick={() => toggle(c.key)} data-testid={`sort-${c.key}`}>
                    {c.label}
                    <span class="sort-icon" aria-hidden="true">
                      {sort.key === c.key ? (sort.dir === 1 ? '▲' : '▼') : '↕'}
                    </span>
                  </button>
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {rows.map((m) => (
              <tr key={m.id} data-testid="model-row" data-model={m.id}>
                <td data-label="Model">
                  <div>
                    <div class="model-name">{m.name || m.id}</div>
                    <div class="mono hint">{m.id}</div>
                  </div>
                </td>
                <td data-label="Provider">{providerLabel(m.provider)}</td>
                <td data-label="Category">
                  <span class={`cat cat-${(m.pricing?.category ?? '').toLowerCase()}`}>{categoryLabel(m.pricing?.category)}</span>
                </td>
                <td data-label="Context" class="num">
                  {formatInt(m.context_length)}
                </td>
                <td data-label="Input / 1M" class="num">
                  {formatMicros(m.pricing.input_per_million_micros)}
                </td>
                <td data-label="Output / 1M" class="num">
                  {formatMicros(m.pricing.output_per_million_micros)}
                </td>
                <td data-label="Per request" class="num">
                  {m.pricing.request_fee_micros ? formatMicros(m.pricing.request_fee_micros) : '—'}
                </td>
              </tr>
            ))}
            {rows.length === 0 && (
              <tr>
                <td colSpan={columns.length} class="empty">
                  No model matches these filters.
                </td>
              </tr>
            )}
          </tbody>
        </table>
      </div>
    </section>
  );
}

export function Home() {
  useTitle('');
  const s = useSession();
  const models = useAsync((signal) => api<{ data: Model[] }>('GET', '/v1/models', undefined, { auth: false, signal }), []);
  const origin = typeof window !== 'undefined' ? window.location.origin : '';
  return (
    <div class="home">
      <section class="hero">
        <div class="hero-text">
          <p class="eyebrow">Unified LLM gateway</p>
          <h1>One API key for every major model.</h1>
          <p class="lead">
            Beaver speaks the OpenAI Chat Completions API and routes to OpenAI, Anthropic, Google, DeepSeek, Perplexity and xAI. Prepaid credits, exact per-token
            billing in micro-dollars, and keys with spend limits, rate limits, model and IP allow-lists.
          </p>
          <div class="hero-actions">
            {s.account ? (
              <>
                <Link class="btn btn-primary" href="/playground">
                  Open the playground
                </Link>
                <Link class="btn btn-secondary" href="/keys">
                  Manage API keys
                </Link>
              </>
            ) : (
              <>
                <Link class="btn btn-primary" href="/register" data-testid="hero-register">
                  Create a free account
                </Link>
                <Link class="btn btn-secondary" href="/login">
                  Sign in
                </Link>
              </>
            )}
          </div>
        </div>
        <div class="hero-code card" aria-label="Example request">
          <pre>
            <code>{`curl ${origin}/v1/chat/completions \\
  -H "Authorization: Bearer sk-beaver-…" \\
  -H "Content-Type: application/json" \\
  -d '{"model": "openai/gpt-4o-mini",
       "stream": true,
       "messages": [{"role": "user",
                     "content": "Hello!"}]}'`}</code>
          </pre>
        </div>
      </section>
      <section class="features" aria-label="Features">
        <div class="feature card">
          <h2>Drop-in compatible</h2>
          <p>Point any OpenAI SDK at Beaver and use prefixed model ids such as <code>anthropic/…</code> or <code>google/…</code>.</p>
        </div>
        <div class="feature card">
          <h2>Exact billing</h2>
          <p>Every request is metered in integer micro-dollars. Each stream ends with its cost, and your ledger shows every charge.</p>
        </div>
        <div class="feature card">
          <h2>Keys with guard rails</h2>
          <p>Spend limits that reset daily, weekly or monthly, per-key rate limits, expiry, and model and IP allow-lists.</p>
        </div>
      </section>
      <Async state={models} label="Loading models…">
        {(d) => <ModelsTable models={d.data} />}
      </Async>
    </div>
  );
}
