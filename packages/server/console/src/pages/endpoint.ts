import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { admin, messageOf, type StoredEvent } from '../api.ts';
import { useAdmin, when } from '../use-admin.ts';

interface Detail {
  device: {
    id: string;
    user: string;
    hostName: string;
    enrolledAt: string;
    revokedAt?: string | null;
    lastCheckInAt?: string | null;
    agentVersion?: string;
    state: string;
  };
  workspaces: { workspace: string; version?: string; state?: string }[];
  leases: { workspace: string; envelopeId: string; issuedAt: string; notAfter: string }[];
  events: StoredEvent[];
}

/** One endpoint: its user, versions, leases and last events; revoke it. */
export function EndpointPage({ id }: { id: string }) {
  const { data, error, reload } = useAdmin<Detail>('device', { id }, [id]);
  const [confirming, setConfirming] = useState(false);
  const [failure, setFailure] = useState('');
  const revoke = async () => {
    setFailure('');
    try {
      await admin('revoke-device', { id });
      setConfirming(false);
      reload();
    } catch (err) {
      setFailure(messageOf(err));
    }
  };
  if (error)
    return html`<h1>Endpoint</h1>
      <p class="error" role="alert">${error}</p>
      <p><a href="#/endpoints">All endpoints</a></p>`;
  if (!data)
    return html`<h1>Endpoint</h1>
      <p>Loading…</p>`;
  const d = data.device;
  return html`
    <p><a href="#/endpoints">← All endpoints</a></p>
    <h1>Endpoint ${d.hostName}</h1>
    <dl class="facts">
      <dt>Device</dt>
      <dd><code>${d.id}</code></dd>
      <dt>User</dt>
      <dd>${d.user}</dd>
      <dt>State</dt>
      <dd data-state=${d.state}>${d.revokedAt ? `revoked ${when(d.revokedAt)}` : d.state}</dd>
      <dt>Enrolled</dt>
      <dd>${when(d.enrolledAt)}</dd>
      <dt>Last check-in</dt>
      <dd>${when(d.lastCheckInAt)}</dd>
      <dt>Agent</dt>
      <dd>${d.agentVersion ?? '—'}</dd>
    </dl>
    <h2>Workspaces</h2>
    <table>
      <caption class="sr-only">
        Workspaces on this endpoint
      </caption>
      <thead>
        <tr>
          <th scope="col">Workspace</th>
          <th scope="col">Version</th>
          <th scope="col">State</th>
          <th scope="col">Lease expires</th>
        </tr>
      </thead>
      <tbody>
        ${data.workspaces.map((w) => {
          const lease = data.leases.find((l) => l.workspace === w.workspace);
          return html`<tr>
            <td>${w.workspace}</td>
            <td>${w.version ?? '—'}</td>
            <td>${w.state ?? '—'}</td>
            <td>${when(lease?.notAfter)}</td>
          </tr>`;
        })}
        ${
          data.workspaces.length === 0 &&
          html`<tr>
            <td colspan="4">None reported.</td>
          </tr>`
        }
      </tbody>
    </table>
    <h2>Leases</h2>
    <table>
      <caption class="sr-only">
        Key leases
      </caption>
      <thead>
        <tr>
          <th scope="col">Workspace</th>
          <th scope="col">Envelope</th>
          <th scope="col">Issued</th>
          <th scope="col">Expires</th>
        </tr>
      </thead>
      <tbody>
        ${data.leases.map(
          (l) =>
            html`<tr>
              <td>${l.workspace}</td>
              <td><code>${l.envelopeId}</code></td>
              <td>${when(l.issuedAt)}</td>
              <td>${when(l.notAfter)}</td>
            </tr>`,
        )}
        ${
          data.leases.length === 0 &&
          html`<tr>
            <td colspan="4">None.</td>
          </tr>`
        }
      </tbody>
    </table>
    <h2>Last events</h2>
    <table>
      <caption class="sr-only">
        Last events of this endpoint
      </caption>
      <thead>
        <tr>
          <th scope="col">When</th>
          <th scope="col">Type</th>
          <th scope="col">Workspace</th>
        </tr>
      </thead>
      <tbody>
        ${data.events.map(
          (e) =>
            html`<tr>
              <td>${when(e.event.at)}</td>
              <td>${e.event.type}</td>
              <td>${e.event.workspace ?? '—'}</td>
            </tr>`,
        )}
        ${
          data.events.length === 0 &&
          html`<tr>
            <td colspan="3">None.</td>
          </tr>`
        }
      </tbody>
    </table>
    <h2>Revoke</h2>
    ${
      d.revokedAt
        ? html`<p>This device is revoked: its next check-in is refused.</p>`
        : confirming
          ? html`<p>Revoke ${d.hostName}? Its next check-in is refused and it gets no more keys.</p>
              <button type="button" class="danger" onClick=${() => void revoke()}>Yes, revoke this device</button>
              <button type="button" class="secondary" onClick=${() => setConfirming(false)}>Cancel</button>`
          : html`<button type="button" class="danger" onClick=${() => setConfirming(true)}>Revoke device</button>`
    }
    ${failure && html`<p class="error" role="alert">${failure}</p>`}
  `;
}
