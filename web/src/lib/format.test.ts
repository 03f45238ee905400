import { describe, expect, it } from 'vitest';
import { categoryLabel, lastUtcDays, localInputToRfc3339, rfc3339ToLocalInput } from './format';
import { niceCeil } from '../components/UsageChart';
import { monthToDate } from '../pages/Dashboard';
import { matchRoute, safeNext } from './router';

describe('format helpers', () => {
  it('lists the last N UTC days, oldest first', () => {
    const days = lastUtcDays(3, new Date('2024-03-01T05:00:00Z'));
    expect(days).toEqual(['2024-02-28', '2024-02-29', '2024-03-01']);
    expect(lastUtcDays(30)).toHaveLength(30);
  });

  it('converts datetime-local values to RFC 3339 UTC and back', () => {
    const iso = localInputToRfc3339('2030-01-02T03:04');
    expect(iso).toMatch(/^2030-01-0[12]T\d\d:04:00Z$/);
    expect(rfc3339ToLocalInput(iso)).toBe('2030-01-02T03:04');
    expect(localInputToRfc3339('')).toBeNull();
    expect(localInputToRfc3339('nope')).toBeNull();
  });

  it('labels categories', () => {
    expect(categoryLabel('ULTRA_BUDGET')).toBe('Ultra Budget');
    expect(categoryLabel(null)).toBe('—');
  });
});

describe('chart scale', () => {
  it('rounds up to 1/2/5 × 10^k', () => {
    expect(niceCeil(0, 7)).toBe(7);
    expect(niceCeil(1)).toBe(1);
    expect(niceCeil(3)).toBe(5);
    expect(niceCeil(10)).toBe(10);
    expect(niceCeil(11)).toBe(20);
    expect(niceCeil(2501)).toBe(5000);
    expect(niceCeil(50_001)).toBe(100_000);
  });
});

describe('month to date', () => {
  it('sums only the current UTC month exactly', () => {
    const now = new Date('2024-05-20T12:00:00Z');
    const byDay = [
      { date: '2024-04-30', cost_micros: 999 },
      { date: '2024-05-01', cost_micros: 100_000 },
      { date: '2024-05-19', cost_micros: 200_000 },
    ];
    expect(monthToDate(byDay, now)).toBe(300_000n);
  });
});

describe('router helpers', () => {
  it('matches patterns', () => {
    expect(matchRoute('/manage/accounts/:id', '/manage/accounts/acc%2F1')).toEqual({ id: 'acc/1' });
    expect(matchRoute('/keys', '/keys/')).toEqual({});
    expect(matchRoute('/keys', '/keys/x')).toBeNull();
  });

  it('only allows same-origin paths after sign-in', () => {
    expect(safeNext('/billing?x=1')).toBe('/billing?x=1');
    expect(safeNext('//evil.example')).toBe('/dashboard');
    expect(safeNext('https://evil.example')).toBe('/dashboard');
    expect(safeNext('/\\evil.example')).toBe('/dashboard');
    expect(safeNext(null)).toBe('/dashboard');
  });
});
