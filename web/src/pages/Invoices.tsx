import { useEffect, useState } from 'preact/hooks';
import { api, downloadFile } from '../api/client';
import { Badge, Button, ErrorBox, Field, Loading, Money, Notice, When } from '../components/ui';
import { useAction, usePages } from '../lib/hooks';
import { recentMonths } from '../lib/months';

/** GET /account/invoices: an invoice per top-up, a credit note per refund. */
export interface Invoice {
  id: string;
  number: string;
  kind: 'invoice' | 'credit_note';
  issued_at: string;
  amount_micros: number | string;
  top_up_id: string | null;
  refund_id: string | null;
}

export interface BillingDetails {
  name: string;
  address: string;
  tax_id: string;
}

export function Invoices() {
  const { rows, loading, error, cursor, more, retry } = usePages<Invoice>('/account/invoices', 20);
  const download = useAction((path: string, name: string) => downloadFile(path, name));

  return (
    <section class="card" aria-labelledby="invoices-title">
      <h2 id="invoices-title">Invoices</h2>
      {rows.length === 0 && !loading && !error && <p class="empty hint">No invoices yet: each top-up issues one.</p>}
      {rows.length > 0 && (
        <div class="table-wrap">
          <table class="table stack" data-testid="invoices-table">
            <thead>
              <tr>
                <th scope="col">Number</th>
                <th scope="col">Issued</th>
                <th scope="col">Kind</th>
                <th scope="col" class="num">
                  Amount
                </th>
                <th scope="col">PDF</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((inv) => (
                <tr key={inv.id} data-testid="invoice-row">
                  <td data-label="Number" class="mono">
                    {inv.number}
                  </td>
                  <td data-label="Issued">
                    <When iso={inv.issued_at} />
                  </td>
                  <td data-label="Kind">
                    <Badge kind={inv.kind === 'invoice' ? 'ok' : 'info'}>{inv.kind === 'invoice' ? 'invoice' : 'credit note'}</Badge>
                  </td>
                  <td data-label="Amount" class="num">
                    <Money micros={inv.amount_micros} />
                  </td>
                  <td data-label="PDF">
                    <Button small variant="ghost" onClick={() => void download.run(`/account/invoices/${encodeURIComponent(inv.id)}.pdf`, `${inv.number}.pdf`)}>
                      Download
                    </Button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <ErrorBox error={error ?? download.error} onRetry={retry} />
      {loading && <Loading label="Loading invoices…" />}
      {!loading && cursor && !error && <Button onClick={more}>Load more</Button>}
    </section>
  );
}

export function Statements() {
  const months = recentMonths(new Date(), 12);
  const [month, setMonth] = useState(months[0]);
  const download = useAction((m: string) => downloadFile(`/account/statements/${m}.pdf`, `statement-${m}.pdf`));
  return (
    <section class="card" aria-labelledby="statements-title">
      <h2 id="statements-title">Monthly statements</h2>
      <p class="hint">Opening and closing balance, top-ups, refunds and charges by model for a month (UTC).</p>
      <form
        class="form"
        onSubmit={(e) => {
          e.preventDefault();
          void download.run(month);
        }}
      >
        <Field label="Month">
          {(id) => (
            <select id={id} value={month} onChange={(e) => setMonth(e.currentTarget.value)} data-testid="statement-month">
              {months.map((m) => (
                <option key={m} value={m}>
                  {m}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Button type="submit" busy={download.busy} data-testid="statement-download">
          Download PDF
        </Button>
        <ErrorBox error={download.error} />
      </form>
    </section>
  );
}

export function BillingDetailsForm() {
  const [form, setForm] = useState<BillingDetails>({ name: '', address: '', tax_id: '' });
  const [saved, setSaved] = useState(false);
  useEffect(() => {
    void api<{ account: { billing_details?: BillingDetails } }>('GET', '/users/me').then((r) => {
      if (r.account.billing_details) setForm(r.account.billing_details);
    }, () => undefined); // the form stays empty; saving reports any error
  }, []);
  const save = useAction(async (d: BillingDetails) => {
    setSaved(false);
    const r = await api<{ account: { billing_details: BillingDetails } }>('PATCH', '/users/me', { billing_details: d });
    setForm(r.account.billing_details);
    setSaved(true);
  });
  const set = (k: keyof BillingDetails) => (e: { currentTarget: { value: string } }) => setForm({ ...form, [k]: e.currentTarget.value });
  return (
    <section class="card" aria-labelledby="billing-details-title">
      <h2 id="billing-details-title">Billing details</h2>
      <p class="hint">Printed on invoices issued from now on; invoices already issued keep the details they were issued with.</p>
      <form
        class="form"
        data-testid="billing-details-form"
        onSubmit={(e) => {
          e.preventDefault();
          void save.run(form);
        }}
      >
        <Field label="Name or company">{(id) => <input id={id} maxLength={200} value={form.name} onInput={set('name')} />}</Field>
        <Field label="Address">{(id) => <textarea id={id} maxLength={500} rows={4} value={form.address} onInput={set('address')} />}</Field>
        <Field label="Tax ID">{(id) => <input id={id} maxLength={50} value={form.tax_id} onInput={set('tax_id')} />}</Field>
        <Button type="submit" variant="primary" busy={save.busy} data-testid="billing-details-save">
          Save
        </Button>
        {saved && <Notice kind="success">Saved.</Notice>}
        <ErrorBox error={save.error} />
      </form>
    </section>
  );
}
