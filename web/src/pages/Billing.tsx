import { Fragment, type ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { ApiError, api } from '../api/client';
import type { AutoRecharge, Balance, Transaction } from '../api/types';
import { Async, Badge, Button, ErrorBox, Field, Loading, Money, Notice, PageHeader, When } from '../components/ui';
import { useAction, useAsync, usePages, useTitle } from '../lib/hooks';
import { microsToUsdString, parseUsd } from '../lib/money';
import { useLocation } from '../lib/router';
import { BillingDetailsForm, Invoices, Statements } from './Invoices';

const PRESETS = ['10', '25', '50', '100'];

function TopUp() {
  const [amount, setAmount] = useState('25');
  const [fieldError, setFieldError] = useState<string | null>(null);
  const [notConfigured, setNotConfigured] = useState(false);
  const [redirecting, setRedirecting] = useState(false);
  const action = useAction(async (usd: string) => {
    setNotConfigured(false);
    try {
      const r = await api<{ checkout_url: string; session_id: string }>('POST', '/account/top-up/checkout', { amount_usd: usd });
      const url = new URL(r.checkout_url, window.location.href);
      if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error('The server returned an invalid checkout address.');
      setRedirecting(true);
      window.location.assign(url.href);
    } catch (e) {
      if (e instanceof ApiError && e.status === 503) {
        setNotConfigured(true);
        return;
      }
      throw e;
    }
  });
  return (
    <section class="card" id="top-up" aria-labelledby="topup-title">
      <h2 id="topup-title">Add credits</h2>
      <p class="hint">Pay by card through Stripe. Credits are added once the payment is confirmed.</p>
      <form
        class="form"
        data-testid="topup-form"
        onSubmit={(e) => {
          e.preventDefault();
          const p = parseUsd(amount);
          if (!p.ok) {
            setFieldError(p.error);
            return;
          }
          setFieldError(null);
          void action.run(p.usd);
        }}
      >
        <div class="preset-row" role="group" aria-label="Quick amounts">
          {PRESETS.map((p) => (
            <button key={p} type="button" class={`chip${amount === p ? ' chip-on' : ''}`} aria-pressed={amount === p ? 'true' : 'false'} onClick={() => setAmount(p)}>
              ${p}
            </button>
          ))}
        </div>
        <Field label="Amount (USD)" error={fieldError}>
          {(id, d) => (
            <div class="input-prefix">
              <span aria-hidden="true">$</span>
              <input id={id} inputMode="decimal" value={amount} aria-describedby={d} onInput={(e) => setAmount(e.currentTarget.value)} data-testid="topup-amount" />
            </div>
          )}
        </Field>
        <Button type="submit" variant="primary" busy={action.busy || redirecting} data-testid="topup-submit">
          {redirecting ? 'Redirecting to checkout…' : 'Continue to payment'}
        </Button>
        {notConfigured && (
          <Notice kind="warn" testid="topup-not-configured">
            Card top-ups are not configured on this server. Ask an administrator to add credits to your account.
          </Notice>
        )}
        <ErrorBox error={action.error} testid="topup-error" />
      </form>
    </section>
  );
}

/** Auto-recharge is not in the API contract yet: GET/PUT /account/auto-recharge, hidden gracefully on 404/405/501. */
function AutoRechargeSection() {
  const state = useAsync<AutoRecharge | 'unavailable'>(async (signal) => {
    try {
      return await api<AutoRecharge>('GET', '/account/auto-recharge', undefined, { signal });
    } catch (e) {
      if (e instanceof ApiError && (e.status === 404 || e.status === 405 || e.status === 501)) return 'unavailable';
      throw e;
    }
  }, []);
  return (
    <section class="card" aria-labelledby="ar-title" data-testid="auto-recharge">
      <h2 id="ar-title">Auto-recharge</h2>
      <Async state={state} label="Loading auto-recharge settings…">
        {(d) =>
          d === 'unavailable' ? (
            <p class="hint" data-testid="auto-recharge-unavailable">
              Automatic recharge is not available on this server yet. Add credits manually above.
            </p>
          ) : (
            <AutoRechargeForm initial={d} />
          )
        }
      </Async>
    </section>
  );
}

function AutoRechargeForm({ initial }: { initial: AutoRecharge }) {
  const fromMicros = (m?: number | null) => (m === null || m === undefined ? '' : microsToUsdString(m));
  const [enabled, setEnabled] = useState(initial.enabled);
  const [threshold, setThreshold] = useState(fromMicros(initial.threshold_micros));
  const [amount, setAmount] = useState(fromMicros(initial.amount_micros));
  const [errors, setErrors] = useState<{ threshold?: string; amount?: string }>({});
  const [saved, setSaved] = useState(false);
  const action = useAction(async (body: Record<string, unknown>) => {
    await api('PUT', '/account/auto-recharge', body);
    setSaved(true);
  });
  return (
    <form
      class="form"
      onSubmit={(e) => {
        e.preventDefault();
        setSaved(false);
        const errs: typeof errors = {};
        const body: Record<string, unknown> = { enabled };
        if (enabled) {
          const t = parseUsd(threshold, { allowZero: true });
          const a = parseUsd(amount);
          if (!t.ok) errs.threshold = t.error;
          else body.threshold_usd = t.usd;
          if (!a.ok) errs.amount = a.error;
          else body.amount_usd = a.usd;
        }
        setErrors(errs);
        if (Object.keys(errs).length) return;
        void action.run(body);
      }}
    >
      <label class="check">
        <input type="checkbox" checked={enabled} onChange={(e) => setEnabled(e.currentTarget.checked)} /> Recharge my card automatically when the balance runs low
      </label>
      <div class="grid-2">
        <Field label="When the balance falls below (USD)" error={errors.threshold}>
          {(id, d) => <input id={id} inputMode="decimal" disabled={!enabled} value={threshold} aria-describedby={d} onInput={(e) => setThreshold(e.currentTarget.value)} />}
        </Field>
        <Field label="Add this amount (USD)" error={errors.amount}>
          {(id, d) => <input id={id} inputMode="decimal" disabled={!enabled} value={amount} aria-describedby={d} onInput={(e) => setAmount(e.currentTarget.value)} />}
        </Field>
      </div>
      <Button type="submit" variant="primary" busy={action.busy}>
        Save auto-recharge
      </Button>
      <ErrorBox error={action.error} />
      {saved && <Notice kind="success">Saved.</Notice>}
    </form>
  );
}

function titleCase(k: string): string {
  return k.replace(/_(micros|usd)$/, '').replace(/_/g, ' ').replace(/^\w/, (c) => c.toUpperCase());
}

/** Renders an unknown JSON value readably: *_micros as money, arrays of objects as tables. */
function Generic({ value, name }: { value: unknown; name?: string }): ComponentChildren {
  if (value === null || value === undefined) return '—';
  if (Array.isArray(value)) {
    if (value.length === 0) return <span class="hint">None.</span>;
    if (typeof value[0] !== 'object' || value[0] === null) return value.join(', ');
    const keys = [...new Set(value.flatMap((r) => Object.keys(r as object)))].filter((k) => !(k.endsWith('_usd') && value.some((r) => (r as Record<string, unknown>)[k.replace(/_usd$/, '_micros')] !== undefined)));
    return (
      <div class="table-wrap">
        <table class="table stack">
          {name && <caption class="table-caption">{titleCase(name)}</caption>}
          <thead>
            <tr>
              {keys.map((k) => (
                <th key={k} scope="col" class={k.endsWith('_micros') ? 'num' : ''}>
                  {titleCase(k)}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {value.map((row, i) => (
              <tr key={i}>
                {keys.map((k) => (
                  <td key={k} data-label={titleCase(k)} class={k.endsWith('_micros') ? 'num' : ''}>
                    <Cell k={k} v={(row as Record<string, unknown>)[k]} />
                  </td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    );
  }
  if (typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    const keys = Object.keys(obj).filter((k) => !(k.endsWith('_usd') && obj[k.replace(/_usd$/, '_micros')] !== undefined));
    const scalars = keys.filter((k) => typeof obj[k] !== 'object' || obj[k] === null);
    const nested = keys.filter((k) => typeof obj[k] === 'object' && obj[k] !== null);
    return (
      <>
        {scalars.length > 0 && (
          <dl class="kv">
            {scalars.map((k) => (
              <Fragment key={k}>
                <dt>{titleCase(k)}</dt>
                <dd>
                  <Cell k={k} v={obj[k]} />
                </dd>
              </Fragment>
            ))}
          </dl>
        )}
        {nested.map((k) => (
          <div key={k} class="generic-block">
            {!Array.isArray(obj[k]) && <h3>{titleCase(k)}</h3>}
            {Array.isArray(obj[k]) && (obj[k] as unknown[]).length === 0 && <h3>{titleCase(k)}</h3>}
            <Generic value={obj[k]} name={k} />
          </div>
        ))}
      </>
    );
  }
  return String(value);
}

function Cell({ k, v }: { k: string; v: unknown }) {
  if (k.endsWith('_micros') && (typeof v === 'number' || typeof v === 'string') && /^-?\d+$/.test(String(v))) return <Money micros={v as number} />;
  if (typeof v === 'string' && /^\d{4}-\d{2}-\d{2}T/.test(v)) return <When iso={v} />;
  if (typeof v === 'object' && v !== null) return <span class="mono">{JSON.stringify(v)}</span>;
  return <>{v === null || v === undefined ? '—' : String(v)}</>;
}

const TYPE_BADGE: Record<string, 'ok' | 'neutral' | 'info' | 'warn'> = { topup: 'ok', charge: 'neutral', refund: 'info', adjustment: 'warn' };

function Transactions() {
  const { rows, loading, error, cursor, more, refresh, retry } = usePages<Transaction>('/account/transactions', 50);

  return (
    <section class="card" aria-labelledby="tx-title">
      <div class="section-head row">
        <h2 id="tx-title">Transactions</h2>
        <Button small variant="ghost" onClick={refresh} disabled={loading}>
          Refresh
        </Button>
      </div>
      {rows.length === 0 && !loading && !error && <p class="empty hint">No transactions yet.</p>}
      {rows.length > 0 && (
        <div class="table-wrap">
          <table class="table stack" data-testid="tx-table">
            <thead>
              <tr>
                <th scope="col">Date</th>
                <th scope="col">Type</th>
                <th scope="col">Description</th>
                <th scope="col" class="num">
                  Amount
                </th>
                <th scope="col" class="num">
                  Balance after
                </th>
              </tr>
            </thead>
            <tbody>
              {rows.map((t) => (
                <tr key={t.id} data-testid="tx-row" data-type={t.type}>
                  <td data-label="Date">
                    <When iso={t.created_at} />
                  </td>
                  <td data-label="Type">
                    <Badge kind={TYPE_BADGE[t.type] ?? 'neutral'}>{t.type}</Badge>
                  </td>
                  <td data-label="Description">
                    <div>{t.description || '—'}</div>
                    {t.reference && <div class="mono hint small-break">{t.reference}</div>}
                  </td>
                  <td data-label="Amount" class="num">
                    <Money micros={t.amount_micros} signed testid="tx-amount" />
                  </td>
                  <td data-label="Balance after" class="num">
                    <Money micros={t.balance_after_micros} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <ErrorBox error={error} onRetry={retry} />
      {loading && <Loading label="Loading transactions…" />}
      {!loading && cursor && !error && (
        <Button onClick={more} data-testid="tx-more">
          Load more
        </Button>
      )}
    </section>
  );
}

export function Billing() {
  useTitle('Billing');
  const loc = useLocation();
  const balance = useAsync((signal) => api<Balance>('GET', '/account/balance', undefined, { signal }), []);
  const billing = useAsync((signal) => api<unknown>('GET', '/account/billing', undefined, { signal }), []);
  const checkout = loc.query.get('checkout') ?? loc.query.get('topup');
  useEffect(() => {
    if (window.location.hash === '#top-up') document.getElementById('top-up')?.scrollIntoView();
  }, []);
  return (
    <div>
      <PageHeader title="Billing" subtitle="Credits, top-ups and every charge, in exact amounts." />
      {checkout === 'success' && <Notice kind="success">Thanks! Your payment is being confirmed; the credits appear in your balance shortly.</Notice>}
      {(checkout === 'cancel' || checkout === 'cancelled') && <Notice kind="warn">The checkout was cancelled. Nothing was charged.</Notice>}
      <section class="stats" aria-label="Balance">
        <Async state={balance} label="Loading balance…">
          {(b) => (
            <>
              <div class="stat card">
                <div class="stat-label">Balance</div>
                <div class="stat-value">
                  <Money micros={b.balance_micros} testid="billing-balance" />
                </div>
              </div>
              <div class="stat card">
                <div class="stat-label">Reserved</div>
                <div class="stat-value">
                  <Money micros={b.reserved_micros} />
                </div>
              </div>
              <div class="stat card">
                <div class="stat-label">Available</div>
                <div class="stat-value">
                  <Money micros={b.available_micros} />
                </div>
              </div>
            </>
          )}
        </Async>
      </section>
      <div class="grid-2">
        <TopUp />
        <AutoRechargeSection />
      </div>
      <section class="card" aria-labelledby="summary-title">
        <h2 id="summary-title">Billing summary</h2>
        <Async state={billing} label="Loading billing summary…">
          {(b) => <Generic value={b} />}
        </Async>
      </section>
      <Invoices />
      <div class="grid-2">
        <Statements />
        <BillingDetailsForm />
      </div>
      <Transactions />
    </div>
  );
}

