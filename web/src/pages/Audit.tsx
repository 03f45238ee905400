import { useEffect, useState } from 'preact/hooks';
import { api, downloadFile } from '../api/client';
import { Button, ErrorBox, Loading, PageHeader } from '../components/ui';
import { useTitle } from '../lib/hooks';

// The audit log: the account's own entries (Security), and every entry for
// admins, with filters and a CSV export. Recent sign-ins come from the same
// log (auth.login.* entries).

export interface AuditEntry {
  id: string;
  at: string;
  actor: string;
  subject: string;
  action: string;
  ip: string;
  user_agent: string;
  request_id: string;
  changes: Record<string, { before?: unknown; after?: unknown }>;
  prev_hash: string;
  hash: string;
}

interface AuditPage {
  data: AuditEntry[];
  next_cursor: string | null;
}

function changesText(c: AuditEntry['changes']): string {
  return Object.entries(c ?? {})
    .map(([k, v]) => `${k}: ${v.before === undefined ? '' : JSON.stringify(v.before) + ' → '}${JSON.stringify(v.after ?? null)}`)
    .join('; ');
}

function AuditTable({ rows }: { rows: AuditEntry[] }) {
  if (rows.length === 0) return <p class="hint">No entries.</p>;
  return (
    <div class="table-wrap">
      <table class="table stack" data-testid="audit-table">
        <thead>
          <tr>
            <th scope="col">When</th>
            <th scope="col">Action</th>
            <th scope="col">Actor</th>
            <th scope="col">Subject</th>
            <th scope="col">IP</th>
            <th scope="col">Changes</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((e) => (
            <tr key={e.id} data-testid="audit-row" data-action={e.action}>
              <td data-label="When">{new Date(e.at).toLocaleString()}</td>
              <td data-label="Action" class="mono">{e.action}</td>
              <td data-label="Actor" class="mono">{e.actor}</td>
              <td data-label="Subject" class="mono">{e.subject}</td>
              <td data-label="IP" class="mono" title={e.user_agent}>{e.ip}</td>
              <td data-label="Changes" class="mono">{changesText(e.changes)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** Loads pages of base + cursor; more() appends the next page. */
function useAuditPages(base: string) {
  const [rows, setRows] = useState<AuditEntry[] | null>(null);
  const [next, setNext] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const load = (cursor: string | null) => {
    const sep = base.includes('?') ? '&' : '?';
    api<AuditPage>('GET', cursor ? `${base}${sep}cursor=${encodeURIComponent(cursor)}` : base)
      .then((p) => {
        setRows((r) => (cursor && r ? [...r, ...p.data] : p.data));
        setNext(p.next_cursor);
        setError(null);
      })
      .catch(setError);
  };
  useEffect(() => {
    setRows(null);
    load(null);
  }, [base]);
  return { rows, next, error, more: () => load(next) };
}

/** The signed-in account's own audit log, recent sign-ins first; a part of the Security page. */
export function AccountAudit() {
  const { rows, next, error, more } = useAuditPages('/account/audit?limit=50');
  const signIns = (rows ?? []).filter((e) => e.action.startsWith('auth.login.')).slice(0, 10);
  return (
    <section class="card">
      <ErrorBox error={error} />
      {rows === null && !error ? (
        <Loading />
      ) : (
        <>
          <h2>Recent sign-ins</h2>
          <ul class="plain-list" data-testid="recent-sign-ins">
            {signIns.map((e) => (
              <li key={e.id} data-testid="sign-in" data-action={e.action}>
                {new Date(e.at).toLocaleString()} — {e.action === 'auth.login.succeeded' ? 'signed in' : `failed (${String(e.changes?.reason?.after ?? '')})`} from{' '}
                <span class="mono">{e.ip || 'unknown'}</span> <span class="hint">{e.user_agent}</span>
              </li>
            ))}
            {signIns.length === 0 && <li class="hint">No sign-ins recorded yet.</li>}
          </ul>
          <h2>Audit log</h2>
          <AuditTable rows={rows ?? []} />
          {next && <Button onClick={more}>Older entries</Button>}
        </>
      )}
    </section>
  );
}

/** Every entry, for admins: filters, pages and a CSV export of the page. */
export function AdminAudit() {
  useTitle('Audit log');
  const [f, setF] = useState({ actor: '', subject: '', action: '', since: '', until: '' });
  const [applied, setApplied] = useState(f);
  const qs = Object.entries(applied)
    .filter(([, v]) => v.trim() !== '')
    .map(([k, v]) => `${k}=${encodeURIComponent(k === 'since' || k === 'until' ? new Date(v).toISOString().replace(/\.\d+Z$/, 'Z') : v.trim())}`)
    .join('&');
  const base = `/admin/audit?limit=100${qs ? '&' + qs : ''}`;
  const { rows, next, error, more } = useAuditPages(base);
  const [csvError, setCsvError] = useState<unknown>(null);
  return (
    <div>
      <PageHeader title="Audit log" subtitle="Append-only, hash-chained; `beaver audit verify` checks the chains." />
      <form
        class="filters"
        data-testid="audit-filters"
        onSubmit={(e) => {
          e.preventDefault();
          setApplied(f);
        }}
      >
        {(['actor', 'subject', 'action'] as const).map((k) => (
          <label key={k}>
            {k}{' '}
            <input value={f[k]} data-testid={`audit-filter-${k}`} onInput={(e) => setF({ ...f, [k]: (e.target as HTMLInputElement).value })} />
          </label>
        ))}
        {(['since', 'until'] as const).map((k) => (
          <label key={k}>
            {k}{' '}
            <input type="datetime-local" value={f[k]} onInput={(e) => setF({ ...f, [k]: (e.target as HTMLInputElement).value })} />
          </label>
        ))}
        <Button type="submit" data-testid="audit-apply">
          Apply
        </Button>
        <Button data-testid="audit-csv" onClick={() => downloadFile(`${base}&format=csv`, 'beaver-audit.csv').catch(setCsvError)}>
          Export CSV
        </Button>
      </form>
      <ErrorBox error={error ?? csvError} />
      {rows === null && !error ? <Loading /> : <AuditTable rows={rows ?? []} />}
      {next && <Button onClick={more}>Older entries</Button>}
    </div>
  );
}
