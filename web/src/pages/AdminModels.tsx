import { useMemo, useState } from 'preact/hooks';
import { api } from '../api/client';
import type { AdminModel, Provider } from '../api/types';
import { Async, Badge, Button, ErrorBox, Field, Notice, PageHeader, When } from '../components/ui';
import {
  EMPTY_MODEL_FORM,
  PRICE_FIELDS,
  adminModelPath,
  capabilityNames,
  filterModels,
  modelFormOf,
  modelRequestBody,
  modelState,
  type FormErrors,
  type ModelForm,
  type PriceKey,
  type StatusFilter,
} from '../lib/catalog';
import { categoryLabel, providerLabel } from '../lib/format';
import { useAction, useAsync, useTitle } from '../lib/hooks';
import { formatMicros } from '../lib/money';
import { TEMPORAL_UI } from './Admin';

// The models admin page: list with filters, add, edit every price and the
// aliases, retire (with a replacement) and bring back. Base prices are the
// providers'; the charged ones follow at the next price computation, which
// the API starts itself after a change that needs one.

/** Test ids of the price inputs; input, output and fee keep the ids the first version of the page had. */
const PRICE_TESTID: Record<PriceKey, string> = {
  input: 'admin-model-input',
  output: 'admin-model-output',
  cached_input: 'admin-model-cached',
  cache_write: 'admin-model-cache-write',
  reasoning: 'admin-model-reasoning',
  request_fee: 'admin-model-fee',
};

/** The add and edit form; `original` null adds a model. */
function ModelEditor({ original, providers, onDone, onCancel }: { original: AdminModel | null; providers: Provider[]; onDone: (m: AdminModel) => void; onCancel: () => void }) {
  const [form, setForm] = useState<ModelForm>(() => (original ? modelFormOf(original) : { ...EMPTY_MODEL_FORM, provider: providers[0]?.id ?? '' }));
  const [errors, setErrors] = useState<FormErrors>({});
  const set = (patch: Partial<ModelForm>) => setForm((f) => ({ ...f, ...patch }));
  const setPrice = (k: PriceKey, v: string) => setForm((f) => ({ ...f, prices: { ...f.prices, [k]: v } }));
  const action = useAction(async (body: Record<string, unknown>) => {
    const m = original ? await api<AdminModel>('PATCH', adminModelPath(original), body) : await api<AdminModel>('POST', '/admin/models', body);
    onDone(m);
  });
  const text = (label: string, key: 'provider_model' | 'name' | 'context_length' | 'max_output_tokens' | 'capabilities' | 'aliases', testid: string, hint?: string) => (
    <Field label={label} hint={hint} error={errors[key]}>
      {(id, d) => <input id={id} aria-describedby={d} value={form[key]} onInput={(e) => set({ [key]: e.currentTarget.value })} data-testid={testid} />}
    </Field>
  );
  return (
    <form
      class="form"
      data-testid="model-form"
      onSubmit={(e) => {
        e.preventDefault();
        const r = modelRequestBody(form, original);
        if (!r.ok) {
          setErrors(r.errors);
          return;
        }
        setErrors({});
        if (original && Object.keys(r.body).length === 0) {
          onCancel(); // nothing changed: no request, no new price version
          return;
        }
        void action.run(r.body);
      }}
    >
      {!original && (
        <div class="grid-2">
          <Field label="Provider" error={errors.provider}>
            {(id) => (
              <select id={id} value={form.provider} onChange={(e) => set({ provider: e.currentTarget.value })} data-testid="model-provider">
                {providers.map((p) => (
                  <option key={p.id} value={p.id}>
                    {providerLabel(p.id)}
                    {p.builtin ? '' : ' (added)'}
                  </option>
                ))}
              </select>
            )}
          </Field>
          {text('Provider model', 'provider_model', 'model-provider-model', 'The name the provider knows it by; the id is provider/this.')}
        </div>
      )}
      <fieldset class="fieldset">
        <legend>Base prices (USD, the provider's)</legend>
        <div class="grid-3">
          {PRICE_FIELDS.map((f) => (
            <Field key={f.key} label={f.label} error={errors[f.key]} hint={f.follows ? `Empty: ${f.follows}.` : undefined}>
              {(id, d) => (
                <input id={id} class="mono" inputMode="decimal" aria-describedby={d} value={form.prices[f.key]} onInput={(e) => setPrice(f.key, e.currentTarget.value)} data-testid={PRICE_TESTID[f.key]} />
              )}
            </Field>
          ))}
        </div>
      </fieldset>
      <div class="grid-2">
        {text('Name', 'name', 'model-name', original ? undefined : 'Defaults to the provider model.')}
        {text('Aliases', 'aliases', 'model-aliases', 'Other names that resolve to this model, separated by commas.')}
        {text('Context length (tokens)', 'context_length', 'model-context')}
        {text('Max output tokens', 'max_output_tokens', 'model-max-output', original ? undefined : 'Defaults to 4096.')}
        {text('Capabilities', 'capabilities', 'model-capabilities', 'E.g. tools, vision, json, reasoning, embeddings.')}
      </div>
      <ErrorBox error={action.error} testid="model-form-error" />
      <div class="form-actions">
        <Button type="submit" variant="primary" busy={action.busy} data-testid={original ? 'admin-model-save' : 'model-submit'}>
          {original ? 'Save changes' : 'Add model'}
        </Button>
        <Button variant="ghost" onClick={onCancel}>
          Cancel
        </Button>
      </div>
    </form>
  );
}

function RetireForm({ m, candidates, onDone, onCancel }: { m: AdminModel; candidates: string[]; onDone: () => void; onCancel: () => void }) {
  const [replacement, setReplacement] = useState('');
  const action = useAction(async () => {
    const r = replacement.trim();
    await api<void>('DELETE', adminModelPath(m) + (r ? `?replacement=${encodeURIComponent(r)}` : ''));
    onDone();
  });
  return (
    <form
      class="form inline-form"
      data-testid="retire-form"
      onSubmit={(e) => {
        e.preventDefault();
        void action.run();
      }}
    >
      <Field label="Replacement (optional)" hint="Requests for the retired model are told to use it.">
        {(id, d) => (
          <>
            <input id={id} class="mono" list={`${id}-ids`} aria-describedby={d} placeholder="provider/model" value={replacement} onInput={(e) => setReplacement(e.currentTarget.value)} data-testid="admin-model-replacement" />
            {/* Suggestions only: the API checks the replacement is a model that is not retired. */}
            <datalist id={`${id}-ids`}>
              {candidates.map((c) => (
                <option key={c} value={c} />
              ))}
            </datalist>
          </>
        )}
      </Field>
      <Button type="submit" variant="danger" busy={action.busy} data-testid="admin-model-retire-confirm">
        Retire {m.id}
      </Button>
      <Button variant="ghost" onClick={onCancel}>
        Cancel
      </Button>
      <ErrorBox error={action.error} testid="retire-error" />
    </form>
  );
}

function StateBadges({ m }: { m: AdminModel }) {
  const st = modelState(m);
  return (
    <div class="hint" data-testid="admin-model-state" data-state={st}>
      {st === 'retired' ? (
        <>
          <Badge kind="bad">retired</Badge> <When iso={m.retired_at} />
          {m.replacement && (
            <>
              {' '}
              → <span class="mono">{m.replacement}</span>
            </>
          )}
        </>
      ) : st === 'inactive' ? (
        <Badge kind="warn">inactive</Badge>
      ) : (
        <Badge kind="ok">active</Badge>
      )}
    </div>
  );
}

type Mode = 'view' | 'edit' | 'retire';

function ModelRow({ m, providers, candidates, onChanged }: { m: AdminModel; providers: Provider[]; candidates: string[]; onChanged: (updated: AdminModel | null) => void }) {
  const [mode, setMode] = useState<Mode>('view');
  // Bringing a model back (active: true) also clears an inactive flag that was never a retirement.
  const reactivate = useAction(async () => onChanged(await api<AdminModel>('PATCH', adminModelPath(m), { active: true })));
  const deactivate = useAction(async () => onChanged(await api<AdminModel>('PATCH', adminModelPath(m), { active: false })));
  const st = modelState(m);
  return (
    <>
      <tr data-testid="admin-model-row" data-model={m.id} data-state={st} class={m.active ? '' : 'row-inactive'}>
        <td data-label="Model">
          <div class="mono">{m.id}</div>
          <div class="hint">
            {m.name} · {providerLabel(m.provider)} · {categoryLabel(m.pricing?.category)} · +{(m.pricing?.markup_permille ?? 0) / 10}%
          </div>
          {m.aliases?.length > 0 && (
            <div class="hint" data-testid="admin-model-aliases">
              aka <span class="mono">{m.aliases.join(', ')}</span>
            </div>
          )}
          {capabilityNames(m.capabilities).length > 0 && <div class="hint">{capabilityNames(m.capabilities).join(' · ')}</div>}
          <StateBadges m={m} />
        </td>
        <td data-label="Base input / 1M" class="num">
          {formatMicros(m.base.input_per_million_micros)}
          {m.base.cached_input_per_million_micros !== undefined && m.base.cached_input_per_million_micros !== m.base.input_per_million_micros && (
            <div class="hint">cached {formatMicros(m.base.cached_input_per_million_micros)}</div>
          )}
        </td>
        <td data-label="Base output / 1M" class="num">
          {formatMicros(m.base.output_per_million_micros)}
          {m.base.reasoning_per_million_micros !== undefined && m.base.reasoning_per_million_micros !== m.base.output_per_million_micros && (
            <div class="hint">reasoning {formatMicros(m.base.reasoning_per_million_micros)}</div>
          )}
        </td>
        <td data-label="Base fee" class="num">
          {formatMicros(m.base.request_fee_micros ?? 0)}
        </td>
        <td data-label="Charged in / out" class="num">
          {formatMicros(m.pricing.input_per_million_micros)} / {formatMicros(m.pricing.output_per_million_micros)}
          <div class="hint">v{m.pricing.price_version}</div>
        </td>
        <td data-label="Actions" class="actions-cell">
          <div class="cell-actions">
            <Button small onClick={() => setMode(mode === 'edit' ? 'view' : 'edit')} aria-expanded={mode === 'edit' ? 'true' : 'false'} data-testid="admin-model-edit">
              Edit
            </Button>
            {st === 'active' && (
              <>
                <Button small variant="ghost" busy={deactivate.busy} onClick={() => void deactivate.run()} data-testid="admin-model-active">
                  Deactivate
                </Button>
                <Button small variant="danger" onClick={() => setMode(mode === 'retire' ? 'view' : 'retire')} aria-expanded={mode === 'retire' ? 'true' : 'false'} data-testid="admin-model-retire">
                  Retire
                </Button>
              </>
            )}
            {st !== 'active' && (
              <Button small variant="ghost" busy={reactivate.busy} onClick={() => void reactivate.run()} data-testid="admin-model-active">
                {st === 'retired' ? 'Bring back' : 'Activate'}
              </Button>
            )}
          </div>
          {(reactivate.error || deactivate.error) && (
            <div class="field-error" role="alert">
              {reactivate.error || deactivate.error}
            </div>
          )}
        </td>
      </tr>
      {mode !== 'view' && (
        <tr class="detail-row" data-testid={mode === 'edit' ? 'admin-model-editor' : 'admin-model-retirer'}>
          <td colSpan={6}>
            {mode === 'edit' ? (
              <ModelEditor
                original={m}
                providers={providers}
                onCancel={() => setMode('view')}
                onDone={(u) => {
                  setMode('view');
                  onChanged(u);
                }}
              />
            ) : (
              <RetireForm
                m={m}
                candidates={candidates.filter((c) => c !== m.id)}
                onCancel={() => setMode('view')}
                onDone={() => {
                  setMode('view');
                  onChanged(null); // DELETE answers 204: reload for retired_at
                }}
              />
            )}
          </td>
        </tr>
      )}
    </>
  );
}

export function AdminModels() {
  useTitle('Admin · Models');
  const models = useAsync((signal) => api<{ data: AdminModel[] }>('GET', '/admin/models', undefined, { signal }), []);
  // The provider select of the add form; the page works without it (built-ins are known by the models).
  const providers = useAsync((signal) => api<{ data: Provider[] }>('GET', '/admin/providers', undefined, { signal }), []);
  const [text, setText] = useState('');
  const [provider, setProvider] = useState('');
  const [status, setStatus] = useState<StatusFilter>('all');
  const [adding, setAdding] = useState(false);
  const [notice, setNotice] = useState<string | null>(null);
  const [workflow, setWorkflow] = useState<string | null>(null);
  const recalc = useAction(async () => {
    const r = await api<{ workflow_id: string }>('POST', '/admin/pricing/recalculate');
    setWorkflow(r.workflow_id);
  });
  const all = models.data?.data ?? [];
  const providerIds = useMemo(() => [...new Set([...(providers.data?.data ?? []).map((p) => p.id), ...all.map((m) => m.provider)])].sort(), [providers.data, all]);
  const rows = useMemo(() => filterModels(all, { text, provider, status }), [all, text, provider, status]);
  const activeIds = useMemo(() => all.filter((m) => modelState(m) === 'active').map((m) => m.id).sort(), [all]);
  const changed = (u: AdminModel | null, what: string) => {
    setNotice(what);
    if (u) models.setData({ data: all.map((x) => (x.id === u.id ? u : x)) });
    // The charged prices come from the price computation the change started: reload to show them.
    models.reload();
  };
  return (
    <div>
      <PageHeader title="Models and pricing" subtitle="Base prices are the providers'. Charged prices add the category markup and change at the next price computation.">
        {!adding && (
          <Button variant="primary" onClick={() => setAdding(true)} data-testid="model-add-toggle">
            Add model
          </Button>
        )}
        <Button busy={recalc.busy} onClick={() => void recalc.run()} data-testid="admin-recalculate">
          Recalculate prices now
        </Button>
      </PageHeader>
      <ErrorBox error={recalc.error} testid="admin-recalculate-error" />
      {workflow && (
        <Notice kind="success" testid="admin-recalculate-started">
          Repricing started: workflow <span class="mono">{workflow}</span>.{' '}
          <a href={`${TEMPORAL_UI}/namespaces/default/workflows/${encodeURIComponent(workflow)}`} target="_blank" rel="noopener noreferrer">
            Open in Temporal UI ↗
          </a>
        </Notice>
      )}
      {notice && <Notice testid="admin-models-notice">{notice}</Notice>}
      {adding && (
        <section class="card" aria-labelledby="add-model-h">
          <h2 id="add-model-h">Add a model</h2>
          <Async state={providers} label="Loading providers…">
            {(p) => (
              <ModelEditor
                original={null}
                providers={p.data}
                onCancel={() => setAdding(false)}
                onDone={(m) => {
                  setAdding(false);
                  setText(m.id);
                  setStatus('all');
                  setProvider('');
                  models.setData({ data: [...all.filter((x) => x.id !== m.id), m] });
                  changed(null, `Added ${m.id}; it is priced in a new price version.`);
                }}
              />
            )}
          </Async>
        </section>
      )}
      <div class="filters admin-filters" role="search">
        <div class="field">
          <label for="admin-model-filter">Filter</label>
          <input id="admin-model-filter" type="search" placeholder="id, name or alias" value={text} onInput={(e) => setText(e.currentTarget.value)} data-testid="admin-model-filter" />
        </div>
        <div class="field">
          <label for="admin-model-provider">Provider</label>
          <select id="admin-model-provider" value={provider} onChange={(e) => setProvider(e.currentTarget.value)} data-testid="admin-model-provider-filter">
            <option value="">All providers</option>
            {providerIds.map((p) => (
              <option key={p} value={p}>
                {providerLabel(p)}
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="admin-model-status">Status</label>
          <select id="admin-model-status" value={status} onChange={(e) => setStatus(e.currentTarget.value as StatusFilter)} data-testid="admin-model-status-filter">
            <option value="all">All</option>
            <option value="active">Active</option>
            <option value="inactive">Inactive</option>
            <option value="retired">Retired</option>
          </select>
        </div>
      </div>
      <Async state={models} label="Loading models…">
        {() =>
          rows.length === 0 ? (
            <p class="empty card">No model matches these filters.</p>
          ) : (
            <div class="table-wrap">
              <table class="table stack" data-testid="admin-models-table">
                <thead>
                  <tr>
                    <th scope="col">Model</th>
                    <th scope="col" class="num">
                      Base input / 1M
                    </th>
                    <th scope="col" class="num">
                      Base output / 1M
                    </th>
                    <th scope="col" class="num">
                      Base fee
                    </th>
                    <th scope="col" class="num">
                      Charged in / out
                    </th>
                    <th scope="col">
                      <span class="sr-only">Actions</span>
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {rows.map((m) => (
                    <ModelRow key={m.id} m={m} providers={providers.data?.data ?? []} candidates={activeIds} onChanged={(u) => changed(u, u ? `Saved ${u.id}.` : `Retired ${m.id}.`)} />
                  ))}
                </tbody>
              </table>
            </div>
          )
        }
      </Async>
      <p class="hint">
        Workflows, schedules and their history: <a href={TEMPORAL_UI} target="_blank" rel="noopener noreferrer">Temporal UI ({TEMPORAL_UI}) ↗</a>
      </p>
    </div>
  );
}
