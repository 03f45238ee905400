import { useEffect, useState } from 'preact/hooks';
import { ApiError, session } from '../api/client';
import { Badge, ErrorBox, Loading, Money, PageHeader, When } from '../components/ui';
import { readSSE } from '../lib/sse';
import { formatInt, providerLabel } from '../lib/format';
import { OPS_RANGES, bucketLabel, formatMs, formatPercent, formatRate, sparkPath, type OpsRange, type OpsStats } from '../lib/ops';
import { useTitle } from '../lib/hooks';

// The live operations view: GET /admin/stats/stream sends a snapshot at
// once and a new one whenever it changes. EventSource cannot send the
// Authorization header the dashboard signs in with, so the stream is read
// with the session's fetch (which refreshes the token) and the SSE parser;
// it reconnects with a backoff when the server ends it (it does so after
// the access token's lifetime) or the network drops.

type LinkState = 'connecting' | 'live' | 'reconnecting';

async function streamError(res: Response): Promise<ApiError> {
  let message = `The operations stream failed (HTTP ${res.status}).`;
  try {
    const body = (await res.json()) as { error?: { message?: string; code?: string } };
    if (body.error?.message) message = body.error.message;
    return new ApiError(res.status, message, body.error?.code ?? '');
  } catch {
    return new ApiError(res.status, message);
  }
}

function useOpsStream(range: OpsRange) {
  const [data, setData] = useState<OpsStats | null>(null);
  const [link, setLink] = useState<LinkState>('connecting');
  const [error, setError] = useState<unknown>(null);
  const [updates, setUpdates] = useState(0);
  useEffect(() => {
    const ctrl = new AbortController();
    setData(null);
    setLink('connecting');
    setError(null);
    const wait = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
    void (async () => {
      let delay = 1000;
      while (!ctrl.signal.aborted) {
        try {
          const res = await session.fetch(`/admin/stats/stream?range=${range}`, { signal: ctrl.signal, headers: { Accept: 'text/event-stream' } });
          if (!res.ok || !res.body) throw await streamError(res);
          for await (const ev of readSSE(res.body)) {
            if (ev.event !== 'stats') continue;
            setData(JSON.parse(ev.data) as OpsStats);
            setLink('live');
            setError(null);
            setUpdates((n) => n + 1);
            delay = 1000;
          }
        } catch (e) {
          if (ctrl.signal.aborted) return;
          setError(e);
        }
        if (ctrl.signal.aborted) return;
        setLink('reconnecting');
        await wait(delay);
        delay = Math.min(delay * 2, 15000);
      }
    })();
    return () => ctrl.abort();
  }, [range]);
  return { data, link, error, updates };
}

function Spark({ values, label, testid }: { values: number[]; label: string; testid: string }) {
  const w = 240;
  const h = 40;
  return (
    <svg class="spark" viewBox={`0 0 ${w} ${h + 2}`} width="100%" height={h + 2} role="img" aria-label={label} data-testid={testid} preserveAspectRatio="none">
      <path d={sparkPath(values, w, h)} transform="translate(0,1)" fill="none" stroke="currentColor" stroke-width="1.5" vector-effect="non-scaling-stroke" />
    </svg>
  );
}

function Stat({ label, value, testid, spark }: { label: string; value: string; testid: string; spark?: number[] }) {
  return (
    <div class="stat card">
      <div class="stat-label">{label}</div>
      <div class="stat-value" data-testid={testid}>
        {value}
      </div>
      {spark && <Spark values={spark} label={`${label} over the range`} testid={`${testid}-spark`} />}
    </div>
  );
}

function stateBadge(state: string) {
  const kind = state === 'closed' ? 'ok' : state === 'open' ? 'bad' : 'warn';
  return <Badge kind={kind}>{state.replace('_', '-')}</Badge>;
}

export function AdminOperations() {
  useTitle('Operations');
  const [range, setRange] = useState<OpsRange>('1h');
  const { data, link, error, updates } = useOpsStream(range);
  const t = data?.totals;
  const series = data?.series ?? [];
  return (
    <>
      <PageHeader title="Operations" subtitle="Traffic, latency, spend and the health of providers and workflows, live.">
        <div class="preset-row" role="group" aria-label="Time range">
          {OPS_RANGES.map((r) => (
            <button key={r} type="button" class={`chip${range === r ? ' chip-on' : ''}`} aria-pressed={range === r ? 'true' : 'false'} onClick={() => setRange(r)} data-testid={`ops-range-${r}`}>
              {r}
            </button>
          ))}
        </div>
        <span data-testid="ops-link" data-state={link} data-updates={updates}>
          <Badge kind={link === 'live' ? 'ok' : 'warn'}>{link === 'live' ? 'Live' : link === 'connecting' ? 'Connecting…' : 'Reconnecting…'}</Badge>
        </span>
      </PageHeader>
      {error != null && link !== 'live' && <ErrorBox error={error} testid="ops-error" />}
      {!data || !t ? (
        <Loading label="Loading operations…" />
      ) : (
        <>
          <section class="stats" aria-label="Totals">
            <Stat label="Requests" value={formatInt(t.requests)} testid="ops-requests" spark={series.map((p) => p.requests)} />
            <Stat label="Requests per second" value={formatRate(t.requests_per_second)} testid="ops-rps" spark={series.map((p) => p.requests_per_second)} />
            <Stat label="Error rate" value={formatPercent(t.error_rate)} testid="ops-error-rate" spark={series.map((p) => p.error_rate)} />
            <Stat label="Added latency p50 / p99" value={`${formatMs(t.added_p50_ms)} / ${formatMs(t.added_p99_ms)}`} testid="ops-added" spark={series.map((p) => p.added_p99_ms)} />
            <Stat label="Upstream latency p50 / p99" value={`${formatMs(t.upstream_p50_ms)} / ${formatMs(t.upstream_p99_ms)}`} testid="ops-upstream" spark={series.map((p) => p.upstream_p99_ms)} />
            <div class="stat card">
              <div class="stat-label">Charged / margin</div>
              <div class="stat-value-sm">
                <Money micros={t.charged_micros} testid="ops-charged" /> / <Money micros={t.margin_micros} testid="ops-margin" />
              </div>
              <Spark values={data.money.series.map((p) => p.charged_micros)} label="Charged over the range" testid="ops-charged-spark" />
            </div>
          </section>
          <p class="hint" data-testid="ops-window">
            {t.upstream_errors} upstream and {t.client_errors} client errors, {t.cancelled} cancelled, from <When iso={data.from} /> in steps of{' '}
            {data.step_seconds >= 86400 ? 'a day' : data.step_seconds >= 3600 ? 'an hour' : 'a minute'}. Percentiles are the upper bounds of log-scale histogram buckets (within ×1.41).
          </p>

          <section class="card" aria-labelledby="ops-models-h">
            <h2 id="ops-models-h">By provider and model</h2>
            {data.models.length === 0 ? (
              <p class="hint" data-testid="ops-models-empty">No requests in this range.</p>
            ) : (
              <div class="table-wrap">
                <table class="table stack" data-testid="ops-models">
                  <thead>
                    <tr>
                      <th>Model</th>
                      <th class="num">Requests</th>
                      <th class="num">Req/s</th>
                      <th class="num">Errors</th>
                      <th class="num">Added p50 / p99</th>
                      <th class="num">Upstream p50 / p99</th>
                      <th class="num">Charged</th>
                      <th class="num">Margin</th>
                    </tr>
                  </thead>
                  <tbody>
                    {data.models.map((m) => (
                      <tr key={m.provider + m.model} data-testid="ops-model-row" data-model={m.model}>
                        <td data-label="Model">
                          <span class="mono">{m.model}</span> <span class="hint">{providerLabel(m.provider)}</span>
                        </td>
                        <td class="num" data-label="Requests" data-testid="ops-model-requests">
                          {formatInt(m.requests)}
                        </td>
                        <td class="num" data-label="Req/s">
                          {formatRate(m.requests_per_second)}
                        </td>
                        <td class="num" data-label="Errors">
                          {formatPercent(m.error_rate)}
                        </td>
                        <td class="num" data-label="Added p50 / p99">
                          {formatMs(m.added_p50_ms)} / {formatMs(m.added_p99_ms)}
                        </td>
                        <td class="num" data-label="Upstream p50 / p99">
                          {formatMs(m.upstream_p50_ms)} / {formatMs(m.upstream_p99_ms)}
                        </td>
                        <td class="num" data-label="Charged">
                          <Money micros={m.charged_micros} />
                        </td>
                        <td class="num" data-label="Margin">
                          <Money micros={m.margin_micros} />
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )}
          </section>

          <section class="card" aria-labelledby="ops-money-h">
            <h2 id="ops-money-h">Spend and margin per {data.money.step}</h2>
            <div class="table-wrap">
              <table class="table stack" data-testid="ops-money">
                <thead>
                  <tr>
                    <th>{data.money.step === 'day' ? 'Day (UTC)' : 'Hour'}</th>
                    <th class="num">Charged</th>
                    <th class="num">Provider cost</th>
                    <th class="num">Margin</th>
                  </tr>
                </thead>
                <tbody>
                  {data.money.series
                    .slice()
                    .reverse()
                    .map((p) => (
                      <tr key={p.t}>
                        <td data-label="When">{bucketLabel(p.t, data.money.step === 'day' ? 86400 : 3600)}</td>
                        <td class="num" data-label="Charged">
                          <Money micros={p.charged_micros} />
                        </td>
                        <td class="num" data-label="Provider cost">
                          <Money micros={p.provider_cost_micros} />
                        </td>
                        <td class="num" data-label="Margin">
                          <Money micros={p.margin_micros} />
                        </td>
                      </tr>
                    ))}
                </tbody>
              </table>
            </div>
          </section>

          <div class="grid-2">
            <section class="card" aria-labelledby="ops-breakers-h">
              <h2 id="ops-breakers-h">Circuit breakers and key cooldowns</h2>
              <p class="hint">This server's view: each API process keeps its own breakers.</p>
              <div class="table-wrap">
                <table class="table stack" data-testid="ops-breakers">
                  <thead>
                    <tr>
                      <th>Provider</th>
                      <th>Endpoint</th>
                      <th>Breaker</th>
                      <th class="num">Failures</th>
                      <th>Cooldown</th>
                    </tr>
                  </thead>
                  <tbody>
                    {data.breakers.flatMap((b) =>
                      b.endpoints.map((e) => (
                        <tr key={`${b.provider}-${e.index}`} data-testid="ops-breaker-row" data-provider={b.provider} data-state={e.state}>
                          <td data-label="Provider">{providerLabel(b.provider)}</td>
                          <td data-label="Endpoint" class="mono">
                            #{e.index} {e.key || '—'}
                          </td>
                          <td data-label="Breaker">
                            {stateBadge(e.state)} {e.open_until && <When iso={e.open_until} />}
                          </td>
                          <td class="num" data-label="Failures">
                            {e.consecutive_failures}
                          </td>
                          <td data-label="Cooldown">{e.cooldown_until ? <When iso={e.cooldown_until} /> : '—'}</td>
                        </tr>
                      )),
                    )}
                  </tbody>
                </table>
              </div>
            </section>

            <section class="card" aria-labelledby="ops-wf-h">
              <h2 id="ops-wf-h">Workflows failing</h2>
              {!data.workflows.available ? (
                <p class="hint" data-testid="ops-workflows-unavailable">
                  {data.workflows.reason ?? 'Temporal is not available.'}
                </p>
              ) : (
                <>
                  <p data-testid="ops-workflows-counts">
                    {formatInt(data.workflows.failed)} failed, {formatInt(data.workflows.timed_out)} timed out in this range.
                  </p>
                  {data.workflows.recent.length > 0 && (
                    <div class="table-wrap">
                      <table class="table stack" data-testid="ops-workflows">
                        <thead>
                          <tr>
                            <th>Workflow</th>
                            <th>Type</th>
                            <th>Status</th>
                            <th>Closed</th>
                          </tr>
                        </thead>
                        <tbody>
                          {data.workflows.recent.map((w) => (
                            <tr key={w.workflow_id + w.run_id}>
                              <td data-label="Workflow" class="mono">
                                {w.workflow_id}
                              </td>
                              <td data-label="Type">{w.type}</td>
                              <td data-label="Status">
                                <Badge kind="bad">{w.status.replace('_', ' ')}</Badge>
                              </td>
                              <td data-label="Closed">
                                <When iso={w.closed_at} />
                              </td>
                            </tr>
                          ))}
                        </tbody>
                      </table>
                    </div>
                  )}
                </>
              )}
            </section>
          </div>

          <section class="card" aria-labelledby="ops-top-h">
            <h2 id="ops-top-h">Top accounts by spend</h2>
            <p class="hint">Whole UTC days from {data.top_accounts.from_day} (daily totals).</p>
            {data.top_accounts.accounts.length === 0 ? (
              <p class="hint">No charges in this range.</p>
            ) : (
              <div class="table-wrap">
                <table class="table stack" data-testid="ops-top-accounts">
                  <thead>
                    <tr>
                      <th>Account</th>
                      <th class="num">Requests</th>
                      <th class="num">Charged</th>
                    </tr>
                  </thead>
                  <tbody>
                    {data.top_accounts.accounts.map((a) => (
                      <tr key={a.account_id} data-testid="ops-top-row" data-account={a.account_id}>
                        <td data-label="Account">
                          <a href={`/manage/accounts/${a.account_id}`}>{a.email || a.account_id}</a>
                        </td>
                        <td class="num" data-label="Requests">
                          {formatInt(a.requests)}
                        </td>
                        <td class="num" data-label="Charged">
                          <Money micros={a.charged_micros} />
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )}
          </section>
        </>
      )}
    </>
  );
}
