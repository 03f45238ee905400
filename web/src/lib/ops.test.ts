import { describe, expect, it } from 'vitest';
import { bucketLabel, formatMs, formatPercent, formatRate, sparkPath } from './ops';

describe('sparkPath', () => {
  it('scales to the largest value, bottom at 0', () => {
    expect(sparkPath([0, 5, 10], 100, 20)).toBe('M0,20 L50,10 L100,0');
  });
  it('draws all zeros flat at the bottom', () => {
    expect(sparkPath([0, 0], 10, 8)).toBe('M0,8 L10,8');
  });
  it('is empty without values and a point for one', () => {
    expect(sparkPath([], 10, 8)).toBe('');
    expect(sparkPath([3], 10, 8)).toBe('M0,0');
  });
});

describe('formats', () => {
  it('formats latency', () => {
    expect(formatMs(0)).toBe('—');
    expect(formatMs(0.141)).toBe('0.14 ms');
    expect(formatMs(12.8)).toBe('12.8 ms');
    expect(formatMs(1448.15)).toBe('1.45 s');
  });
  it('formats rates', () => {
    expect(formatPercent(0)).toBe('0%');
    expect(formatPercent(3 / 102)).toBe('2.94%');
    expect(formatPercent(0.5)).toBe('50.0%');
    expect(formatRate(0)).toBe('0');
    expect(formatRate(0.0282)).toBe('0.03');
    expect(formatRate(3 / 3600)).toBe('0.00083');
    expect(formatRate(1250.4)).toBe('1,250');
  });
  it('labels buckets', () => {
    expect(bucketLabel('2030-01-01T10:31:00Z', 60)).toBe('10:31 UTC');
    expect(bucketLabel('2030-01-01T00:00:00Z', 86400)).toBe('2030-01-01');
  });
});
