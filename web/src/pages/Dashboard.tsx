import { useState } from 'preact/hooks';
import { api, session } from '../api/client';
import type { Account, Balance, Usage } from '../api/types';
import { UsageChart, type DayPoint } from '../components/UsageChart';
import { UsageReportsForm } from '../components/UsageReportsForm';
import { Async, Badge, Button, ErrorBox, Field, Loading, Money, Notice, PageHeader } from '../components/ui';
import { formatInt, lastUtcDays } from '../lib/format';
import { useAction, useAsync, useSession, useTitle } from '../lib/hooks';
import { microsToUsdString, parseUsd, sumMicros } from '../lib/money';
import { Link } from '../lib/router';

/** Spend since the 1st of the current UTC month, from usage by day. */
export function monthToDate(byDay: { date: string; cost_micros: number }[], now = new Date()): bigint {
  const prefix = now.toISOString().slice(0, 7);
  return sumMicros(byDay.filter((d) => d.date.startsWith(prefix)).map((d) => d.cost_micros));
}

function toPoints(u: Usage): DayPoint[] {
  const byDate = new Map(u.by_day.map((d) => [d.date, d]));
  return lastUtcDays(u.days).map((date) => {
    const d = byDate.get(date);
    return { date, cost_micros: d?.cost_micros ?? 0, requests: d?.requests ?? 0 };
  });
}

function ThresholdForm({ account }: { account: Account }) {
  const current = account.low_balance_threshold_micros;
  const [value, setValue] = useState(current === null || current === undefined ? '' : microsToUsdString(current));
  const [saved, setSaved] = useState(false);
  const [fieldError, setFieldError] = useState<string | null>(null);
  const action = useAction(async (usd: string | null) => {
    const res = await api<{ account: Account }>('PATCH', '/users/me', { low_balance_threshold_usd: usd });
    session.setAccount(res.account);
    setSaved(true);
  });
  return (
    <form
      class="form inline-form"
      onSubmit={(e) => {
        e.preventDefault();
        setSaved(false);
        const v = value.trim();
        if (v === '') {
          setFieldError(null);
          void action.run(null);
          return;
        }
        const p = parseUsd(v, { allowZero: true });
        if (!p.ok) {
          setFieldError(p.error);
          return;
        }
        setFieldError(null);
        void action.run(p.usd);
      }}
      data-testid="threshold-form"
    >
      <Field label="Low-balance alert threshold (USD)" hint="We email you when your balance drops below this. Leave empty to turn alerts off." error={fieldError}>
        {(id, d) => (
          <div class="input-prefix">
            <span aria-hidden="true">$</span>
            <input
              id={id}
              inputMode="decimal"
              placeholder="e.g. 5.00"
              value={value}
              aria-describedby={d}
              aria-invalid={fieldError ? 'true' : undefined}
              onInput={(e) => {
                setValue(e.currentTarget.value);
                setSaved(false);
              }}
              data-testid="threshold-input"
            />
          </div>
        )}
      </Field>
      <Button type="submit" variant="primary" busy={action.busy} data-testid="threshold-save">
        Save
      </Button>
      <ErrorBox error={action.error} />
      {saved && (
        <Notice kind="success" testid="threshold-saved">
          Saved.
        </Notice>
      )}
    </form>
  );
}

export function Dashboard() {
  useTitle('Dashboard');
  const s = useSession();
  const balance = useAsync((signal) => api<Balance>('GET', '/account/balance', undefined, { signal }), []);
  const usage = useAsync((signal) => api<Usage>('GET', '/account/usage?days=30', undefined, { signal }), []);
  // The 30-day window may start after the 1st of the month (on the 29th–31st): then ask for 90 days for the month total.
  const needLonger = new Date().getUTCDate() >= 29;
  const usage90 = useAsync(
    (signal) => (needLonger ? api<Usage>('GET', '/account/usage?days=90', undefined, { signal }) : Promise.resolve(null)),
    [needLonger],
  );
  const acct = s.account;
  const monthSource = needLonger ? usage90.data : usage.data;
  const mtd = monthSource ? monthToDate(monthSource.by_day) : null;
  const low =
    balance.data && acct?.low_balance_threshold_micros != null && BigInt(balance.data.available_micros) < BigInt(acct.low_balance_threshold_micros);

  return (
    <div>
      <PageHeader title="Dashboard" subtitle={acct ? `Signed in as ${acct.email}` : undefined}>
        <Link class="btn btn-primary" href="/billing#top-up">
          Add credits
        </Link>
        <Link class="btn btn-secondary" href="/playground">
          Playground
        </Link>
      </PageHeader>
      {acct && !acct.email_verified && (
        <Notice kind="warn" testid="unverified-notice">
          Your email address is not verified yet. Use the link we emailed you.
        </Notice>
      )}
      {low && (
        <Notice kind="warn" testid="low-balance-notice">
          Your available balance is below your alert threshold. <Link href="/billing#top-up">Add credits</Link> to keep requests flowing.
        </Notice>
      )}
      <section class="stats" aria-label="Balance">
        {balance.error ? (
          <ErrorBox error={balance.error} onRetry={balance.reload} />
        ) : !balance.data ? (
          <Loading label="Loading balance…" />
        ) : (
          <>
            <div class="stat card">
              <div class="stat-label">Balance</div>
              <div class="stat-value">
                <Money micros={balance.data.balance_micros} testid="dash-balance" />
              </div>
            </div>
            <div class="stat card">
              <div class="stat-label">Reserved for requests in flight</div>
              <div class="stat-value">
                <Money micros={balance.data.reserved_micros} testid="dash-reserved" />
              </div>
            </div>
            <div class="stat card">
              <div class="stat-label">Available</div>
              <div class="stat-value">
                <Money micros={balance.data.available_micros} testid="dash-available" />
              </div>
            </div>
            <div class="stat card">
              <div class="stat-label">Spend this month (UTC)</div>
              <div class="stat-value">{mtd === null ? usage.error || usage90.error ? '—' : '…' : <Money micros={mtd} testid="dash-month-spend" />}</div>
            </div>
          </>
        )}
      </section>

      <section class="card" aria-labelledby="usage-title">
        <div class="section-head">
          <h2 id="usage-title">Last 30 days</h2>
        </div>
        <Async state={usage} label="Loading usage…">
          {(u) => (
            <>
              <div class="mini-stats">
                <span>
                  <strong>{formatInt(u.totals.requests)}</strong> requests
                </span>
                <span>
                  <strong>{formatInt(u.totals.prompt_tokens)}</strong> prompt tokens
                </span>
                <span>
                  <strong>{formatInt(u.totals.completion_tokens)}</strong> completion tokens
                </span>
                <span>
                  <strong>
                    <Money micros={u.totals.cost_micros} testid="dash-30d-cost" />
                  </strong>{' '}
                  spent
                </span>
              </div>
              <UsageChart points={toPoints(u)} />
              {u.by_model.length > 0 && (
                <div class="table-wrap">
                  <table class="table stack">
                    <caption class="table-caption">By model</caption>
                    <thead>
                      <tr>
                        <th scope="col">Model</th>
                        <th scope="col" class="num">
                          Requests
                        </th>
                        <th scope="col" class="num">
                          Tokens in / out
                        </th>
                        <th scope="col" class="num">
                          Cost
                        </th>
                      </tr>
                    </thead>
                    <tbody>
                      {[...u.by_model]
                        .sort((a, b) => (BigInt(b.cost_micros) > BigInt(a.cost_micros) ? 1 : BigInt(b.cost_micros) < BigInt(a.cost_micros) ? -1 : 0))
                        .map((m) => (
                          <tr key={m.model}>
                            <td data-label="Model" class="mono">
                              {m.model}
                            </td>
                            <td data-label="Requests" class="num">
                              {formatInt(m.requests)}
                            </td>
                            <td data-label="Tokens in / out" class="num">
                              {formatInt(m.prompt_tokens)} / {formatInt(m.completion_tokens)}
                            </td>
                            <td data-label="Cost" class="num">
                              <Money micros={m.cost_micros} />
                            </td>
                          </tr>
                        ))}
                    </tbody>
                  </table>
                </div>
              )}
            </>
          )}
        </Async>
      </section>

      <div class="grid-2">
        <section class="card" aria-labelledby="alerts-title">
          <h2 id="alerts-title">Alerts and reports</h2>
          {acct ? <ThresholdForm key={acct.id} account={acct} /> : <Loading />}
          {acct && <UsageReportsForm key={`reports-${acct.id}`} account={acct} />}
        </section>
        <section class="card" aria-labelledby="plan-title">
          <h2 id="plan-title">Plan and limits</h2>
          {acct && (
            <dl class="kv">
              <dt>Plan</dt>
              <dd>
                <Badge kind="info">{acct.plan}</Badge>
              </dd>
              <dt>Requests per minute</dt>
              <dd>{acct.rpm_limit ? formatInt(acct.rpm_limit) : 'Unlimited'}</dd>
              <dt>Requests per month</dt>
              <dd>{acct.monthly_request_limit ? formatInt(acct.monthly_request_limit) : 'Unlimited'}</dd>
              <dt>Email</dt>
              <dd>{acct.email_verified ? <Badge kind="ok">verified</Badge> : <Badge kind="warn">not verified</Badge>}</dd>
            </dl>
          )}
        </section>
      </div>
    </div>
  );
}
