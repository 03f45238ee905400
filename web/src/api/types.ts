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
  balance_micros: number;
  balance_usd: number;
  low_balance_threshold_micros: number | null;
  low_balance_threshold_usd: number | null;
  rpm_limit: number;
  monthly_request_limit: number;
  created_at: string;
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

export interface AdminModel extends Model {
  base: {
    input_per_million_micros: number;
    output_per_million_micros: number;
    request_fee_micros: number;
    input_per_million_usd: number;
    output_per_million_usd: number;
    request_fee_usd: number;
  };
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
