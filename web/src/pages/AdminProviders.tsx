import { useState } from 'preact/hooks';
import { api } from '../api/client';
import type { Provider, ProvidersStatus, ProviderTest } from '../api/types';
import { Async, Badge, Button, ErrorBox, Field, Notice, PageHeader } from '../components/ui';
import { EMPTY_PROVIDER_FORM, PROVIDER_FORMATS, providerRequestBody, type FormErrors, type ProviderForm } from '../lib/catalog';
import { formatInt, providerLabel } from '../lib/format';
import { useAction, useAsync, useTitle } from '../lib/hooks';

// The providers admin page: the six built-ins (configured from the
// environment, read-only here) and the providers an operator adds at run
// time. Keys and header values are write-only: the API only ever says
// has_key and the header names, and so does this page.

function AddProvider({ onAdded, onCancel }: { onAdded: (p: Provider) => void; onCancel: () => void }) {
  const [form, setForm] = useState<ProviderForm>(EMPTY_PROVIDER_FORM);
  const [errors, setErrors] = useState<FormErrors>({});
  const set = (patch: Partial<ProviderForm>) => setForm((f) => ({ ...f, ...patch }));
  const action = useAction(async (body: unknown) => onAdded(await api<Provider>('POST', '/admin/providers', body)));
  return (
    <form
      class="form"
      data-testid="provider-form"
      onSubmit={(e) => {
        e.preventDefault();
        const r = providerRequestBody(form);
        if (!r.ok) {
          setErrors(r.errors);
          return;
        }
        setErrors({});
        void action.run(r.body);
      }}
    >
      <div class="grid-2">
        <Field label="Id" hint="Lowercase letters, digits and dashes; models are named id/model." error={errors.id}>
          {(id, d) => <input id={id} class="mono" aria-describedby={d} value={form.id} onInput={(e) => set({ id: e.currentTarget.value })} data-testid="provider-id" />}
        </Field>
        <Field label="Wire format" hint="openai for any OpenAI-compatible API (Groq, Together, vLLM, …).">
          {(id, d) => (
            <select id={id} aria-describedby={d} value={form.format} onChange={(e) => set({ format: e.currentTarget.value })} data-testid="provider-format">
              {PROVIDER_FORMATS.map((f) => (
                <option key={f}>{f}</option>
              ))}
            </select>
          )}
        </Field>
        <Field label="Base URL" hint="Where /chat/completions (or the format's path) lives, e.g. https://api.groq.com/openai/v1." error={errors.base_url}>
          {(id, d) => <input id={id} class="mono" type="url" aria-describedby={d} value={form.base_url} onInput={(e) => set({ base_url: e.currentTarget.value })} data-testid="provider-base-url" />}
        </Field>
        <Field label="API key">
          {(id) => (
            <select id={id} value={form.key_mode} onChange={(e) => set({ key_mode: e.currentTarget.value as ProviderForm['key_mode'] })} data-testid="provider-key-mode">
              <option value="key">Stored by Beaver (sealed)</option>
              <option value="env">From an environment variable</option>
              <option value="none">None</option>
            </select>
          )}
        </Field>
        {form.key_mode === 'key' && (
          <Field label="Key" hint="Write-only: it is never shown again." error={errors.api_key}>
            {(id, d) => (
              <input id={id} type="password" autoComplete="off" aria-describedby={d} value={form.api_key} onInput={(e) => set({ api_key: e.currentTarget.value })} data-testid="provider-api-key" />
            )}
          </Field>
        )}
        {form.key_mode === 'env' && (
          <Field label="Environment variable" hint="Read by every replica from its own environment." error={errors.api_key_env}>
            {(id, d) => <input id={id} class="mono" aria-describedby={d} value={form.api_key_env} onInput={(e) => set({ api_key_env: e.currentTarget.value })} data-testid="provider-api-key-env" />}
          </Field>
        )}
      </div>
      <Field label="Extra headers (optional)" hint='One "Name: value" a line. Values are write-only, like the key.' error={errors.headers}>
        {(id, d) => <textarea id={id} class="mono" rows={2} aria-describedby={d} value={form.headers} onInput={(e) => set({ headers: e.currentTarget.value })} data-testid="provider-headers" />}
      </Field>
      <ErrorBox error={action.error} testid="provider-error" />
      <div class="form-actions">
        <Button type="submit" variant="primary" busy={action.busy} data-testid="provider-submit">
          Add provider
        </Button>
        <Button variant="ghost" onClick={onCancel}>
          Cancel
        </Button>
      </div>
    </form>
  );
}

function TestResult({ r }: { r: ProviderTest }) {
  return (
    <div class="hint" role="status" data-testid="provider-test-result" data-ok={r.ok ? 'true' : 'false'} data-models={r.models_listed}>
      {r.ok ? <Badge kind="ok">ok</Badge> : <Badge kind="bad">failed</Badge>} {formatInt(r.latency_ms)} ms · {formatInt(r.models_listed)} models listed
      {r.error && <div class="field-error">{r.error}</div>}
    </div>
  );
}

function healthBadge(state: string | undefined) {
  if (!state) return <span class="hint">—</span>;
  return <Badge kind={state === 'closed' ? 'ok' : state === 'half_open' ? 'warn' : 'bad'}>{state === 'closed' ? 'healthy' : state.replace('_', '-')}</Badge>;
}

function ProviderRow({ p, health, onDeleted }: { p: Provider; health: string | undefined; onDeleted: () => void }) {
  const [result, setResult] = useState<ProviderTest | null>(null);
  const [confirm, setConfirm] = useState(false);
  const test = useAction(async () => setResult(await api<ProviderTest>('POST', `/admin/providers/${encodeURIComponent(p.id)}/test`)));
  const del = useAction(async () => {
    await api<void>('DELETE', `/admin/providers/${encodeURIComponent(p.id)}`);
    onDeleted();
  });
  return (
    <tr data-testid="provider-row" data-provider={p.id}>
      <td data-label="Provider">
        <div class="mono">{p.id}</div>
        <div class="hint">
          {providerLabel(p.id) !== p.id && `${providerLabel(p.id)} · `}
          {p.builtin ? 'built-in (environment)' : 'added at run time'}
        </div>
      </td>
      <td data-label="Format" class="mono">
        {p.format}
      </td>
      <td data-label="Base URLs">
        {p.base_urls.map((u) => (
          <div key={u} class="mono break">
            {u}
          </div>
        ))}
        {p.headers.length > 0 && <div class="hint">headers: {p.headers.join(', ')}</div>}
      </td>
      <td data-label="Key">{p.has_key ? <Badge kind="ok">set</Badge> : <Badge kind="warn">none</Badge>}</td>
      <td data-label="Health" data-testid="provider-health">
        {healthBadge(health)}
      </td>
      <td data-label="Actions" class="actions-cell">
        <div class="cell-actions">
          <Button small busy={test.busy} onClick={() => void test.run()} data-testid="provider-test">
            Test
          </Button>
          {!p.builtin &&
            (confirm ? (
              <>
                <Button small variant="danger" busy={del.busy} onClick={() => void del.run()} data-testid="provider-delete-confirm">
                  Delete {p.id}
                </Button>
                <Button small variant="ghost" onClick={() => setConfirm(false)}>
                  Keep
                </Button>
              </>
            ) : (
              <Button small variant="ghost" onClick={() => setConfirm(true)} data-testid="provider-delete">
                Delete
              </Button>
            ))}
        </div>
        {result && <TestResult r={result} />}
        {(test.error || del.error) && (
          <div class="field-error" role="alert">
            {test.error || del.error}
          </div>
        )}
      </td>
    </tr>
  );
}

export function AdminProviders() {
  useTitle('Admin · Providers');
  const list = useAsync((signal) => api<{ data: Provider[] }>('GET', '/admin/providers', undefined, { signal }), []);
  // Health is public and optional: the list works without it.
  const status = useAsync((signal) => api<ProvidersStatus>('GET', '/status/providers', undefined, { signal, auth: false }), []);
  const [adding, setAdding] = useState(false);
  const [notice, setNotice] = useState<string | null>(null);
  return (
    <div>
      <PageHeader title="Providers" subtitle="Where models are served from. Built-ins come from the environment; providers added here reach every replica at once.">
        {!adding && (
          <Button variant="primary" onClick={() => setAdding(true)} data-testid="provider-add-toggle">
            Add provider
          </Button>
        )}
        <Button onClick={() => status.reload()}>Refresh health</Button>
      </PageHeader>
      {notice && <Notice kind="success" testid="provider-notice">{notice}</Notice>}
      {adding && (
        <section class="card" aria-labelledby="add-provider-h">
          <h2 id="add-provider-h">Add a provider</h2>
          <AddProvider
            onCancel={() => setAdding(false)}
            onAdded={(p) => {
              setAdding(false);
              setNotice(`Added ${p.id}. Test it, then add its models on the Models page.`);
              list.reload();
              status.reload();
            }}
          />
        </section>
      )}
      <Async state={list} label="Loading providers…">
        {(d) => (
          <div class="table-wrap">
            <table class="table stack" data-testid="providers-table">
              <thead>
                <tr>
                  <th scope="col">Provider</th>
                  <th scope="col">Format</th>
                  <th scope="col">Base URLs</th>
                  <th scope="col">Key</th>
                  <th scope="col">Health</th>
                  <th scope="col">
                    <span class="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {d.data.map((p) => (
                  <ProviderRow
                    key={p.id}
                    p={p}
                    health={status.data?.providers?.[p.id]?.state}
                    onDeleted={() => {
                      setNotice(`Deleted ${p.id}.`);
                      list.reload();
                    }}
                  />
                ))}
              </tbody>
            </table>
          </div>
        )}
      </Async>
      <p class="hint">Health is the circuit breakers' state (GET /status/providers): healthy, half-open (probing) or open (failing over).</p>
    </div>
  );
}
