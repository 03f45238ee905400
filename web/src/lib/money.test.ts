import { describe, expect, it } from 'vitest';
import { formatMicros, microsToUsdString, parseUsd, sumMicros, toMicros } from './money';

describe('formatMicros', () => {
  it('formats zero and tiny amounts exactly', () => {
    expect(formatMicros(0)).toBe('$0.00');
    expect(formatMicros(5)).toBe('$0.000005');
    expect(formatMicros(1)).toBe('$0.000001');
    expect(formatMicros(10)).toBe('$0.00001');
    expect(formatMicros(999_999)).toBe('$0.999999');
  });

  it('keeps at least two decimals and trims the rest', () => {
    expect(formatMicros(1_500_000)).toBe('$1.50');
    expect(formatMicros(1_000_000)).toBe('$1.00');
    expect(formatMicros(1_234_567)).toBe('$1.234567');
    expect(formatMicros(1_230_000)).toBe('$1.23');
    expect(formatMicros(1_235_000)).toBe('$1.235');
    expect(formatMicros(10_000)).toBe('$0.01');
  });

  it('formats negatives', () => {
    expect(formatMicros(-5)).toBe('-$0.000005');
    expect(formatMicros(-1_500_000)).toBe('-$1.50');
    expect(formatMicros(-123_456_789)).toBe('-$123.456789');
  });

  it('formats large values with grouping, beyond 2^53 via BigInt and strings', () => {
    expect(formatMicros(1_234_567_890_123)).toBe('$1,234,567.890123');
    expect(formatMicros(Number.MAX_SAFE_INTEGER)).toBe('$9,007,199,254.740991');
    expect(formatMicros(9_223_372_036_854_775_807n)).toBe('$9,223,372,036,854.775807');
    expect(formatMicros('-9223372036854775808')).toBe('-$9,223,372,036,854.775808');
    expect(formatMicros(1_000_000_000_000_000n)).toBe('$1,000,000,000.00');
  });

  it('supports options', () => {
    expect(formatMicros(1_500_000, { signed: true })).toBe('+$1.50');
    expect(formatMicros(-1_500_000, { signed: true })).toBe('-$1.50');
    expect(formatMicros(0, { signed: true })).toBe('$0.00');
    expect(formatMicros(1_500_000, { minDecimals: 0 })).toBe('$1.5');
    expect(formatMicros(2_000_000, { minDecimals: 0 })).toBe('$2');
    expect(formatMicros(5, { minDecimals: 6 })).toBe('$0.000005');
    expect(formatMicros(1_500_000, { minDecimals: 6 })).toBe('$1.500000');
    expect(formatMicros(1_500_000, { symbol: '' })).toBe('1.50');
  });

  it('never goes through floating point (0.1 + 0.2 style drift)', () => {
    const a = 100_000; // $0.10
    const b = 200_000; // $0.20
    expect(formatMicros(sumMicros([a, b]))).toBe('$0.30');
  });

  it('rejects non-integers', () => {
    expect(() => formatMicros(1.5)).toThrow(RangeError);
    expect(() => formatMicros(Number.MAX_SAFE_INTEGER + 2)).toThrow(RangeError);
    expect(() => formatMicros('1.5')).toThrow(RangeError);
    expect(() => formatMicros(Number.NaN)).toThrow(RangeError);
  });
});

describe('toMicros / microsToUsdString', () => {
  it('round trips', () => {
    expect(toMicros('42')).toBe(42n);
    expect(microsToUsdString(1_500_000)).toBe('1.5');
    expect(microsToUsdString(5)).toBe('0.000005');
    expect(microsToUsdString(0)).toBe('0');
    expect(microsToUsdString(-2_000_001)).toBe('-2.000001');
  });
});

describe('parseUsd', () => {
  it('parses plain amounts exactly', () => {
    expect(parseUsd('5')).toEqual({ ok: true, micros: 5_000_000n, usd: '5' });
    expect(parseUsd('5.50')).toEqual({ ok: true, micros: 5_500_000n, usd: '5.5' });
    expect(parseUsd(' $1,000.25 ')).toEqual({ ok: true, micros: 1_000_250_000n, usd: '1000.25' });
    expect(parseUsd('0.000005')).toEqual({ ok: true, micros: 5n, usd: '0.000005' });
    expect(parseUsd('.5')).toEqual({ ok: true, micros: 500_000n, usd: '0.5' });
    expect(parseUsd('0.1')).toMatchObject({ micros: 100_000n });
    expect(parseUsd('99999999999.999999')).toMatchObject({ micros: 99_999_999_999_999_999n });
  });

  it('rejects bad input', () => {
    expect(parseUsd('').ok).toBe(false);
    expect(parseUsd('abc').ok).toBe(false);
    expect(parseUsd('1e3').ok).toBe(false);
    expect(parseUsd('1.0000001').ok).toBe(false);
    expect(parseUsd('.').ok).toBe(false);
    expect(parseUsd('0').ok).toBe(false);
    expect(parseUsd('-1').ok).toBe(false);
  });

  it('honours allowZero / allowNegative', () => {
    expect(parseUsd('0', { allowZero: true })).toMatchObject({ ok: true, micros: 0n, usd: '0' });
    expect(parseUsd('-1.25', { allowNegative: true })).toMatchObject({ ok: true, micros: -1_250_000n, usd: '-1.25' });
  });
});
