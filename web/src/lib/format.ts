// Non-money display helpers.

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const dateOnly = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' });
const intFmt = new Intl.NumberFormat();

export function formatDateTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : dateTime.format(d);
}

export function formatDate(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : dateOnly.format(d);
}

export function formatInt(n: number | null | undefined): string {
  return n === null || n === undefined ? '—' : intFmt.format(n);
}

/** "2024-05-01" for a Date in UTC. */
export function utcDate(d: Date): string {
  return d.toISOString().slice(0, 10);
}

/** The last `days` UTC dates ending today, oldest first. */
export function lastUtcDays(days: number, now = new Date()): string[] {
  const out: string[] = [];
  const base = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  for (let i = days - 1; i >= 0; i--) out.push(utcDate(new Date(base - i * 86_400_000)));
  return out;
}

/** datetime-local input value (local time) → RFC 3339 UTC. */
export function localInputToRfc3339(v: string): string | null {
  if (!v) return null;
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? null : d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** RFC 3339 → datetime-local input value (local time). */
export function rfc3339ToLocalInput(iso: string | null | undefined): string {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export const PROVIDER_LABELS: Record<string, string> = {
  openai: 'OpenAI',
  anthropic: 'Anthropic',
  google: 'Google',
  deepseek: 'DeepSeek',
  perplexity: 'Perplexity',
  xai: 'xAI',
};

export function providerLabel(p: string): string {
  return PROVIDER_LABELS[p] ?? p;
}

export const CATEGORY_ORDER = ['ULTRA_BUDGET', 'BUDGET', 'MID_RANGE', 'PREMIUM', 'ULTRA_PREMIUM'];

export function categoryLabel(c: string | null | undefined): string {
  if (!c) return '—';
  return c
    .toLowerCase()
    .split('_')
    .map((w) => w[0].toUpperCase() + w.slice(1))
    .join(' ');
}
