import { useState } from 'preact/hooks';
import { api, session } from '../api/client';
import type { Account } from '../api/types';
import { useAction } from '../lib/hooks';
import { usageReportOptions, usageReportsOf, type UsageReports } from '../lib/usageReports';
import { Button, ErrorBox, Field, Notice } from './ui';

/** The account's usage report emails: weekly, monthly, both or off (PATCH /users/me usage_reports). */
export function UsageReportsForm({ account }: { account: Account }) {
  const [value, setValue] = useState<UsageReports>(usageReportsOf(account));
  const [saved, setSaved] = useState(false);
  const action = useAction(async (v: UsageReports) => {
    const res = await api<{ account: Account }>('PATCH', '/users/me', { usage_reports: v });
    session.setAccount(res.account);
    setSaved(true);
  });
  return (
    <form
      id="usage-reports"
      class="form inline-form"
      style={{ marginTop: '1.25rem' }}
      onSubmit={(e) => {
        e.preventDefault();
        setSaved(false);
        void action.run(value);
      }}
      data-testid="usage-reports-form"
    >
      <Field label="Usage report emails" hint="A summary of your spend by model and by key, your balance and how long it lasts. Sent only for periods with usage.">
        {(id, d) => (
          <select
            id={id}
            value={value}
            aria-describedby={d}
            onChange={(e) => {
              setValue(e.currentTarget.value as UsageReports);
              setSaved(false);
            }}
            data-testid="usage-reports-select"
          >
            {usageReportOptions.map((o) => (
              <option key={o.value} value={o.value}>
                {o.label}
              </option>
            ))}
          </select>
        )}
      </Field>
      <Button type="submit" variant="primary" busy={action.busy} data-testid="usage-reports-save">
        Save
      </Button>
      <ErrorBox error={action.error} />
      {saved && (
        <Notice kind="success" testid="usage-reports-saved">
          Saved.
        </Notice>
      )}
    </form>
  );
}
