/** The usage report email choices of PATCH /users/me (CONTRACT.md "Operations"). */
export type UsageReports = 'weekly' | 'monthly' | 'both' | 'off';

export const usageReportOptions: { value: UsageReports; label: string }[] = [
  { value: 'monthly', label: 'Monthly (on the 1st)' },
  { value: 'weekly', label: 'Weekly (on Mondays)' },
  { value: 'both', label: 'Weekly and monthly' },
  { value: 'off', label: 'Off' },
];

/** An account's choice; accounts from an older server have none: monthly, the default. */
export function usageReportsOf(account: { usage_reports?: string | null }): UsageReports {
  const v = account.usage_reports;
  return usageReportOptions.some((o) => o.value === v) ? (v as UsageReports) : 'monthly';
}
