import { useMemo, useState } from 'preact/hooks';
import { api } from '../api/client';
import type { ApiKey, ApiKeyDetail, ApiKeyWithSecret, LimitReset, Model } from '../api/types';
import { Async, Badge, Button, ErrorBox, Field, Loading, Meter, Notice, PageHeader, SecretBox, When } from '../components/ui';
import { formatInt, localInputToRfc3339, providerLabel, rfc3339ToLocalInput } from '../lib/format';
import { useAction, useAsync, useTitle } from '../lib/hooks';
import { formatMicros, microsToUsdString, parseUsd, toMicros } from '../lib/money';

interface FormValues {
  name: string;
  spendLimit: string;
  limitReset: LimitReset;
  rpm: string;
  expires: string;
  modelsMode: 'all' | 'some';
  models: string[];
  ips: string;
  requireSignature: boolean;
}

function valuesFromKey(k?: ApiKey): FormValues {
  return {
    name: k?.name ?? '',
    spendLimit: k?.spend_limit_micros != null ? microsToUsdString(k.spend_limit_micros) : '',
    limitReset: k?.limit_reset ?? 'none',
    rpm: k?.rpm_limit ? String(k.rpm_limit) : '',
    expires: rfc3339ToLocalInput(k?.expires_at),
    modelsMode: k?.allowed_models ? 'some' : 'all',
    models: k?.allowed_models ?? [],
    ips: (k?.allowed_ips ?? []).join('\n'),
    requireSignature: k?.require_signature ?? false,
  };
}

type Payload = Record<string, unknown>;

/** Builds the JSON policy; on edit only changed fields are sent (null clears). Returns field errors instead when invalid. */
function buildPayload(v: FormValues, original?: ApiKey): { payload: Payload } | { errors: Record<string, string> } {
  const errors: Record<string, string> = {};
  const p: Payload = {};
  const name = v.name.trim();
  if (!name) errors.name = 'Give the key a name.';

  let spend: string | null = null;
  if (v.spendLimit.trim()) {
    const r = parseUsd(v.spendLimit, { allowZero: true });
    if (!r.ok) errors.spendLimit = r.error;
    else spend = r.usd;
  }
  let rpm: number | null = null;
  if (v.rpm.trim()) {
    if (!/^\d+$/.test(v.rpm.trim()) || Number(v.rpm) < 1 || !Number.isSafeInteger(Number(v.rpm))) errors.rpm = 'Use a whole number of requests per minute (1 or more).';
    else rpm = Number(v.rpm.trim());
  }
  let expires: string | null = null;
  if (v.expires) {
    expires = localInputToRfc3339(v.expires);
    if (!expires) errors.expires = 'Pick a valid date and time.';
    else if (new Date(expires).getTime() <= Date.now() && expires !== original?.expires_at) errors.expires = 'The expiry must be in the future.';
  }
  const models = v.modelsMode === 'some' ? v.models : null;
  if (models && models.length === 0) errors.models = 'Pick at least one model, or allow all models.';
  const ipList = v.ips
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter(Boolean);
  const ips = ipList.length ? ipList : null;
  if (ips && ips.some((ip) => !/^[0-9a-fA-F:.]+(\/\d{1,3})?$/.test(ip))) errors.ips = 'Use IPv4/IPv6 addresses or CIDR ranges, one per line.';
  if (Object.keys(errors).length) return { errors };

  const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
  const set = (key: string, value: unknown, old: unknown) => {
    if (!original) {
      if (value !== null && value !== undefined) p[key] = value;
    } else if (!same(value, old)) p[key] = value;
  };
  set('name', name, original?.name);
  const oldSpend = original?.spend_limit_micros != null ? microsToUsdString(original.spend_limit_micros) : null;
  set('spend_limit_usd', spend, oldSpend);
  if (!original ? spend !== null || v.limitReset !== 'none' : v.limitReset !== original.limit_reset) p.limit_reset = v.limitReset;
  set('rpm_limit', rpm, original?.rpm_limit || null);
  set('expires_at', expires, original?.expires_at);
  set('allowed_models', models ? [...models].sort() : null, original?.allowed_models ? [...original.allowed_models].sort() : null);
  set('allowed_ips', ips, original?.allowed_ips);
  if (original ? v.requireSignature !== (original.require_signature ?? false) : v.requireSignature) p.require_signature = v.requireSignature;
  return { payload: p };
}

function KeyForm({ models, original, onSaved, onCancel }: { models: Model[]; original?: ApiKey; onSaved: (k: ApiKeyWithSecret | ApiKey) => void; onCancel: () => void }) {
  const [v, setV] = useState<FormValues>(() => valuesFromKey(original));
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [filter, setFilter] = useState('');
  const upd = (patch: Partial<FormValues>) => setV((old) => ({ ...old, ...patch }));
  const action = useAction(async (payload: Payload) => {
    const k = original
      ? await api<ApiKey>('PATCH', `/api-keys/${encodeURIComponent(original.id)}`, payload)
      : await api<ApiKeyWithSecret>('POST', '/api-keys', payload);
    onSaved(k);
  });
  const shownModels = useMemo(() => {
    const f = filter.trim().toLowerCase();
    const ids = new Set(models.map((m) => m.id));
    // keep already-allowed ids that are no longer listed (inactive models)
    const extra = v.models.filter((id) => !ids.has(id)).map((id) => ({ id, provider: id.split('/')[0], name: id }) as Model);
    return [...models, ...extra].filter((m) => !f || m.id.toLowerCase().includes(f) || (m.name ?? '').toLowerCase().includes(f));
  }, [models, filter, v.models]);

  return (
    <form
      class="form key-form"
      data-testid="key-form"
      onSubmit={(e) => {
        e.preventDefault();
        const r = buildPayload(v, original);
        if ('errors' in r) {
          setErrors(r.errors);
          return;
        }
        setErrors({});
        if (original && Object.keys(r.payload).length === 0) {
          onCancel();
          return;
        }
        void action.run(r.payload);
      }}
    >
      <div class="grid-2">
        <Field label="Name" error={errors.name}>
          {(id, d) => <input id={id} required maxLength={100} value={v.name} aria-describedby={d} onInput={(e) => upd({ name: e.currentTarget.value })} data-testid="key-name" />}
        </Field>
        <Field label="Expires (optional)" hint="Local time. Leave empty for no expiry." error={errors.expires}>
          {(id, d) => <input id={id} type="datetime-local" value={v.expires} aria-describedby={d} onInput={(e) => upd({ expires: e.currentTarget.value })} data-testid="key-expires" />}
        </Field>
        <Field label="Spend limit in USD (optional)" hint="Empty = unlimited (your balance still applies)." error={errors.spendLimit}>
          {(id, d) => (
            <div class="input-prefix">
              <span aria-hidden="true">$</span>
              <input id={id} inputMode="decimal" placeholder="e.g. 25" value={v.spendLimit} aria-describedby={d} onInput={(e) => upd({ spendLimit: e.currentTarget.value })} data-testid="key-spend-limit" />
            </div>
          )}
        </Field>
        <Field label="Spend limit resets" hint="Periods are in UTC.">
          {(id, d) => (
            <select id={id} value={v.limitReset} aria-describedby={d} onChange={(e) => upd({ limitReset: e.currentTarget.value as LimitReset })} data-testid="key-limit-reset">
              <option value="none">Never (lifetime limit)</option>
              <option value="daily">Daily</option>
              <option value="weekly">Weekly</option>
              <option value="monthly">Monthly</option>
            </select>
          )}
        </Field>
        <Field label="Requests per minute (optional)" hint="Empty = your plan's limit." error={errors.rpm}>
          {(id, d) => <input id={id} inputMode="numeric" placeholder="e.g. 60" value={v.rpm} aria-describedby={d} onInput={(e) => upd({ rpm: e.currentTarget.value })} data-testid="key-rpm" />}
        </Field>
        <Field label="Allowed IPs (optional)" hint="One IP or CIDR per line. Empty = any IP." error={errors.ips}>
          {(id, d) => (
            <textarea id={id} rows={3} class="mono" placeholder={'203.0.113.7\n10.0.0.0/8'} value={v.ips} aria-describedby={d} onInput={(e) => upd({ ips: e.currentTarget.value })} data-testid="key-ips" />
          )}
        </Field>
        <label>
          <input type="checkbox" checked={v.requireSignature} onChange={(e) => upd({ requireSignature: e.currentTarget.checked })} data-testid="key-require-signature" /> Require signed
          requests (X-Beaver-Signature; the signing secret is shown once)
        </label>
      </div>
      <fieldset class="fieldset">
        <legend>Allowed models</legend>
        <div class="radio-row">
          <label>
            <input type="radio" name="models-mode" checked={v.modelsMode === 'all'} onChange={() => upd({ modelsMode: 'all' })} data-testid="key-models-all" /> All models
          </label>
          <label>
            <input type="radio" name="models-mode" checked={v.modelsMode === 'some'} onChange={() => upd({ modelsMode: 'some' })} data-testid="key-models-some" /> Only selected models
          </label>
        </div>
        {v.modelsMode === 'some' && (
          <>
            <div class="field">
              <label for="key-model-filter">Filter models</label>
              <input id="key-model-filter" type="search" value={filter} onInput={(e) => setFilter(e.currentTarget.value)} />
            </div>
            <div class="checklist" role="group" aria-label="Models">
              {shownModels.map((m) => (
                <label key={m.id} class="check">
                  <input
                    type="checkbox"
                    checked={v.models.includes(m.id)}
                    onChange={(e) => upd({ models: e.currentTarget.checked ? [...v.models, m.id] : v.models.filter((x) => x !== m.id) })}
                    data-testid="key-model-option"
                    value={m.id}
                  />
                  <span class="mono">{m.id}</span>
                  <span class="hint">{providerLabel(m.provider)}</span>
                </label>
              ))}
            </div>
            <p class="hint">{v.models.length} selected</p>
            {errors.models && (
              <div class="field-error" role="alert">
                {errors.models}
              </div>
            )}
          </>
        )}
      </fieldset>
      <ErrorBox error={action.error} testid="key-form-error" />
      <div class="form-actions">
        <Button type="submit" variant="primary" busy={action.busy} data-testid="key-submit">
          {original ? 'Save changes' : 'Create key'}
        </Button>
        <Button onClick={onCancel} variant="ghost">
          Cancel
        </Button>
      </div>
    </form>
  );
}

const PERIOD: Record<string, string> = { daily: 'day', weekly: 'week', monthly: 'month' };

function KeyDetails({ id }: { id: string }) {
  const detail = useAsync((signal) => api<ApiKeyDetail>('GET', `/api-keys/${encodeURIComponent(id)}`, undefined, { signal }), [id]);
  return (
    <div class="key-details" data-testid="key-details">
      <Async state={detail} label="Loading usage…">
        {(k) => (
          <>
            <Meter
              label={`Spend${PERIOD[k.limit_reset] ? ` this ${PERIOD[k.limit_reset]} (UTC)` : ''}`}
              used={toMicros(k.usage?.spent_micros ?? 0)}
              limit={k.spend_limit_micros != null ? toMicros(k.spend_limit_micros) : null}
              format={(x) => formatMicros(x)}
            />
            <Meter label="Requests this minute" used={BigInt(k.usage?.requests_this_minute ?? 0)} limit={k.rpm_limit ? BigInt(k.rpm_limit) : null} format={(x) => formatInt(Number(x))} />
            <dl class="kv">
              {k.usage?.period_start && (
                <>
                  <dt>Period started</dt>
                  <dd>
                    <When iso={k.usage.period_start} />
                  </dd>
                </>
              )}
              <dt>Models</dt>
              <dd class="mono">{k.allowed_models ? k.allowed_models.join(', ') : 'All'}</dd>
              <dt>IPs</dt>
              <dd class="mono">{k.allowed_ips ? k.allowed_ips.join(', ') : 'Any'}</dd>
              <dt>Last used</dt>
              <dd>
                <When iso={k.last_used_at} />
              </dd>
            </dl>
            <Button small variant="ghost" onClick={detail.reload}>
              Refresh usage
            </Button>
          </>
        )}
      </Async>
    </div>
  );
}

type Confirm = { id: string; kind: 'rotate' | 'delete' } | null;

function KeyRow({
  k,
  models,
  onChanged,
  onSecret,
  confirm,
  setConfirm,
}: {
  k: ApiKey;
  models: Model[];
  onChanged: () => void;
  onSecret: (title: string, secret: string) => void;
  confirm: Confirm;
  setConfirm: (c: Confirm) => void;
}) {
  const [open, setOpen] = useState(false);
  const [editing, setEditing] = useState(false);
  const expired = k.expires_at !== null && new Date(k.expires_at).getTime() < Date.now();
  const toggle = useAction(async () => {
    await api('PATCH', `/api-keys/${encodeURIComponent(k.id)}`, { active: !k.active });
    onChanged();
  });
  const rotate = useAction(async () => {
    const r = await api<ApiKeyWithSecret>('POST', `/api-keys/${encodeURIComponent(k.id)}/rotate`);
    setConfirm(null);
    onSecret(`New secret for “${r.name}”`, r.key);
    onChanged();
  });
  const del = useAction(async () => {
    await api('DELETE', `/api-keys/${encodeURIComponent(k.id)}`);
    setConfirm(null);
    onChanged();
  });
  const confirming = confirm?.id === k.id ? confirm.kind : null;
  const err = toggle.error || rotate.error || del.error;
  return (
    <li class="key-item card" data-testid="key-row" data-key-id={k.id} data-key-name={k.name} data-key-prefix={k.prefix}>
      <div class="key-main">
        <div class="key-title">
          <strong>{k.name}</strong>
          <span class="mono hint" data-testid="key-prefix">
            {k.prefix}…
          </span>
          {k.active ? expired ? <Badge kind="warn">expired</Badge> : <Badge kind="ok">active</Badge> : <Badge kind="bad">disabled</Badge>}
        </div>
        <div class="key-meta hint">
          <span>
            Created <When iso={k.created_at} />
          </span>
          <span>
            Last used <When iso={k.last_used_at} />
          </span>
          {k.expires_at && (
            <span>
              Expires <When iso={k.expires_at} />
            </span>
          )}
          <span>
            Limit {k.spend_limit_micros != null ? `${formatMicros(k.spend_limit_micros)}${k.limit_reset !== 'none' ? ` / ${k.limit_reset}` : ''}` : 'none'}
          </span>
          {k.rpm_limit ? <span>{formatInt(k.rpm_limit)} rpm</span> : null}
        </div>
      </div>
      <div class="key-actions">
        <Button small variant="ghost" aria-expanded={open ? 'true' : 'false'} onClick={() => setOpen(!open)} data-testid="key-details-toggle">
          {open ? 'Hide usage' : 'Usage'}
        </Button>
        <Button small variant="ghost" onClick={() => setEditing(!editing)} aria-expanded={editing ? 'true' : 'false'} data-testid="key-edit">
          Edit
        </Button>
        <Button small onClick={() => setConfirm({ id: k.id, kind: 'rotate' })} data-testid="key-rotate">
          Rotate
        </Button>
        <Button small onClick={() => void toggle.run()} busy={toggle.busy} data-testid="key-toggle-active">
          {k.active ? 'Disable' : 'Enable'}
        </Button>
        <Button small variant="danger" onClick={() => setConfirm({ id: k.id, kind: 'delete' })} data-testid="key-delete">
          Delete
        </Button>
      </div>
      {confirming && (
        <div class="confirm" role="alertdialog" aria-labelledby={`confirm-${k.id}`} data-testid="key-confirm-box">
          <p id={`confirm-${k.id}`}>
            {confirming === 'rotate'
              ? `Rotate “${k.name}”? A new secret is issued and the old one stops working at once.`
              : `Delete “${k.name}”? Requests with it will fail at once. This cannot be undone.`}
          </p>
          <div class="form-actions">
            <Button
              variant={confirming === 'delete' ? 'danger' : 'primary'}
              small
              busy={rotate.busy || del.busy}
              onClick={() => void (confirming === 'rotate' ? rotate.run() : del.run())}
              data-testid="key-confirm"
              autoFocus
            >
              {confirming === 'rotate' ? 'Rotate key' : 'Delete key'}
            </Button>
            <Button small variant="ghost" onClick={() => setConfirm(null)}>
              Cancel
            </Button>
          </div>
        </div>
      )}
      <ErrorBox error={err} />
      {editing && (
        <KeyForm
          models={models}
          original={k}
          onCancel={() => setEditing(false)}
          onSaved={(saved) => {
            setEditing(false);
            if (saved.signing_secret) onSecret(`Signing secret for “${saved.name}”`, saved.signing_secret);
            onChanged();
          }}
        />
      )}
      {open && <KeyDetails id={k.id} />}
    </li>
  );
}

/** Every key of the account: GET /api-keys pages by cursor (500 a page at most). */
async function allKeys(signal: AbortSignal): Promise<{ data: ApiKey[] }> {
  const data: ApiKey[] = [];
  let cursor: string | null = '';
  while (cursor !== null) {
    const q: string = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
    const page: { data: ApiKey[]; next_cursor?: string | null } = await api('GET', `/api-keys?limit=500${q}`, undefined, { signal });
    data.push(...page.data);
    cursor = page.next_cursor ?? null;
  }
  return { data };
}

export function Keys() {
  useTitle('API keys');
  const keys = useAsync((signal) => allKeys(signal), []);
  const models = useAsync((signal) => api<{ data: Model[] }>('GET', '/v1/models', undefined, { signal, auth: false }), []);
  const [creating, setCreating] = useState(false);
  const [secret, setSecret] = useState<{ title: string; key: string } | null>(null);
  const [confirm, setConfirm] = useState<Confirm>(null);
  const modelList = models.data?.data ?? [];

  return (
    <div>
      <PageHeader title="API keys" subtitle="Use a key as a Bearer token against /v1. Each key can carry its own spend limit, rate limit, expiry and allow-lists.">
        {!creating && (
          <Button variant="primary" onClick={() => setCreating(true)} data-testid="key-new">
            New key
          </Button>
        )}
      </PageHeader>
      {secret && <SecretBox title={secret.title} secret={secret.key} onDone={() => setSecret(null)} />}
      {creating && (
        <section class="card" aria-labelledby="new-key-title">
          <h2 id="new-key-title">New API key</h2>
          {models.error && <Notice kind="warn">Could not load the model list; you can still create a key for all models.</Notice>}
          <KeyForm
            models={modelList}
            onCancel={() => setCreating(false)}
            onSaved={(k) => {
              setCreating(false);
              if ('key' in k) setSecret({ title: `Your new key “${k.name}”`, key: k.signing_secret ? `${k.key}\nsigning secret: ${k.signing_secret}` : k.key });
              keys.reload();
            }}
          />
        </section>
      )}
      {keys.error ? (
        <ErrorBox error={keys.error} onRetry={keys.reload} />
      ) : !keys.data ? (
        <Loading label="Loading keys…" />
      ) : keys.data.data.length === 0 ? (
        <div class="empty card" data-testid="keys-empty">
          <p>No API keys yet.</p>
          {!creating && (
            <Button variant="primary" onClick={() => setCreating(true)}>
              Create your first key
            </Button>
          )}
        </div>
      ) : (
        <ul class="key-list" data-testid="key-list">
          {keys.data.data.map((k) => (
            <KeyRow key={k.id} k={k} models={modelList} onChanged={keys.reload} onSecret={(title, key) => setSecret({ title, key })} confirm={confirm} setConfirm={setConfirm} />
          ))}
        </ul>
      )}
    </div>
  );
}
