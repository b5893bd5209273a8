import { Chart, registerables, type ChartConfiguration } from 'chart.js';
import { html } from 'htm/preact';
import { useEffect, useRef } from 'preact/hooks';
import { useAdmin, when } from '../use-admin.ts';

Chart.register(...registerables);

interface Overview {
  generatedAt: string;
  endpoints: { total: number; onlineNow: number; lastDay: number; revoked: number };
  sessionsRunning: number;
  failuresLastDay: { total: number; byType: { type: string; count: number }[] };
  versions: { workspace: string; version: string; devices: number }[];
}

// Colours with at least 3:1 contrast against white, told apart by the legend's labels too.
const PALETTE = ['#1f5fa8', '#b3541e', '#2e7d32', '#7b3fa0', '#a0203c', '#00695c', '#5d4037', '#455a64'];

function ChartCanvas({ label, config }: { label: string; config: ChartConfiguration }) {
  const ref = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    if (!ref.current) return;
    const chart = new Chart(ref.current, config);
    return () => chart.destroy();
  }, [JSON.stringify(config.data)]);
  return html`<div class="chart"><canvas ref=${ref} role="img" aria-label=${label}></canvas></div>`;
}

/** The overview: endpoints online, sessions, failures and version spread, as numbers and charts. */
export function OverviewPage() {
  const { data, error } = useAdmin<Overview>('overview');
  if (error)
    return html`<h1>Overview</h1>
      <p class="error" role="alert">${error}</p>`;
  if (!data)
    return html`<h1>Overview</h1>
      <p>Loading…</p>`;
  const e = data.endpoints;
  const workspaces = [...new Set(data.versions.map((v) => v.workspace))];
  const versions = [...new Set(data.versions.map((v) => v.version))];
  const spread: ChartConfiguration = {
    type: 'bar',
    data: {
      labels: workspaces,
      datasets: versions.map((version, i) => ({
        label: version,
        backgroundColor: PALETTE[i % PALETTE.length] ?? '#1f5fa8',
        data: workspaces.map(
          (w) => data.versions.find((v) => v.workspace === w && v.version === version)?.devices ?? 0,
        ),
      })),
    },
    options: {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } },
    },
  };
  const online: ChartConfiguration = {
    type: 'doughnut',
    data: {
      labels: ['Online now', 'Seen in the last day', 'Not seen for a day', 'Revoked'],
      datasets: [
        {
          data: [
            e.onlineNow,
            Math.max(0, e.lastDay - e.onlineNow),
            Math.max(0, e.total - e.lastDay - e.revoked),
            e.revoked,
          ],
          backgroundColor: ['#2e7d32', '#1f5fa8', '#757575', '#a0203c'],
        },
      ],
    },
    options: { animation: false, responsive: true, maintainAspectRatio: false },
  };
  const failures: ChartConfiguration = {
    type: 'bar',
    data: {
      labels: data.failuresLastDay.byType.map((f) => f.type),
      datasets: [
        { label: 'Failures', backgroundColor: '#a0203c', data: data.failuresLastDay.byType.map((f) => f.count) },
      ],
    },
    options: { animation: false, responsive: true, maintainAspectRatio: false, indexAxis: 'y' },
  };
  return html`
    <h1>Overview</h1>
    <p class="hint">As of ${when(data.generatedAt)}; updates live.</p>
    <ul class="figures" aria-label="Figures">
      <li><span class="figure" data-figure="online-now">${e.onlineNow}</span> endpoints online now</li>
      <li><span class="figure" data-figure="last-day">${e.lastDay}</span> seen in the last day</li>
      <li><span class="figure" data-figure="total">${e.total}</span> enrolled</li>
      <li><span class="figure" data-figure="sessions">${data.sessionsRunning}</span> sessions running</li>
      <li><span class="figure" data-figure="failures">${data.failuresLastDay.total}</span> failures in the last day</li>
    </ul>
    <div class="charts">
      <section aria-labelledby="spread-h">
        <h2 id="spread-h">Version spread per workspace</h2>
        <${ChartCanvas} label="Devices per version of each workspace" config=${spread} />
        <table>
          <caption class="sr-only">
            Devices per version of each workspace
          </caption>
          <thead>
            <tr>
              <th scope="col">Workspace</th>
              <th scope="col">Version</th>
              <th scope="col">Devices</th>
            </tr>
          </thead>
          <tbody>
            ${data.versions.map(
              (v) =>
                html`<tr>
                  <td>${v.workspace}</td>
                  <td>${v.version}</td>
                  <td>${v.devices}</td>
                </tr>`,
            )}
          </tbody>
        </table>
      </section>
      <section aria-labelledby="online-h">
        <h2 id="online-h">Endpoints</h2>
        <${ChartCanvas} label="Endpoints by when they last checked in" config=${online} />
      </section>
      <section aria-labelledby="fail-h">
        <h2 id="fail-h">Failures in the last day</h2>
        ${
          data.failuresLastDay.byType.length
            ? html`<${ChartCanvas} label="Failures in the last day by type" config=${failures} />`
            : html`<p>None.</p>`
        }
      </section>
    </div>
  `;
}
