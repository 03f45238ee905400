// Shapes from the Beaver contract (shared/CONTRACT.md). Extra fields may appear.

export type Role = 'user' | 'admin';

export interface Account {
  id: string;
  email: string;
  name?: string | null;
  role: Role;
  plan: string;
  active: boolean;
  email_verified: boolean;
  two_factor?: boolean;
  balance_micros: number;
  balance_usd: number;
  low_balance_threshold_micros: number | null;
  low_balance_threshold_usd: number | null;
  /** Usage report emails: weekly, monthly (the default), both or off. */
  usage_reports?: string;
  rpm_limit: number;
  monthly_request_limit: number;
  created_at: string;
}

/** POST /auth/login's answer when two-factor is on: no tokens yet. */
export interface MfaChallenge {
  mfa_required: true;
  challenge_token: string;
  methods: string[];
}

export interface Passkey {
  id: string;
  name: string;
  created_at: string;
  last_used_at: string | null;
}

export interface LoginResponse {
  access_token: string;
  refresh_token: string;
  token_type: string;
  expires_in: number;
  account: Account;
}

export type LimitReset = 'none' | 'daily' | 'weekly' | 'monthly';

export interface ApiKey {
  id: string;
  name: string;
  prefix: string;
  active: boolean;
  created_at: string;
  last_used_at: string | null;
  expires_at: string | null;
  spend_limit_usd: number | null;
  spend_limit_micros: number | null;
  limit_reset: LimitReset;
  rpm_limit: number | null;
  allowed_models: string[] | null;
  allowed_ips: string[] | null;
  require_signature?: boolean;
  /** Only on the answer that first set require_signature. */
  signing_secret?: string;
}

export interface ApiKeyWithSecret extends ApiKey {
  key: string;
}

export interface ApiKeyDetail extends ApiKey {
  usage?: {
    spent_micros: number;
    spent_usd: number;
    period_start: string | null;
    requests_this_minute: number;
  };
}

export interface Balance {
  balance_micros: number;
  balance_usd: number;
  reserved_micros: number;
  available_micros: number;
  available_usd: number;
  currency: string;
}

export type TransactionType = 'topup' | 'charge' | 'refund' | 'adjustment';

export interface Transaction {
  id: string;
  type: TransactionType | string;
  amount_micros: number;
  amount_usd: number;
  balance_after_micros: number;
  reference: string | null;
  description: string | null;
  created_at: string;
}

export interface Page<T> {
  data: T[];
  next_cursor: string | null;
}

export interface UsageTotals {
  requests: number;
  prompt_tokens: number;
  completion_tokens: number;
  cost_micros: number;
  cost_usd: number;
}

export interface Usage {
  days: number;
  totals: UsageTotals;
  by_model: (UsageTotals & { model: string })[];
  by_day: (UsageTotals & { date: string })[];
}

export interface Pricing {
  input_per_million_usd: number;
  output_per_million_usd: number;
  request_fee_usd: number;
  input_per_million_micros: number;
  output_per_million_micros: number;
  request_fee_micros: number;
  category: string;
  markup_permille: number;
  price_version: number;
}

export interface Model {
  id: string;
  object: 'model';
  created: number;
  owned_by: string;
  provider: string;
  name: string;
  context_length: number;
  max_output_tokens: number;
  capabilities: unknown;
  active: boolean;
  pricing: Pricing;
}

/**
 * GET /admin/models: M plus the provider's (base) prices and the catalog's
 * admin-only fields. `base` holds every priced dimension as `*_micros` with
 * a `*_usd` twin; a dimension without a price of its own shows the price it
 * follows (cached input and cache writes: input; reasoning: output).
 */
export interface AdminModel extends Model {
  base: {
    input_per_million_micros: number;
    output_per_million_micros: number;
    request_fee_micros: number;
    cached_input_per_million_micros?: number;
    cache_write_per_million_micros?: number;
    cache_write_1h_per_million_micros?: number;
    reasoning_per_million_micros?: number;
    input_per_million_usd: number;
    output_per_million_usd: number;
    request_fee_usd: number;
  };
  /** Not in the admin view today; PATCH takes it. */
  provider_model?: string;
  retired_at: string | null;
  replacement: string | null;
  aliases: string[];
}

/** P: GET/POST/PATCH /admin/providers. Keys and header values are write-only. */
export interface Provider {
  id: string;
  format: string;
  base_urls: string[];
  weights: number[] | null;
  builtin: boolean;
  has_key: boolean;
  /** Header names only. */
  headers: string[];
  usage_semantics: Record<string, boolean> | null;
  created_at: string | null;
  updated_at: string | null;
}

/** The body of POST /admin/providers. */
export interface ProviderInput {
  id: string;
  format: string;
  base_url: string;
  api_key?: string;
  api_key_env?: string;
  headers?: Record<string, string>;
}

/** POST /admin/providers/{id}/test. */
export interface ProviderTest {
  ok: boolean;
  latency_ms: number;
  models_listed: number;
  models?: string[];
  error: string | null;
}

/** GET /status/providers (only what the admin page shows). */
export interface ProvidersStatus {
  providers: Record<string, { state: string; endpoints: { base_url: string; state: string }[] }>;
}

export interface CatalogChange {
  id: string;
  field: string;
  from: unknown;
  to: unknown;
}

/** POST /admin/catalog/import: what the file changes (dry run) or changed. */
export interface CatalogDiff {
  format: string;
  added: string[];
  changed: CatalogChange[];
  retired: string[];
  unchanged: number;
  skipped: number;
  /** The version applied as; null on a dry run or when nothing changed. */
  price_version: number | null;
}

export interface ErrorBody {
  message: string;
  type: string;
  code: string;
  limit_source?: string;
}

/**
 * Auto-recharge settings. NOT in the contract yet; the UI assumes
 * GET/PUT /account/auto-recharge with this shape and hides itself on 404.
 */
export interface AutoRecharge {
  enabled: boolean;
  threshold_micros?: number | null;
  threshold_usd?: number | null;
  amount_micros?: number | null;
  amount_usd?: number | null;
}

/** An identity provider the server has configured (GET /auth/oauth/providers). */
export interface OAuthProvider {
  id: string;
  name: string;
}

/** An identity linked to the account (GET /auth/identities). */
export interface Identity {
  id: string;
  provider: string;
  email: string;
  email_verified: boolean;
  created_at: string;
  last_used_at: string | null;
}

export interface IdentitiesResponse {
  data: Identity[];
  has_password: boolean;
  providers: OAuthProvider[];
}
