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

interface RuleRef {
  label: string;
  path: string;
  text: string;
  source: string;
  appliesTo: string;
}
interface Decided {
  workspace: string;
  assignment: string;
  decision: { kind: string; outcome: string; layer: string; rule?: RuleRef; reason: string };
  lines: string[];
}
interface Explained {
  user: string;
  groups: string[];
  device?: { id: string };
  workspaces: { workspace: string; version?: string; channel?: string }[];
  notGiven: { workspace: string; assignment: string; reason: string }[];
  decisions?: Decided[];
}

/** One decision: its outcome, the rule and the layer that decide, then the lines `tandem policy explain` prints. */
function Decision({ d }: { d: Decided }) {
  const rule = d.decision.rule;
  return html`<article data-decision=${d.workspace} aria-labelledby=${`decision-${d.assignment}`}>
    <h3 id=${`decision-${d.assignment}`}>${d.workspace} (assignment ${d.assignment})</h3>
    <dl class="facts">
      <dt>Decision</dt>
      <dd data-field="outcome">${d.decision.outcome}</dd>
      <dt>Rule</dt>
      <dd data-field="rule">${rule ? `${rule.label}: ${rule.text}` : 'none (a default decided)'}</dd>
      <dt>Layer</dt>
      <dd data-field="layer">${d.decision.layer}${rule ? ` (${rule.source}), for ${rule.appliesTo}` : ''}</dd>
      <dt>Why</dt>
      <dd>${d.decision.reason}</dd>
    </dl>
    <pre tabindex="0" aria-label=${`tandem policy explain output for ${d.workspace}`}>${d.lines.join('\n')}</pre>
  </article>`;
}

/** The server's answer: each decision as `tandem policy explain` prints it, then what is given. */
function Answer({ answer }: { answer: Explained }) {
  const a = answer;
  const gets = a.workspaces.map((w) => `${w.workspace} ${w.version ?? w.channel ?? ''}`.trim()).join(', ');
  const summary = `${a.user}${a.device ? ` on ${a.device.id}` : ''} (groups: ${a.groups.join(', ') || 'none'}) gets: ${gets || 'nothing'}.`;
  return html`
    <section class="answer" aria-label="Explanation">
      ${(a.decisions ?? []).map((d) => html`<${Decision} d=${d} />`)}
      ${a.decisions?.length === 0 && html`<p>No assignment covers ${a.user}: nothing decides.</p>`}
      <p>${summary}</p>
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

/** The channels core's transfer rules know (`TransferChannelSchema`; `x-name` ones are the site's own). */
const TRANSFER_CHANNELS = ['clipboard', 'file', 'print', 'usb', 'audio', 'smartcard'] as const;

interface UserDevice {
  device: string;
  user: string;
  hostName: string;
}

/** The chosen user's devices (`endpoint-search`), to pick one from. */
function useDevicesOf(user: string): UserDevice[] {
  const [devices, setDevices] = useState<UserDevice[]>([]);
  useEffect(() => {
    const name = user.trim();
    if (!name) {
      setDevices([]);
      return;
    }
    let live = true;
    const t = setTimeout(() => {
      admin<{ rows: UserDevice[] }>('endpoint-search', { search: name, sort: 'hostName', limit: 200 }).then(
        (r) => live && setDevices(r.rows.filter((d) => d.user === name)),
        () => live && setDevices([]),
      );
    }, 200);
    return () => {
      live = false;
      clearTimeout(t);
    };
  }, [user]);
  return devices;
}

function Explain() {
  const [user, setUser] = useState('');
  const [device, setDevice] = useState('');
  const [workspace, setWorkspace] = useState('');
  const [kind, setKind] = useState<'none' | 'url' | 'transfer'>('none');
  const [url, setUrl] = useState('');
  const [from, setFrom] = useState<'host' | 'guest'>('host');
  const [direction, setDirection] = useState('guest-to-host');
  const [channel, setChannel] = useState('clipboard');
  const [answer, setAnswer] = useState<Explained | undefined>(undefined);
  const [failure, setFailure] = useState('');
  const devices = useDevicesOf(user);
  const submit = async (e: Event) => {
    e.preventDefault();
    setFailure('');
    try {
      const question =
        kind === 'url' ? { url, from } : kind === 'transfer' ? { transfer: { direction, channel } } : undefined;
      setAnswer(
        await admin<Explained>('explain', {
          user,
          ...(device ? { device } : {}),
          ...(workspace && question ? { workspace } : {}),
          ...(question ? { question } : {}),
        }),
      );
    } catch (err) {
      setAnswer(undefined);
      setFailure(messageOf(err));
    }
  };
  const select = (id: string, label: string, value: string, set: (v: string) => void, options: unknown) =>
    html`<div class="field">
      <label for=${id}>${label}</label
      ><select id=${id} value=${value} onChange=${(e: Event) => set((e.target as HTMLSelectElement).value)}>
        ${options}
      </select>
    </div>`;
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
            onInput=${(e: Event) => (setUser((e.target as HTMLInputElement).value), setDevice(''))}
          />
        </div>
        ${select(
          'explain-device',
          'Device',
          device,
          setDevice,
          html`<option value="">Any (the user's groups decide)</option>
            ${devices.map((d) => html`<option value=${d.device}>${d.hostName} (${d.device})</option>`)}`,
        )}
        ${select(
          'explain-kind',
          'Question',
          kind,
          (v) => setKind(v as 'none'),
          html`<option value="none">What do they get?</option>
            <option value="url">Where does a URL open?</option>
            <option value="transfer">Is a transfer allowed?</option>`,
        )}
        ${
          kind !== 'none' &&
          html`<div class="field">
            <label for="explain-workspace">Workspace (optional)</label
            ><input
              id="explain-workspace"
              value=${workspace}
              onInput=${(e: Event) => setWorkspace((e.target as HTMLInputElement).value)}
            />
          </div>`
        }
        ${
          kind === 'url' &&
          html`<div class="field">
              <label for="explain-url">URL</label
              ><input
                id="explain-url"
                type="url"
                required
                value=${url}
                onInput=${(e: Event) => setUrl((e.target as HTMLInputElement).value)}
              />
            </div>
            ${select(
              'explain-from',
              'Opened on',
              from,
              (v) => setFrom(v as 'host'),
              html`<option value="host">host</option>
                <option value="guest">guest</option>`,
            )}`
        }
        ${
          kind === 'transfer' &&
          html`${select(
            'explain-dir',
            'Direction',
            direction,
            setDirection,
            html`<option>guest-to-host</option>
              <option>host-to-guest</option>`,
          )}
          ${select(
            'explain-channel',
            'Channel',
            channel,
            setChannel,
            html`${TRANSFER_CHANNELS.map((c) => html`<option>${c}</option>`)}`,
          )}`
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
