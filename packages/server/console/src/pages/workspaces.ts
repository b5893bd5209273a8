import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { admin, messageOf } from '../api.ts';
import { useAdmin } from '../use-admin.ts';

interface Channels {
  source: 'repository' | 'assignments';
  workspaces: {
    workspace: string;
    versions: string[];
    reported?: { version: string; devices: number }[];
    channels: { channel: string; version: string | null; assignments: string[]; users: string[]; groups: string[] }[];
  }[];
}

function MoveChannel({ ws, onMoved }: { ws: Channels['workspaces'][number]; onMoved: () => void }) {
  const [channel, setChannel] = useState(ws.channels[0]?.channel ?? '');
  const [version, setVersion] = useState('');
  const [note, setNote] = useState('');
  const [failure, setFailure] = useState('');
  const id = `move-${ws.workspace}`;
  const submit = async (e: Event) => {
    e.preventDefault();
    setNote('');
    setFailure('');
    try {
      const r = await admin<{ assignments: number }>('channel', { workspace: ws.workspace, channel, version });
      setNote(`${channel} of ${ws.workspace} is now ${version} (${r.assignments} assignment(s)).`);
      onMoved();
    } catch (err) {
      setFailure(messageOf(err));
    }
  };
  if (ws.channels.length === 0) return html`<p>No assignment follows a channel of ${ws.workspace}.</p>`;
  return html`
    <form class="inline" onSubmit=${(e: Event) => void submit(e)} aria-label=${`Move a channel of ${ws.workspace}`}>
      <label for=${`${id}-channel`}>Channel</label>
      <select
        id=${`${id}-channel`}
        value=${channel}
        onChange=${(e: Event) => setChannel((e.target as HTMLSelectElement).value)}
      >
        ${ws.channels.map((c) => html`<option value=${c.channel}>${c.channel}</option>`)}
      </select>
      <label for=${`${id}-version`}>to version</label>
      <input
        id=${`${id}-version`}
        list=${`${id}-versions`}
        required
        value=${version}
        aria-invalid=${failure ? 'true' : undefined}
        aria-describedby=${failure ? `${id}-error` : undefined}
        onInput=${(e: Event) => setVersion((e.target as HTMLInputElement).value)}
      />
      <datalist id=${`${id}-versions`}>${ws.versions.map((v) => html`<option value=${v}></option>`)}</datalist>
      <button type="submit">Move channel</button>
      ${failure && html`<p id=${`${id}-error`} class="error" role="alert">${failure}</p>`}
      ${note && html`<p class="ok" role="status">${note}</p>`}
    </form>
  `;
}

/** Workspaces with their versions and channels; move a channel; who gets it. */
export function WorkspacesPage() {
  const { data, error, reload } = useAdmin<Channels>('channels');
  if (error)
    return html`<h1>Workspaces</h1>
      <p class="error" role="alert">${error}</p>`;
  if (!data)
    return html`<h1>Workspaces</h1>
      <p>Loading…</p>`;
  return html`
    <h1>Workspaces</h1>
    <p class="hint">
      ${
        data.source === 'repository'
          ? "Versions from the repository's signed metadata."
          : 'Versions as the assignments name them (the server does not read the repository).'
      }
    </p>
    ${data.workspaces.length === 0 && html`<p>No workspace is assigned yet. <a href="#/assignments">Assign one</a>.</p>`}
    ${data.workspaces.map(
      (ws) => html`
        <section class="card" aria-labelledby=${`ws-${ws.workspace}`} data-workspace=${ws.workspace}>
          <h2 id=${`ws-${ws.workspace}`}>${ws.workspace}</h2>
          <p>Versions: ${ws.versions.length ? ws.versions.join(', ') : '—'}</p>
          ${
            ws.reported?.length
              ? html`<p>Reported by endpoints: ${ws.reported.map((r) => `${r.version} on ${r.devices}`).join(', ')}</p>`
              : null
          }
          <table>
            <caption class="sr-only">
              Channels of ${ws.workspace}
            </caption>
            <thead>
              <tr>
                <th scope="col">Channel</th>
                <th scope="col">Version</th>
                <th scope="col">Assignments</th>
                <th scope="col">Who gets it</th>
              </tr>
            </thead>
            <tbody>
              ${ws.channels.map(
                (c) =>
                  html`<tr data-channel=${c.channel}>
                    <td>${c.channel}</td>
                    <td class="version">${c.version ?? '—'}</td>
                    <td>${c.assignments.length}</td>
                    <td>
                      ${[...c.users.map((u) => `user ${u}`), ...c.groups.map((g) => `group ${g}`)].join('; ') || '—'}
                    </td>
                  </tr>`,
              )}
            </tbody>
          </table>
          <${MoveChannel} ws=${ws} onMoved=${reload} />
        </section>
      `,
    )}
  `;
}
