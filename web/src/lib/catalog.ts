// Pure logic of the catalog admin pages (models, providers, import): form →
// request body conversion, list filtering and import-diff rendering. Kept out
// of the components so that it is unit-tested (catalog.test.ts).
//
// Money follows lib/money.ts: typed amounts are parsed exactly with parseUsd
// and sent as decimal `*_usd` strings; shown amounts come from integer
// `*_micros` fields through formatMicros. No float ever carries a price.

import type { AdminModel, CatalogChange, CatalogDiff, ProviderInput } from '../api/types';
import { formatMicros, parseUsd } from './money';

// ---- Model prices ------------------------------------------------------------

export type PriceKey = 'input' | 'output' | 'cached_input' | 'cache_write' | 'reasoning' | 'request_fee';

export interface PriceField {
  key: PriceKey;
  label: string;
  /** The request field (decimal USD string). */
  body: string;
  /** The admin view's `base` field (integer micro-USD). */
  base: string;
  /** POST needs it. */
  required?: boolean;
  /** An empty input means "no price of its own" (null): the model then follows `follows`. */
  follows?: string;
}

export const PRICE_FIELDS: PriceField[] = [
  { key: 'input', label: 'Input / 1M tokens', body: 'input_per_million_usd', base: 'input_per_million_micros', required: true },
  { key: 'output', label: 'Output / 1M tokens', body: 'output_per_million_usd', base: 'output_per_million_micros', required: true },
  { key: 'cached_input', label: 'Cached input / 1M', body: 'cached_input_per_million_usd', base: 'cached_input_per_million_micros', follows: 'the input price' },
  { key: 'cache_write', label: 'Cache write / 1M', body: 'cache_write_per_million_usd', base: 'cache_write_per_million_micros', follows: 'the input price' },
  { key: 'reasoning', label: 'Reasoning / 1M', body: 'reasoning_per_million_usd', base: 'reasoning_per_million_micros', follows: 'the output price' },
  { key: 'request_fee', label: 'Request fee', body: 'request_fee_usd', base: 'request_fee_micros' },
];

export type PriceForm = Record<PriceKey, string>;

export const EMPTY_PRICES: PriceForm = { input: '', output: '', cached_input: '', cache_write: '', reasoning: '', request_fee: '' };

export interface ModelForm {
  provider: string;
  provider_model: string;
  name: string;
  prices: PriceForm;
  context_length: string;
  max_output_tokens: string;
  /** Comma- or space-separated names. */
  capabilities: string;
  aliases: string;
}

export const EMPTY_MODEL_FORM: ModelForm = {
  provider: '',
  provider_model: '',
  name: '',
  prices: EMPTY_PRICES,
  context_length: '',
  max_output_tokens: '',
  capabilities: '',
  aliases: '',
};

function baseMicros(m: AdminModel, field: string): bigint | null {
  const v = (m.base as unknown as Record<string, unknown>)[field];
  return typeof v === 'number' && Number.isSafeInteger(v) ? BigInt(v) : typeof v === 'string' && /^-?\d+$/.test(v) ? BigInt(v) : null;
}

/** The edit form of an existing model, prices as plain decimals ("2.5"). */
export function modelFormOf(m: AdminModel): ModelForm {
  const prices = { ...EMPTY_PRICES };
  for (const f of PRICE_FIELDS) {
    const v = baseMicros(m, f.base);
    prices[f.key] = v === null ? '' : usdPlain(v);
  }
  return {
    provider: m.provider,
    provider_model: m.provider_model ?? '',
    name: m.name,
    prices,
    context_length: String(m.context_length ?? ''),
    max_output_tokens: String(m.max_output_tokens ?? ''),
    capabilities: capabilityNames(m.capabilities).join(', '),
    aliases: (m.aliases ?? []).join(', '),
  };
}

function usdPlain(micros: bigint): string {
  const neg = micros < 0n;
  const a = neg ? -micros : micros;
  const frac = (a % 1_000_000n).toString().padStart(6, '0').replace(/0+$/, '');
  return (neg ? '-' : '') + (a / 1_000_000n).toString() + (frac ? '.' + frac : '');
}

/** The API answers capabilities as a list of names; anything else shows as none. */
export function capabilityNames(c: unknown): string[] {
  return Array.isArray(c) ? c.filter((x): x is string => typeof x === 'string') : [];
}

/** "a, b  c\nd" → ["a", "b", "c", "d"]: trimmed, without empties or repeats, in order. */
export function splitList(text: string): string[] {
  const out: string[] = [];
  for (const part of text.split(/[\s,]+/)) {
    const p = part.trim();
    if (p && !out.includes(p)) out.push(p);
  }
  return out;
}

function sameList(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

export type FormErrors = Partial<Record<string, string>>;
export type BodyResult = { ok: true; body: Record<string, unknown> } | { ok: false; errors: FormErrors };

const WHOLE = /^\d+$/;

/**
 * The body of POST /admin/models (original null) or PATCH
 * /admin/models/{provider}/{model} (original = the model as listed). A PATCH
 * carries only what differs from the original, so saving an untouched form
 * sends {} and starts no new price version. Errors are keyed by the form
 * field ("input", "context_length", ...).
 */
export function modelRequestBody(form: ModelForm, original: AdminModel | null): BodyResult {
  const errors: FormErrors = {};
  const body: Record<string, unknown> = {};
  if (!original) {
    if (!form.provider) errors.provider = 'Choose a provider.';
    else body.provider = form.provider;
    const pm = form.provider_model.trim();
    if (!pm) errors.provider_model = "Enter the provider's model name.";
    else body.provider_model = pm;
  }
  for (const f of PRICE_FIELDS) {
    const text = form.prices[f.key].trim();
    const was = original ? baseMicros(original, f.base) : null;
    if (text === '') {
      if (f.required) errors[f.key] = 'Enter a price (0 for free).';
      // Cleared on an existing model: it no longer has a price of its own.
      else if (original && f.follows) body[f.body] = null;
      else if (original && was !== null && was !== 0n) body[f.body] = '0';
      continue;
    }
    const p = parseUsd(text, { allowZero: true });
    if (!p.ok) {
      errors[f.key] = p.error;
      continue;
    }
    if (!original || p.micros !== was) body[f.body] = p.usd;
  }
  const name = form.name.trim();
  if (name && name !== original?.name) body.name = name;
  for (const k of ['context_length', 'max_output_tokens'] as const) {
    const v = form[k].trim();
    if (v === '') {
      if (original) errors[k] = 'A whole number.';
      continue;
    }
    if (!WHOLE.test(v) || !Number.isSafeInteger(Number(v))) {
      errors[k] = 'A whole number.';
      continue;
    }
    if (!original || Number(v) !== original[k]) body[k] = Number(v);
  }
  const caps = splitList(form.capabilities);
  if (original ? !sameList(caps, capabilityNames(original.capabilities)) : caps.length > 0) body.capabilities = caps;
  const aliases = splitList(form.aliases);
  if (original ? !sameList(aliases, original.aliases ?? []) : aliases.length > 0) body.aliases = aliases;
  return Object.keys(errors).length ? { ok: false, errors } : { ok: true, body };
}

/** The path of one model under /admin/models: provider, then the id without the provider prefix. */
export function adminModelPath(m: Pick<AdminModel, 'id' | 'provider'>): string {
  const part = m.id.startsWith(m.provider + '/') ? m.id.slice(m.provider.length + 1) : m.id;
  return `/admin/models/${encodeURIComponent(m.provider)}/${encodeURIComponent(part)}`;
}

// ---- Model list filter ---------------------------------------------------------

export type ModelState = 'active' | 'inactive' | 'retired';
export type StatusFilter = 'all' | ModelState;

/** Retired wins over inactive: a retired model is always inactive, with a date. */
export function modelState(m: Pick<AdminModel, 'active' | 'retired_at'>): ModelState {
  return m.retired_at ? 'retired' : m.active ? 'active' : 'inactive';
}

export interface ModelFilter {
  text: string;
  provider: string; // '' = all
  status: StatusFilter;
}

/** Filters by text (id, name or alias, any case), provider and state; sorted by id. */
export function filterModels(list: AdminModel[], f: ModelFilter): AdminModel[] {
  const q = f.text.trim().toLowerCase();
  return list
    .filter((m) => !f.provider || m.provider === f.provider)
    .filter((m) => f.status === 'all' || modelState(m) === f.status)
    .filter((m) => !q || m.id.toLowerCase().includes(q) || m.name.toLowerCase().includes(q) || (m.aliases ?? []).some((a) => a.toLowerCase().includes(q)))
    .sort((a, b) => a.id.localeCompare(b.id));
}

// ---- Providers -------------------------------------------------------------------

export const PROVIDER_FORMATS = ['openai', 'openai-responses', 'anthropic', 'gemini'];

export interface ProviderForm {
  id: string;
  format: string;
  base_url: string;
  /** How the key is given: stored (sealed) in the database, read from an environment variable, or none. */
  key_mode: 'key' | 'env' | 'none';
  api_key: string;
  api_key_env: string;
  /** One "Name: value" a line. */
  headers: string;
}

export const EMPTY_PROVIDER_FORM: ProviderForm = { id: '', format: 'openai', base_url: '', key_mode: 'key', api_key: '', api_key_env: '', headers: '' };

/** "X-Org: acme" lines → {"X-Org": "acme"}; blank lines are skipped. */
export function parseHeaders(text: string): { ok: true; headers: Record<string, string> } | { ok: false; error: string } {
  const headers: Record<string, string> = {};
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (!line) continue;
    const at = line.indexOf(':');
    const name = at > 0 ? line.slice(0, at).trim() : '';
    if (!name || /\s/.test(name)) return { ok: false, error: `Line ${i + 1}: write each header as "Name: value".` };
    if (name in headers) return { ok: false, error: `Line ${i + 1}: ${name} is given twice.` };
    headers[name] = line.slice(at + 1).trim();
  }
  return { ok: true, headers };
}

/** The body of POST /admin/providers; the server checks the rest (id pattern, URL, header names). */
export function providerRequestBody(form: ProviderForm): { ok: true; body: ProviderInput } | { ok: false; errors: FormErrors } {
  const errors: FormErrors = {};
  const id = form.id.trim();
  if (!id) errors.id = 'Enter an id (lowercase letters, digits and dashes).';
  const base = form.base_url.trim();
  if (!/^https?:\/\/\S+$/i.test(base)) errors.base_url = 'An http(s) URL, e.g. https://api.example.com/v1.';
  const body: ProviderInput = { id, format: form.format, base_url: base };
  if (form.key_mode === 'key') {
    if (!form.api_key.trim()) errors.api_key = 'Enter the key, or choose another way to give it.';
    else body.api_key = form.api_key.trim();
  } else if (form.key_mode === 'env') {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(form.api_key_env.trim())) errors.api_key_env = 'An environment variable name, e.g. GROQ_API_KEY.';
    else body.api_key_env = form.api_key_env.trim();
  }
  const h = parseHeaders(form.headers);
  if (!h.ok) errors.headers = h.error;
  else if (Object.keys(h.headers).length) body.headers = h.headers;
  return Object.keys(errors).length ? { ok: false, errors } : { ok: true, body };
}

// ---- Import diff -----------------------------------------------------------------

/** Fields whose numbers are integer micro-USD (the catalog format's prices). */
function isMicrosField(field: string): boolean {
  return /_micros(_per_million)?$/.test(field);
}

/** One side of a changed field as text: prices as exact dollars, lists joined, null as "—". */
export function diffValueText(field: string, v: unknown): string {
  if (v === null || v === undefined) return '—';
  if (isMicrosField(field) && typeof v === 'number' && Number.isSafeInteger(v)) return formatMicros(v);
  if (Array.isArray(v) && v.every((x) => typeof x !== 'object' || x === null)) return v.length ? v.join(', ') : '(none)';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/** The diff's changes grouped by model, models in the order they first appear. */
export function groupChanges(changed: CatalogChange[]): { id: string; changes: CatalogChange[] }[] {
  const out: { id: string; changes: CatalogChange[] }[] = [];
  for (const c of changed) {
    let g = out.find((x) => x.id === c.id);
    if (!g) out.push((g = { id: c.id, changes: [] }));
    g.changes.push(c);
  }
  return out;
}

const plural = (n: number, one: string, many = one + 's') => `${n} ${n === 1 ? one : many}`;

/** "1 added · 2 changes to 1 model · 0 retired · 3 unchanged" (skipped only when there were any). */
export function diffSummary(d: CatalogDiff): string {
  const models = new Set(d.changed.map((c) => c.id)).size;
  const parts = [
    `${d.added.length} added`,
    d.changed.length ? `${plural(d.changed.length, 'change')} to ${plural(models, 'model')}` : '0 changed',
    `${d.retired.length} retired`,
    `${d.unchanged} unchanged`,
  ];
  if (d.skipped) parts.push(`${d.skipped} skipped`);
  return parts.join(' · ');
}

/** Whether applying the file would change nothing. */
export function diffIsEmpty(d: CatalogDiff): boolean {
  return d.added.length === 0 && d.changed.length === 0 && d.retired.length === 0;
}
