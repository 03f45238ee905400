// Money helpers. The API's source of truth is integer micro-USD (`*_micros`);
// everything here is integer/BigInt arithmetic, never floating point.

export type MicrosInput = number | bigint | string;

const MICROS_PER_USD = 1_000_000n;

/** Converts an API `*_micros` value to a BigInt, rejecting anything not an exact integer. */
export function toMicros(v: MicrosInput): bigint {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw new RangeError(`not an exact integer micros value: ${v}`);
    return BigInt(v);
  }
  const s = v.trim();
  if (!/^-?\d+$/.test(s)) throw new RangeError(`not an integer micros value: ${JSON.stringify(v)}`);
  return BigInt(s);
}

function groupThousands(digits: string): string {
  return digits.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

export interface FormatOptions {
  /** Minimum fraction digits (default 2). Trailing zeros past this are trimmed; at most 6 are shown. */
  minDecimals?: number;
  /** Prefix with "+" for positive amounts (ledger style). */
  signed?: boolean;
  /** Currency symbol (default "$"). */
  symbol?: string;
}

/**
 * Formats integer micro-USD exactly: 0 → "$0.00", 5 → "$0.000005",
 * 1500000 → "$1.50", -2500000 → "-$2.50", 1234567890123 → "$1,234,567.890123".
 */
export function formatMicros(v: MicrosInput, opts: FormatOptions = {}): string {
  const minDecimals = Math.min(6, Math.max(0, opts.minDecimals ?? 2));
  const symbol = opts.symbol ?? '$';
  const m = toMicros(v);
  const neg = m < 0n;
  const abs = neg ? -m : m;
  const whole = abs / MICROS_PER_USD;
  let frac = (abs % MICROS_PER_USD).toString().padStart(6, '0');
  // Trim trailing zeros down to the minimum number of decimals.
  let end = frac.length;
  while (end > minDecimals && frac[end - 1] === '0') end--;
  frac = frac.slice(0, end);
  const body = groupThousands(whole.toString()) + (frac.length ? '.' + frac : '');
  const sign = neg ? '-' : opts.signed && abs > 0n ? '+' : '';
  return `${sign}${symbol}${body}`;
}

/** Plain decimal USD string without symbol or grouping, e.g. 1500000 → "1.5", 5 → "0.000005". For form inputs. */
export function microsToUsdString(v: MicrosInput): string {
  const m = toMicros(v);
  const neg = m < 0n;
  const abs = neg ? -m : m;
  const whole = (abs / MICROS_PER_USD).toString();
  const frac = (abs % MICROS_PER_USD).toString().padStart(6, '0').replace(/0+$/, '');
  return (neg ? '-' : '') + whole + (frac ? '.' + frac : '');
}

export type ParseResult = { ok: true; micros: bigint; usd: string } | { ok: false; error: string };

/**
 * Parses a user-typed USD amount ("5", "5.50", "$1,000.25", "0.000005") into exact micros.
 * `usd` is a normalized decimal string (the API accepts `*_usd` inputs as decimal strings),
 * so no float ever carries the amount.
 */
export function parseUsd(input: string, opts: { allowNegative?: boolean; allowZero?: boolean } = {}): ParseResult {
  let s = input.trim().replace(/,/g, '');
  let neg = false;
  if (s.startsWith('-')) {
    neg = true;
    s = s.slice(1).trim();
  }
  if (s.startsWith('$')) s = s.slice(1).trim();
  if (s === '') return { ok: false, error: 'Enter an amount.' };
  const m = /^(\d*)(?:\.(\d*))?$/.exec(s);
  if (!m || (m[1] === '' && (m[2] ?? '') === '')) return { ok: false, error: 'Enter a plain amount such as 10 or 10.50.' };
  const fracDigits = m[2] ?? '';
  if (fracDigits.length > 6) return { ok: false, error: 'At most 6 decimal places.' };
  const whole = BigInt(m[1] === '' ? '0' : m[1]);
  const frac = BigInt(fracDigits.padEnd(6, '0'));
  let micros = whole * MICROS_PER_USD + frac;
  if (neg) micros = -micros;
  if (micros < 0n && !opts.allowNegative) return { ok: false, error: 'The amount must not be negative.' };
  if (micros === 0n && !opts.allowZero) return { ok: false, error: 'The amount must be more than zero.' };
  return { ok: true, micros, usd: microsToUsdString(micros) };
}

/** Sums micros values exactly. */
export function sumMicros(values: Iterable<MicrosInput>): bigint {
  let total = 0n;
  for (const v of values) total += toMicros(v);
  return total;
}

/** Price per 1M tokens, shown with enough decimals to be exact. */
export function formatPerMillion(v: MicrosInput): string {
  return formatMicros(v, { minDecimals: 2 });
}
