import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { admin, messageOf, type Assignment } from '../api.ts';
import { useAdmin } from '../use-admin.ts';

interface Found {
  directory: string;
  users: { name: string; dn: string; displayName?: string }[];
  groups: { name: string; dn: string }[];
}
interface Principal {
  kind: 'user' | 'group';
  value: string;
  label: string;
}

function DirectorySearch({ onPick }: { onPick: (p: Principal) => void }) {
  const [query, setQuery] = useState('');
  const [found, setFound] = useState<Found | undefined>(undefined);
  const [failure, setFailure] = useState('');
  useEffect(() => {
    if (query.trim().length < 1) {
      setFound(undefined);
      return;
    }
    let live = true;
    const t = setTimeout(() => {
      admin<Found>('directory-search', { query: query.trim(), limit: 20 }).then(
        (f) => live && (setFound(f), setFailure('')),
        (e: unknown) => live && setFailure(messageOf(e)),
      );
    }, 200);
    return () => {
      live = false;
      clearTimeout(t);
    };
  }, [query]);
  return html`
    <div class="search">
      <label for="dir-search">Search the directory for users and groups</label>
      <input
        id="dir-search"
        type="search"
        value=${query}
        onInput=${(e: Event) => setQuery((e.target as HTMLInputElement).value)}
      />
      ${failure && html`<p class="error" role="alert">${failure}</p>`}
      ${
        found &&
        html`<ul class="found" aria-label="Directory results">
          ${found.groups.map(
            (g) =>
              html`<li>
                <button
                  type="button"
                  class="secondary"
                  data-dn=${g.dn}
                  onClick=${() => onPick({ kind: 'group', value: g.dn, label: g.name })}
                >
                  Add group ${g.name}
                </button>
              </li>`,
          )}
          ${found.users.map(
            (u) =>
              html`<li>
                <button
                  type="button"
                  class="secondary"
                  onClick=${() => onPick({ kind: 'user', value: u.name, label: u.displayName ?? u.name })}
                >
                  Add user ${u.displayName ?? u.name}
                </button>
              </li>`,
          )}
          ${found.users.length + found.groups.length === 0 && html`<li>Nothing found.</li>`}
        </ul>`
      }
    </div>
  `;
}

function AssignForm({ layers, onDone }: { layers: string[]; onDone: () => void }) {
  const [workspace, setWorkspace] = useState('');
  const [channel, setChannel] = useState('stable');
  const [version, setVersion] = useState('');
  const [lease, setLease] = useState('');
  const [who, setWho] = useState<Principal[]>([]);
  const [chosenLayers, setChosenLayers] = useState<string[]>([]);
  const [failure, setFailure] = useState('');
  const [note, setNote] = useState('');
  const submit = async (e: Event) => {
    e.preventDefault();
    setFailure('');
    setNote('');
    try {
      const a = await admin<Assignment>('assign', {
        workspace,
        ...(channel ? { channel } : {}),
        ...(version ? { version } : {}),
        ...(lease ? { lease } : {}),
        users: who.filter((p) => p.kind === 'user').map((p) => p.value),
        groups: who.filter((p) => p.kind === 'group').map((p) => p.value),
        policyLayers: chosenLayers,
      });
      setNote(`Assigned ${a.workspace} (assignment ${a.id}).`);
      setWho([]);
      onDone();
    } catch (err) {
      setFailure(messageOf(err));
    }
  };
  const input = (id: string, label: string, value: string, set: (v: string) => void, extra = {}) =>
    html`<div class="field">
      <label for=${id}>${label}</label
      ><input id=${id} value=${value} ...${extra} onInput=${(e: Event) => set((e.target as HTMLInputElement).value)} />
    </div>`;
  return html`
    <form onSubmit=${(e: Event) => void submit(e)} aria-labelledby="assign-h" class="card">
      <h2 id="assign-h">Assign a workspace</h2>
      <div class="grid">
        ${input('assign-workspace', 'Workspace', workspace, setWorkspace, { required: true })}
        ${input('assign-channel', 'Channel (stable, pilot)', channel, setChannel)}
        ${input('assign-version', 'Version (optional)', version, setVersion)}
        ${input('assign-lease', 'Offline lease (ISO 8601, e.g. P7D)', lease, setLease)}
      </div>
      <${DirectorySearch}
        onPick=${(p: Principal) => setWho((w) => (w.some((x) => x.value === p.value) ? w : [...w, p]))}
      />
      <p id="assign-who">To: ${who.length === 0 ? 'nobody yet' : ''}</p>
      <ul class="chips" aria-labelledby="assign-who">
        ${who.map(
          (p) =>
            html`<li>
              ${p.kind} ${p.label}
              <button
                type="button"
                class="link"
                aria-label=${`Remove ${p.kind} ${p.label}`}
                onClick=${() => setWho((w) => w.filter((x) => x !== p))}
              >
                ×
              </button>
            </li>`,
        )}
      </ul>
      <fieldset>
        <legend>Policy layers</legend>
        ${layers.length === 0 && html`<p>No policy layer yet (<a href="#/policy">write one</a>).</p>`}
        ${layers.map(
          (l) =>
            html`<label class="check"
              ><input
                type="checkbox"
                checked=${chosenLayers.includes(l)}
                onChange=${(e: Event) =>
                  setChosenLayers((c) =>
                    (e.target as HTMLInputElement).checked ? [...c, l] : c.filter((x) => x !== l),
                  )}
              />
              ${l}</label
            >`,
        )}
      </fieldset>
      ${failure && html`<p class="error" role="alert">${failure}</p>`}
      ${note && html`<p class="ok" role="status">${note}</p>`}
      <button type="submit">Assign</button>
    </form>
  `;
}

interface Explained {
  user: string;
  groups: string[];
  workspaces: { workspace: string; version?: string; channel?: string }[];
  notGiven: { workspace: string; assignment: string; reason: string }[];
  decisions?: { workspace: string; assignment: string; lines: string[] }[];
}

/** The server's answer: each decision as `tandem policy explain` prints it, then what is given. */
function Answer({ answer }: { answer: unknown }) {
  const a = answer as Explained;
  return html`
    <section class="answer" aria-label="Explanation">
      ${(a.decisions ?? []).map(
        (d) =>
          html`<h3>${d.workspace}</h3>
            <pre tabindex="0">${d.lines.join('\n')}</pre>`,
      )}
      <p>
        ${a.user} (groups: ${a.groups.join(', ') || 'none'}) gets:
        ${a.workspaces.length ? a.workspaces.map((w) => `${w.workspace} ${w.version ?? w.channel ?? ''}`.trim()).join(', ') : 'nothing'}.
      </p>
      ${
        a.notGiven.length > 0 &&
        html`<ul>
          ${a.notGiven.map((n) => html`<li>Not ${n.workspace} (assignment ${n.assignment}): ${n.reason}</li>`)}
        </ul>`
      }
      <details>
        <summary>The whole answer</summary>
        <pre tabindex="0">${JSON.stringify(answer, null, 2)}</pre>
      </details>
    </section>
  `;
}

function Explain() {
  const [user, setUser] = useState('');
  const [device, setDevice] = useState('');
  const [kind, setKind] = useState<'none' | 'url' | 'transfer'>('none');
  const [url, setUrl] = useState('');
  const [direction, setDirection] = useState('guest-to-host');
  const [channel, setChannel] = useState('clipboard');
  const [answer, setAnswer] = useState<unknown>(undefined);
  const [failure, setFailure] = useState('');
  const submit = async (e: Event) => {
    e.preventDefault();
    setFailure('');
    try {
      const question =
        kind === 'url' ? { url } : kind === 'transfer' ? { transfer: { direction, channel } } : undefined;
      setAnswer(await admin('explain', { user, ...(device ? { device } : {}), ...(question ? { question } : {}) }));
    } catch (err) {
      setAnswer(undefined);
      setFailure(messageOf(err));
    }
  };
  return html`
    <form onSubmit=${(e: Event) => void submit(e)} aria-labelledby="explain-h" class="card">
      <h2 id="explain-h">Explain</h2>
      <div class="grid">
        <div class="field">
          <label for="explain-user">User</label
          ><input
            id="explain-user"
            required
            value=${user}
            onInput=${(e: Event) => setUser((e.target as HTMLInputElement).value)}
          />
        </div>
        <div class="field">
          <label for="explain-device">Device (optional)</label
          ><input
            id="explain-device"
            value=${device}
            onInput=${(e: Event) => setDevice((e.target as HTMLInputElement).value)}
          />
        </div>
        <div class="field">
          <label for="explain-kind">Question</label>
          <select
            id="explain-kind"
            value=${kind}
            onChange=${(e: Event) => setKind((e.target as HTMLSelectElement).value as 'none')}
          >
            <option value="none">What do they get?</option>
            <option value="url">Where does a URL open?</option>
            <option value="transfer">Is a transfer allowed?</option>
          </select>
        </div>
        ${kind === 'url' && html`<div class="field"><label for="explain-url">URL</label><input id="explain-url" type="url" required value=${url} onInput=${(e: Event) => setUrl((e.target as HTMLInputElement).value)} /></div>`}
        ${
          kind === 'transfer' &&
          html`<div class="field">
              <label for="explain-dir">Direction</label
              ><select
                id="explain-dir"
                value=${direction}
                onChange=${(e: Event) => setDirection((e.target as HTMLSelectElement).value)}
              >
                <option>guest-to-host</option>
                <option>host-to-guest</option>
              </select>
            </div>
            <div class="field">
              <label for="explain-channel">Channel</label
              ><select
                id="explain-channel"
                value=${channel}
                onChange=${(e: Event) => setChannel((e.target as HTMLSelectElement).value)}
              >
                <option>clipboard</option>
                <option>file</option>
                <option>drag-drop</option>
                <option>print</option>
              </select>
            </div>`
        }
      </div>
      <button type="submit">Explain</button>
      ${failure && html`<p class="error" role="alert">${failure}</p>`}
      ${answer !== undefined && html`<${Answer} answer=${answer} />`}
    </form>
  `;
}

/** Assignments: who gets which workspace with which policy layers; explain a decision. */
export function AssignmentsPage() {
  const assignments = useAdmin<{ rows: Assignment[] }>('assignments');
  const policies = useAdmin<{ rows: { name: string }[] }>('policies');
  const remove = async (id: string) => {
    await admin('unassign', { id });
    assignments.reload();
  };
  return html`
    <h1>Assignments and policy</h1>
    ${assignments.error && html`<p class="error" role="alert">${assignments.error}</p>`}
    <table>
      <caption class="sr-only">
        Assignments
      </caption>
      <thead>
        <tr>
          <th scope="col">Workspace</th>
          <th scope="col">Channel / version</th>
          <th scope="col">Users</th>
          <th scope="col">Groups</th>
          <th scope="col">Policy layers</th>
          <th scope="col"><span class="sr-only">Actions</span></th>
        </tr>
      </thead>
      <tbody>
        ${(assignments.data?.rows ?? []).map(
          (a) =>
            html`<tr data-assignment=${a.id}>
              <td>${a.workspace}</td>
              <td>${[a.channel, a.version].filter(Boolean).join(' / ') || '—'}</td>
              <td>${a.users.join(', ')}</td>
              <td>${a.groups.join(', ')}</td>
              <td>${a.policyLayers.join(', ')}</td>
              <td>
                <button
                  type="button"
                  class="secondary"
                  aria-label=${`Remove assignment of ${a.workspace}`}
                  onClick=${() => void remove(a.id)}
                >
                  Remove
                </button>
              </td>
            </tr>`,
        )}
      </tbody>
    </table>
    <${AssignForm} layers=${(policies.data?.rows ?? []).map((r) => r.name)} onDone=${assignments.reload} />
    <${Explain} />
  `;
}
