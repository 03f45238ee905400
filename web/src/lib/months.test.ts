import { describe, expect, it } from 'vitest';
import { recentMonths } from './months';

describe('recentMonths', () => {
  it('lists the months newest first across a year boundary', () => {
    expect(recentMonths(new Date(Date.UTC(2026, 1, 15)), 4)).toEqual(['2026-02', '2026-01', '2025-12', '2025-11']);
  });
  it('uses UTC', () => {
    expect(recentMonths(new Date('2026-12-31T23:30:00Z'), 1)).toEqual(['2026-12']);
  });
});
