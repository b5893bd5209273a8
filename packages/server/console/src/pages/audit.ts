import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { useAdmin, when } from '../use-admin.ts';

interface Audit {
  rows: { id: string; at: string; actor: string; action: string; target: string; detail?: unknown }[];
}

/** Who changed what, when: the server's audit log, newest first. */
export function AuditPage() {
  const [actor, setActor] = useState('');
  const [applied, setApplied] = useState('');
  const { data, error } = useAdmin<Audit>('audit', applied ? { actor: applied, limit: 500 } : { limit: 500 }, [
    applied,
  ]);
  const rows = [...(data?.rows ?? [])].sort((a, b) => b.at.localeCompare(a.at));
  return html`
    <h1>Audit</h1>
    <form class="inline" onSubmit=${(e: Event) => (e.preventDefault(), setApplied(actor))}>
      <label for="audit-actor">Actor</label>
      <input
        id="audit-actor"
        value=${actor}
        placeholder="console:alice"
        onInput=${(e: Event) => setActor((e.target as HTMLInputElement).value)}
      />
      <button type="submit">Filter</button>
    </form>
    ${error && html`<p class="error" role="alert">${error}</p>`}
    <table class="audit">
      <caption class="sr-only">
        Audit log
      </caption>
      <thead>
        <tr>
          <th scope="col">When</th>
          <th scope="col">Who</th>
          <th scope="col">What</th>
          <th scope="col">Target</th>
          <th scope="col">Detail</th>
        </tr>
      </thead>
      <tbody>
        ${rows.map(
          (r) =>
            html`<tr>
              <td>${when(r.at)}</td>
              <td>${r.actor}</td>
              <td>${r.action}</td>
              <td>${r.target}</td>
              <td><code>${r.detail === undefined ? '' : JSON.stringify(r.detail)}</code></td>
            </tr>`,
        )}
      </tbody>
    </table>
  `;
}
