import { parsePolicyLayer } from '@tandem/core/policy';
import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { parse as parseYaml, stringify } from 'yaml';
import { admin, messageOf } from '../api.ts';
import { useAdmin, when } from '../use-admin.ts';

interface Layer {
  name: string;
  document: unknown;
  updatedAt: string;
}
/** One problem, as `tandem validate` prints it: the line, the path inside the file, the message. */
interface Issue {
  line?: number;
  path: string;
  message: string;
}

const TEMPLATE = `apiVersion: tandem/v1
kind: PolicyLayer
metadata: { name: my-layer }
layer: user-policy
assignments:
  - groups: [Finance]
    policy:
      usage:
        offline: { maxDuration: P3D }
`;

/**
 * The same checks and messages as `tandem validate`: core's parsePolicyLayer (its zod schema and
 * its wording) on the text as typed.
 */
function check(text: string, name: string): { issues: Issue[]; summary: string } {
  try {
    parsePolicyLayer(text, { file: name || 'layer' });
    return { issues: [], summary: '' };
  } catch (err) {
    const details = (err as { details?: { issues?: Issue[] } }).details;
    const issues = details?.issues ?? [];
    return { issues, summary: issues.length ? '' : messageOf(err) };
  }
}

function Editor({ initial, onSaved }: { initial: Layer | undefined; onSaved: () => void }) {
  const [name, setName] = useState(initial?.name ?? '');
  const [text, setText] = useState(initial ? stringify(initial.document) : TEMPLATE);
  const [result, setResult] = useState(() => check(text, name));
  const [failure, setFailure] = useState('');
  const [note, setNote] = useState('');
  useEffect(() => {
    const t = setTimeout(() => setResult(check(text, name)), 120);
    return () => clearTimeout(t);
  }, [text, name]);
  const nameProblem =
    name.trim() === ''
      ? 'Give the layer a name (what assignments list it by).'
      : name.length > 128
        ? 'A layer name has at most 128 characters.'
        : '';
  const invalid = result.issues.length > 0 || result.summary !== '';
  const save = async (e: Event) => {
    e.preventDefault();
    setFailure('');
    setNote('');
    if (nameProblem || invalid) return;
    try {
      await admin('policy', { name, document: parseYaml(text) as unknown });
      setNote(`Saved policy layer ${name}.`);
      onSaved();
    } catch (err) {
      setFailure(messageOf(err));
    }
  };
  return html`
    <form class="card" onSubmit=${(e: Event) => void save(e)} aria-labelledby="edit-h" novalidate>
      <h2 id="edit-h">${initial ? `Edit ${initial.name}` : 'New policy layer'}</h2>
      <div class="field">
        <label for="policy-name">Layer name</label>
        <input
          id="policy-name"
          value=${name}
          aria-invalid=${nameProblem ? 'true' : 'false'}
          aria-describedby=${nameProblem ? 'policy-name-error' : undefined}
          onInput=${(e: Event) => setName((e.target as HTMLInputElement).value)}
        />
        ${nameProblem && html`<p id="policy-name-error" class="field-error">${nameProblem}</p>`}
      </div>
      <div class="field">
        <label for="policy-document"
          >Document (YAML or JSON, <code>kind: PolicyLayer</code>, as <code>tandem validate</code> reads it)</label
        >
        <textarea
          id="policy-document"
          rows="18"
          spellcheck="false"
          aria-invalid=${invalid ? 'true' : 'false'}
          aria-describedby=${invalid ? 'policy-document-errors' : 'policy-document-ok'}
          value=${text}
          onInput=${(e: Event) => setText((e.target as HTMLTextAreaElement).value)}
        ></textarea>
        ${
          invalid
            ? html`<div id="policy-document-errors" class="field-error" aria-live="polite">
                ${result.summary && html`<p>${result.summary}</p>`}
                <ul>
                  ${result.issues.map(
                    (i) =>
                      html`<li data-path=${i.path}>
                        ${i.line !== undefined ? `line ${i.line}: ` : ''}${i.path ? html`<code>${i.path}</code>: ` : ''}${i.message}
                      </li>`,
                  )}
                </ul>
              </div>`
            : html`<p id="policy-document-ok" class="ok" aria-live="polite">Valid policy layer.</p>`
        }
      </div>
      ${failure && html`<p class="error" role="alert">${failure}</p>`}
      ${note && html`<p class="ok" role="status">${note}</p>`}
      <button type="submit" disabled=${invalid || nameProblem !== ''}>Save layer</button>
    </form>
  `;
}

/** Policy layers: the list, and an editor that validates as you type. */
export function PolicyPage() {
  const { data, error, reload } = useAdmin<{ rows: Layer[] }>('policies');
  const [editing, setEditing] = useState<Layer | undefined>(undefined);
  const [key, setKey] = useState(0);
  return html`
    <h1>Policy layers</h1>
    ${error && html`<p class="error" role="alert">${error}</p>`}
    <table>
      <caption class="sr-only">
        Policy layers
      </caption>
      <thead>
        <tr>
          <th scope="col">Name</th>
          <th scope="col">Layer</th>
          <th scope="col">Updated</th>
          <th scope="col"><span class="sr-only">Actions</span></th>
        </tr>
      </thead>
      <tbody>
        ${(data?.rows ?? []).map(
          (l) =>
            html`<tr>
              <td>${l.name}</td>
              <td>${(l.document as { layer?: string } | null)?.layer ?? ''}</td>
              <td>${when(l.updatedAt)}</td>
              <td>
                <button
                  type="button"
                  class="secondary"
                  onClick=${() => (setEditing(l), setKey((k) => k + 1))}
                  aria-label=${`Edit ${l.name}`}
                >
                  Edit
                </button>
              </td>
            </tr>`,
        )}
      </tbody>
    </table>
    <p>
      <button type="button" class="secondary" onClick=${() => (setEditing(undefined), setKey((k) => k + 1))}>
        New layer
      </button>
    </p>
    <${Editor} key=${key} initial=${editing} onSaved=${reload} />
  `;
}
