// Daily spend (bars) and requests (line) as a hand-written SVG chart.
// Why not a chart library: this is one chart; a ~150-line component keeps the
// bundle small, needs no inline <style> (the CSP forbids it) and renders money
// labels with the exact integer formatter.
import { useEffect, useRef, useState } from 'preact/hooks';
import { formatMicros } from '../lib/money';
import { formatInt } from '../lib/format';

export interface DayPoint {
  date: string; // YYYY-MM-DD
  cost_micros: number;
  requests: number;
}

/** Smallest 1/2/5×10^k that is ≥ v (v ≥ 0 integer); 0 → fallback. */
export function niceCeil(v: number, fallback = 1): number {
  if (v <= 0) return fallback;
  let p = 1;
  while (p * 10 <= v) p *= 10;
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

const H = 240;
const PAD = { top: 16, right: 40, bottom: 28, left: 60 };

export function UsageChart({ points }: { points: DayPoint[] }) {
  const wrap = useRef<HTMLDivElement>(null);
  const [width, setWidth] = useState(640);
  useEffect(() => {
    const el = wrap.current;
    if (!el) return;
    const update = () => setWidth(Math.max(280, Math.floor(el.clientWidth)));
    update();
    const ro = new ResizeObserver(update);
    ro.observe(el);
    return () => ro.disconnect();
  }, []);

  // Four grid steps of a "nice" integer size, so every tick label is exact.
  const maxCost = 4 * niceCeil(Math.ceil(Math.max(0, ...points.map((p) => p.cost_micros)) / 4), 2_500);
  const maxReq = 4 * niceCeil(Math.ceil(Math.max(0, ...points.map((p) => p.requests)) / 4), 1);
  const narrow = width < 480;
  const costLabels = [0, 1, 2, 3, 4].map((k) => formatMicros((maxCost / 4) * k));
  const reqLabels = [0, 1, 2, 3, 4].map((k) => formatInt((maxReq / 4) * k));
  const charW = narrow ? 6.2 : 6.6; // ~11px font
  const pad = {
    ...PAD,
    left: Math.ceil(Math.max(...costLabels.map((l) => l.length)) * charW) + 12,
    right: Math.ceil(Math.max(...reqLabels.map((l) => l.length)) * charW) + 12,
  };
  const plotW = width - pad.left - pad.right;
  const plotH = H - pad.top - pad.bottom;
  const n = Math.max(1, points.length);
  const slot = plotW / n;
  const barW = Math.max(2, slot * 0.62);
  const x = (i: number) => pad.left + slot * i + slot / 2;
  const yCost = (v: number) => pad.top + plotH - (v / maxCost) * plotH;
  const yReq = (v: number) => pad.top + plotH - (v / maxReq) * plotH;
  const ticks = [0, 1, 2, 3, 4].map((k) => k / 4);
  const labelEvery = Math.ceil(n / Math.max(2, Math.floor(plotW / (narrow ? 56 : 64))));
  const linePath = points.map((p, i) => `${i === 0 ? 'M' : 'L'}${x(i).toFixed(1)},${yReq(p.requests).toFixed(1)}`).join(' ');
  const totalCost = points.reduce((a, p) => a + BigInt(p.cost_micros), 0n);
  const totalReq = points.reduce((a, p) => a + p.requests, 0);

  return (
    <figure class="chart" data-testid="usage-chart">
      <div class="chart-legend" aria-hidden="true">
        <span class="legend-item">
          <span class="swatch swatch-bar" /> Spend
        </span>
        <span class="legend-item">
          <span class="swatch swatch-line" /> Requests
        </span>
      </div>
      <div ref={wrap} class="chart-wrap">
        <svg
          width={width}
          height={H}
          viewBox={`0 0 ${width} ${H}`}
          role="img"
          aria-label={`Daily spend and requests over the last ${points.length} days: ${formatMicros(totalCost)} in total, ${formatInt(totalReq)} requests.`}
        >
          {ticks.map((t, k) => {
            const y = pad.top + plotH - t * plotH;
            return (
              <g key={t}>
                <line class="grid" x1={pad.left} x2={width - pad.right} y1={y} y2={y} />
                <text class="axis" x={pad.left - 6} y={y + 4} text-anchor="end">
                  {costLabels[k]}
                </text>
                <text class="axis axis-right" x={width - pad.right + 6} y={y + 4} text-anchor="start">
                  {reqLabels[k]}
                </text>
              </g>
            );
          })}
          {points.map((p, i) => {
            const y = yCost(p.cost_micros);
            return (
              <g key={p.date}>
                <rect class="bar" x={x(i) - barW / 2} y={y} width={barW} height={Math.max(0, pad.top + plotH - y)} rx={2}>
                  <title>{`${p.date}: ${formatMicros(p.cost_micros)}, ${formatInt(p.requests)} requests`}</title>
                </rect>
                {i % labelEvery === 0 && (
                  <text class="axis" x={x(i)} y={H - 8} text-anchor="middle">
                    {p.date.slice(5)}
                  </text>
                )}
              </g>
            );
          })}
          {points.length > 0 && <path class="line" d={linePath} fill="none" />}
          {points.map((p, i) =>
            p.requests > 0 ? <circle key={`c${p.date}`} class="dot" cx={x(i)} cy={yReq(p.requests)} r={narrow ? 2 : 3} /> : null,
          )}
        </svg>
      </div>
      <details class="chart-table">
        <summary>Show the data as a table</summary>
        <div class="table-wrap">
          <table>
            <caption class="sr-only">Daily spend and requests</caption>
            <thead>
              <tr>
                <th scope="col">Date (UTC)</th>
                <th scope="col" class="num">
                  Spend
                </th>
                <th scope="col" class="num">
                  Requests
                </th>
              </tr>
            </thead>
            <tbody>
              {points
                .filter((p) => p.requests > 0 || p.cost_micros > 0)
                .map((p) => (
                  <tr key={p.date}>
                    <td>{p.date}</td>
                    <td class="num">{formatMicros(p.cost_micros)}</td>
                    <td class="num">{formatInt(p.requests)}</td>
                  </tr>
                ))}
            </tbody>
          </table>
        </div>
      </details>
    </figure>
  );
}
