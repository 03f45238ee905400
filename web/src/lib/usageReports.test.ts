import { describe, expect, it } from 'vitest';
import { usageReportOptions, usageReportsOf } from './usageReports';

describe('usageReportsOf', () => {
  it('keeps a known choice', () => {
    for (const o of usageReportOptions) expect(usageReportsOf({ usage_reports: o.value })).toBe(o.value);
  });
  it('falls back to monthly, the default', () => {
    expect(usageReportsOf({})).toBe('monthly');
    expect(usageReportsOf({ usage_reports: null })).toBe('monthly');
    expect(usageReportsOf({ usage_reports: 'daily' })).toBe('monthly');
  });
  it('offers the contract values', () => {
    expect(usageReportOptions.map((o) => o.value).sort()).toEqual(['both', 'monthly', 'off', 'weekly']);
  });
});
