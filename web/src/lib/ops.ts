// The operations view's data (GET /admin/stats and its event stream) and
// the pure helpers its page uses: sparkline paths and number formats.

export const OPS_RANGES = ['1h', '24h', '7d', '30d'] as const;
export type OpsRange = (typeof OPS_RANGES)[number];

export interface OpsFigures {
  requests: number;
  requests_per_second: number;
  upstream_errors: number;
  client_errors: number;
  cancelled: number;
  error_rate: number;
  added_p50_ms: number;
  added_p99_ms: number;
  upstream_p50_ms: number;
  upstream_p99_ms: number;
  added_mean_ms: number;
  upstream_mean_ms: number;
  charged_micros: number;
  provider_cost_micros: number;
  margin_micros: number;
}

export interface OpsPoint extends OpsFigures {
  t: string;
}

export interface OpsModel extends OpsFigures {
  provider: string;
  model: string;
}

export interface OpsMoneyPoint {
  t: string;
  charged_micros: number;
  provider_cost_micros: number;
  margin_micros: number;
}

export interface OpsEndpoint {
  index: number;
  key: string;
  state: string;
  consecutive_failures: number;
  failure_rate: number;
  open_until: string | null;
  cooldown_until: string | null;
  cooldown_reason?: string;
  reason?: string;
}

export interface OpsBreaker {
  provider: string;
  state: string;
  retries: number;
  endpoints: OpsEndpoint[];
}

export interface OpsFailedWorkflow {
  workflow_id: string;
  run_id: string;
  type: string;
  status: string;
  closed_at: string;
}

export interface OpsStats {
  range: OpsRange;
  from: string;
  to: string;
  step_seconds: number;
  totals: OpsFigures;
  series: OpsPoint[];
  models: OpsModel[];
  money: { step: 'hour' | 'day'; series: OpsMoneyPoint[] };
  breakers: OpsBreaker[];
  workflows: { available: boolean; reason?: string; failed: number; timed_out: number; recent: OpsFailedWorkflow[] };
  top_accounts: { granularity: string; from_day: string; accounts: { account_id: string; email: string; requests: number; charged_micros: number }[] };
}

/**
 * The SVG path of a sparkline of values in a w×h box: one point per value,
 * evenly spaced, scaled to the largest (a flat line at the bottom when all
 * are 0). Empty for no values.
 */
export function sparkPath(values: number[], w: number, h: number): string {
  if (values.length === 0) return '';
  const top = Math.max(...values.map((v) => (Number.isFinite(v) ? v : 0)), 0);
  const step = values.length > 1 ? w / (values.length - 1) : 0;
  return values
    .map((v, i) => {
      const y = top > 0 ? h - (Math.max(0, Number.isFinite(v) ? v : 0) / top) * h : h;
      return `${i === 0 ? 'M' : 'L'}${round(i * step)},${round(y)}`;
    })
    .join(' ');
}

function round(v: number): number {
  return Math.round(v * 10) / 10;
}

/** Milliseconds for a table: "0.14 ms", "12.8 ms", "1.45 s"; "—" for 0 (nothing measured). */
export function formatMs(ms: number): string {
  if (!ms) return '—';
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  if (ms >= 10) return `${ms.toFixed(1)} ms`;
  return `${ms.toFixed(2)} ms`;
}

/** A rate as a percentage: 0 → "0%", 0.0294 → "2.94%". */
export function formatPercent(rate: number): string {
  if (!rate) return '0%';
  return `${(rate * 100).toFixed(rate < 0.1 ? 2 : 1)}%`;
}

/** Requests per second: "0", "0.00083", "0.03", "12.5", "1,250". */
export function formatRate(rps: number): string {
  if (!rps) return '0';
  if (rps < 0.01) return String(Number(rps.toPrecision(2)));
  if (rps >= 100) return Math.round(rps).toLocaleString('en-US');
  if (rps >= 10) return rps.toFixed(1);
  return rps.toFixed(2);
}

/** A bucket's label: the time for minute and hour buckets, the date for days. */
export function bucketLabel(iso: string, stepSeconds: number): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  if (stepSeconds >= 86400) return iso.slice(0, 10);
  return `${String(d.getUTCHours()).padStart(2, '0')}:${String(d.getUTCMinutes()).padStart(2, '0')} UTC`;
}
