import { useState } from 'preact/hooks';
import { api, session } from '../api/client';
import type { Account, ApiKeyWithSecret, Transaction } from '../api/types';
import { Async, Badge, Button, ErrorBox, Field, Money, Notice, PageHeader, SecretBox, When } from '../components/ui';
import { formatInt } from '../lib/format';
import { useAction, useAsync, useTitle } from '../lib/hooks';
import { parseUsd } from '../lib/money';
import { Link, navigate, useLocation } from '../lib/router';

export const TEMPORAL_UI = 'http://127.0.0.1:8233';
const PLANS = ['free', 'pro', 'enterprise'];

function newIdempotencyKey(): string {
  return typeof crypto !== 'undefined' && 'randomUUID' in crypto ? crypto.randomUUID() : `${Date.now()}-${Math.random().toString(36).slice(2)}`;
}

// ---- Accounts list ---------------------------------------------------------

function CreateAccount({ onCreated }: { onCreated: (a: Account) => void }) {
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [plan, setPlan] = useState('free');
  const [role, setRole] = useState<'user' | 'admin'>('user');
  const action = useAction(async () => {
    const r = await api<{ account: Account }>('POST', '/admin/accounts', { email: email.trim(), password, plan, role });
    onCreated(r.account);
  });
  return (
    <form
      class="form"
      onSubmit={(e) => {
        e.preventDefault();
        void action.run();
      }}
      data-testid="admin-create-form"
    >
      <div class="grid-2">
        <Field label="Email">{(id) => <input id={id} type="email" required value={email} onInput={(e) => setEmail(e.currentTarget.value)} data-testid="admin-create-email" />}</Field>
        <Field label="Password" hint="10 to 256 characters.">
          {(id, d) => (
            <input id={id} type="password" autoComplete="new-password" required minLength={10} aria-describedby={d} value={password} onInput={(e) => setPassword(e.currentTarget.value)} data-testid="admin-create-password" />
          )}
        </Field>
        <Field label="Plan">
          {(id) => (
            <select id={id} value={plan} onChange={(e) => setPlan(e.currentTarget.value)}>
              {PLANS.map((p) => (
                <option key={p}>{p}</option>
              ))}
            </select>
          )}
        </Field>
        <Field label="Role">
          {(id) => (
            <select id={id} value={role} onChange={(e) => setRole(e.currentTarget.value as 'user' | 'admin')}>
              <option value="user">user</option>
              <option value="admin">admin</option>
            </select>
          )}
        </Field>
      </div>
      <p class="hint">Accounts created here are created verified.</p>
      <ErrorBox error={action.error} />
      <Button type="submit" variant="primary" busy={action.busy} data-testid="admin-create-submit">
        Create account
      </Button>
    </form>
  );
}

export function AdminAccounts() {
  useTitle('Admin · Accounts');
  const loc = useLocation();
  const q = loc.query.get('email') ?? '';
  const [text, setText] = useState(q);
  const [creating, setCreating] = useState(false);
  const list = useAsync((signal) => api<{ data: Account[] }>('GET', `/admin/accounts${q ? `?email=${encodeURIComponent(q)}` : ''}`, undefined, { signal }), [q]);
  return (
    <div>
      <PageHeader title="Accounts" subtitle="Search, inspect and adjust customer accounts.">
        {!creating && (
          <Button variant="primary" onClick={() => setCreating(true)} data-testid="admin-create-toggle">
            New account
          </Button>
        )}
      </PageHeader>
      {creating && (
        <section class="card" aria-labelledby="create-acct">
          <h2 id="create-acct">New account</h2>
          <CreateAccount onCreated={(a) => navigate(`/manage/accounts/${encodeURIComponent(a.id)}?created=1`)} />
          <Button variant="ghost" onClick={() => setCreating(false)}>
            Cancel
          </Button>
        </section>
      )}
      <form
        class="search-row"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          navigate(`/manage/accounts${text.trim() ? `?email=${encodeURIComponent(text.trim())}` : ''}`);
        }}
      >
        <label for="admin-search" class="sr-only">
          Search by email
        </label>
        <input id="admin-search" type="search" placeholder="Search by email" value={text} onInput={(e) => setText(e.currentTarget.value)} data-testid="admin-search-input" />
        <Button type="submit" variant="primary" data-testid="admin-search-submit">
          Search
        </Button>
      </form>
      <Async state={list} label="Loading accounts…">
        {(d) =>
          d.data.length === 0 ? (
            <p class="empty card">No account matches.</p>
          ) : (
            <div class="table-wrap">
              <table class="table stack" data-testid="admin-accounts-table">
                <thead>
                  <tr>
                    <th scope="col">Email</th>
                    <th scope="col">Role</th>
                    <th scope="col">Plan</th>
                    <th scope="col">Status</th>
                    <th scope="col" class="num">
                      Balance
                    </th>
                    <th scope="col">Created</th>
                  </tr>
                </thead>
                <tbody>
                  {d.data.map((a) => (
                    <tr key={a.id} data-testid="admin-account-row" data-email={a.email}>
                      <td data-label="Email">
                        <Link href={`/manage/accounts/${encodeURIComponent(a.id)}`} data-testid="admin-account-link">
                          {a.email}
                        </Link>
                        {a.name && <div class="hint">{a.name}</div>}
                      </td>
                      <td data-label="Role">{a.role === 'admin' ? <Badge kind="info">admin</Badge> : 'user'}</td>
                      <td data-label="Plan">{a.plan}</td>
                      <td data-label="Status">{a.active ? <Badge kind="ok">active</Badge> : <Badge kind="bad">disabled</Badge>}</td>
                      <td data-label="Balance" class="num">
                        <Money micros={a.balance_micros} />
                      </td>
                      <td data-label="Created">
                        <When iso={a.created_at} />
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )
        }
      </Async>
    </div>
  );
}

// ---- Account detail ---------------------------------------------------------

function limitText(n: number) {
  return n ? formatInt(n) : 'unlimited';
}

function AccountSettings({ account, onSaved }: { account: Account; onSaved: (a: Account) => void }) {
  const [plan, setPlan] = useState(account.plan);
  const [role, setRole] = useState(account.role);
  const [active, setActive] = useState(account.active);
  const [rpm, setRpm] = useState(String(account.rpm_limit));
  const [monthly, setMonthly] = useState(String(account.monthly_request_limit));
  const [rpmPlan, setRpmPlan] = useState(false);
  const [monthlyPlan, setMonthlyPlan] = useState(false);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [saved, setSaved] = useState(false);
  const isSelf = session.state.account?.id === account.id;
  const action = useAction(async (body: Record<string, unknown>) => {
    const r = await api<{ account: Account }>('PATCH', `/admin/accounts/${encodeURIComponent(account.id)}`, body);
    onSaved(r.account);
    setSaved(true);
  });
  const plans = PLANS.includes(account.plan) ? PLANS : [...PLANS, account.plan];
  return (
    <form
      class="form"
      data-testid="admin-account-form"
      onSubmit={(e) => {
        e.preventDefault();
        setSaved(false);
        const errs: Record<string, string> = {};
        const body: Record<string, unknown> = {};
        if (plan !== account.plan) body.plan = plan;
        if (role !== account.role) body.role = role;
        if (active !== account.active) body.active = active;
        const intOk = (v: string) => /^\d+$/.test(v.trim()) && Number.isSafeInteger(Number(v.trim()));
        if (rpmPlan) body.rpm_limit = null;
        else if (!intOk(rpm)) errs.rpm = 'A whole number; 0 = unlimited.';
        else if (Number(rpm) !== account.rpm_limit) body.rpm_limit = Number(rpm);
        if (monthlyPlan) body.monthly_request_limit = null;
        else if (!intOk(monthly)) errs.monthly = 'A whole number; 0 = unlimited.';
        else if (Number(monthly) !== account.monthly_request_limit) body.monthly_request_limit = Number(monthly);
        setErrors(errs);
        if (Object.keys(errs).length || Object.keys(body).length === 0) return;
        void action.run(body);
      }}
    >
      <div class="grid-2">
        <Field label="Plan">
          {(id) => (
            <select id={id} value={plan} onChange={(e) => setPlan(e.currentTarget.value)} data-testid="admin-plan">
              {plans.map((p) => (
                <option key={p}>{p}</option>
              ))}
            </select>
          )}
        </Field>
        <Field label="Role" hint={isSelf ? 'This is your own account.' : undefined}>
          {(id, d) => (
            <select id={id} value={role} aria-describedby={d} onChange={(e) => setRole(e.currentTarget.value as Account['role'])} data-testid="admin-role">
              <option value="user">user</option>
              <option value="admin">admin</option>
            </select>
          )}
        </Field>
        <Field label="Requests per minute" hint="0 = unlimited." error={errors.rpm}>
          {(id, d) => (
            <input id={id} inputMode="numeric" value={rpm} disabled={rpmPlan} aria-describedby={d} onInput={(e) => setRpm(e.currentTarget.value)} data-testid="admin-rpm" />
          )}
        </Field>
        <Field label="Requests per month" hint="0 = unlimited." error={errors.monthly}>
          {(id, d) => (
            <input id={id} inputMode="numeric" value={monthly} disabled={monthlyPlan} aria-describedby={d} onInput={(e) => setMonthly(e.currentTarget.value)} data-testid="admin-monthly" />
          )}
        </Field>
      </div>
      <div class="checks">
        <label class="check">
          <input type="checkbox" checked={active} onChange={(e) => setActive(e.currentTarget.checked)} data-testid="admin-active" /> Account active (disabled accounts get 403 on every key and
          session)
        </label>
        <label class="check">
          <input type="checkbox" checked={rpmPlan} onChange={(e) => setRpmPlan(e.currentTarget.checked)} /> Use the plan's requests-per-minute limit
        </label>
        <label class="check">
          <input type="checkbox" checked={monthlyPlan} onChange={(e) => setMonthlyPlan(e.currentTarget.checked)} /> Use the plan's monthly request limit
        </label>
      </div>
      <ErrorBox error={action.error} testid="admin-account-error" />
      <Button type="submit" variant="primary" busy={action.busy} data-testid="admin-account-save">
        Save changes
      </Button>
      {saved && (
        <Notice kind="success" testid="admin-account-saved">
          Saved.
        </Notice>
      )}
    </form>
  );
}

function AdminTopUp({ account, onDone }: { account: Account; onDone: (balanceMicros: number) => void }) {
  const [amount, setAmount] = useState('');
  const [note, setNote] = useState('');
  const [fieldError, setFieldError] = useState<string | null>(null);
  // One idempotency key per intended top-up: a retried submit after a network error cannot double-credit.
  const [idem, setIdem] = useState(newIdempotencyKey);
  const [result, setResult] = useState<{ tx: Transaction; balance: number } | null>(null);
  const action = useAction(async (usd: string) => {
    const body: Record<string, string> = { account_id: account.id, amount_usd: usd };
    if (note.trim()) body.note = note.trim();
    const r = await api<{ transaction: Transaction; balance_micros: number }>('POST', '/admin/top-up', body, { headers: { 'Idempotency-Key': idem } });
    setResult({ tx: r.transaction, balance: r.balance_micros });
    setIdem(newIdempotencyKey());
    setAmount('');
    setNote('');
    onDone(r.balance_micros);
  });
  return (
    <form
      class="form"
      data-testid="admin-topup-form"
      onSubmit={(e) => {
        e.preventDefault();
        const p = parseUsd(amount, { allowNegative: false });
        if (!p.ok) {
          setFieldError(p.error);
          return;
        }
        setFieldError(null);
        setResult(null);
        void action.run(p.usd);
      }}
    >
      <div class="grid-2">
        <Field label="Amount (USD)" error={fieldError}>
          {(id, d) => (
            <div class="input-prefix">
              <span aria-hidden="true">$</span>
              <input
                id={id}
                inputMode="decimal"
                value={amount}
                aria-describedby={d}
                onInput={(e) => {
                  setAmount(e.currentTarget.value);
                  setIdem(newIdempotencyKey());
                }}
                data-testid="admin-topup-amount"
              />
            </div>
          )}
        </Field>
        <Field label="Note (optional)">{(id) => <input id={id} value={note} maxLength={500} onInput={(e) => setNote(e.currentTarget.value)} data-testid="admin-topup-note" />}</Field>
      </div>
      <ErrorBox error={action.error} testid="admin-topup-error" />
      <Button type="submit" variant="primary" busy={action.busy} data-testid="admin-topup-submit">
        Add credits
      </Button>
      {result && (
        <Notice kind="success" testid="admin-topup-result">
          Added <Money micros={result.tx.amount_micros} />. New balance: <Money micros={result.balance} testid="admin-topup-new-balance" />.
        </Notice>
      )}
    </form>
  );
}

function AdminCreateKey({ account }: { account: Account }) {
  const [name, setName] = useState('');
  const [secret, setSecret] = useState<ApiKeyWithSecret | null>(null);
  const action = useAction(async () => {
    setSecret(await api<ApiKeyWithSecret>('POST', '/admin/api-keys', { account_id: account.id, name: name.trim() }));
    setName('');
  });
  if (secret) return <SecretBox title={`Key “${secret.name}” for ${account.email}`} secret={secret.key} onDone={() => setSecret(null)} />;
  return (
    <form
      class="form inline-form"
      onSubmit={(e) => {
        e.preventDefault();
        void action.run();
      }}
    >
      <Field label="Key name">{(id) => <input id={id} required value={name} onInput={(e) => setName(e.currentTarget.value)} />}</Field>
      <Button type="submit" busy={action.busy}>
        Create key
      </Button>
      <ErrorBox error={action.error} />
    </form>
  );
}

export function AdminAccount({ id }: { id: string }) {
  useTitle('Admin · Account');
  const loc = useLocation();
  const acct = useAsync((signal) => api<{ account: Account }>('GET', `/admin/accounts/${encodeURIComponent(id)}`, undefined, { signal }), [id]);
  const [version, setVersion] = useState(0);
  const update = (a: Account) => {
    acct.setData({ account: a });
    setVersion((v) => v + 1);
    if (session.state.account?.id === a.id) session.setAccount(a);
  };
  return (
    <div>
      <p>
        <Link href="/manage/accounts">← All accounts</Link>
      </p>
      <Async state={acct} label="Loading account…">
        {({ account: a }) => (
          <>
            <PageHeader title={a.email} subtitle={a.name ?? undefined} />
            {loc.query.get('created') === '1' && <Notice kind="success">Account created.</Notice>}
            <section class="stats" aria-label="Account summary">
              <div class="stat card">
                <div class="stat-label">Balance</div>
                <div class="stat-value">
                  <Money micros={a.balance_micros} testid="admin-account-balance" />
                </div>
              </div>
              <div class="stat card">
                <div class="stat-label">Plan</div>
                <div class="stat-value">{a.plan}</div>
              </div>
              <div class="stat card">
                <div class="stat-label">Limits in force</div>
                <div class="stat-value-sm">
                  {limitText(a.rpm_limit)} rpm · {limitText(a.monthly_request_limit)} / month
                </div>
              </div>
              <div class="stat card">
                <div class="stat-label">Status</div>
                <div class="stat-value-sm">
                  {a.active ? <Badge kind="ok">active</Badge> : <Badge kind="bad">disabled</Badge>} {a.role === 'admin' && <Badge kind="info">admin</Badge>}{' '}
                  {a.email_verified ? <Badge kind="ok">verified</Badge> : <Badge kind="warn">unverified</Badge>}
                </div>
              </div>
            </section>
            <div class="grid-2">
              <section class="card" aria-labelledby="topup-h">
                <h2 id="topup-h">Top up</h2>
                <AdminTopUp account={a} onDone={(bal) => update({ ...a, balance_micros: bal })} />
              </section>
              <section class="card" aria-labelledby="settings-h">
                <h2 id="settings-h">Plan, role and limits</h2>
                <AccountSettings key={`${a.id}-${version}`} account={a} onSaved={update} />
              </section>
            </div>
            <section class="card" aria-labelledby="key-h">
              <h2 id="key-h">Issue an API key for this account</h2>
              <AdminCreateKey account={a} />
            </section>
            <p class="hint">
              Account id <span class="mono">{a.id}</span> · created <When iso={a.created_at} />
            </p>
          </>
        )}
      </Async>
    </div>
  );
}
