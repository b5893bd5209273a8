import { html } from 'htm/preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { TabulatorFull as Tabulator, type CellComponent, type ColumnDefinition } from 'tabulator-tables';
import { admin, messageOf } from '../api.ts';
import { useRevision } from '../live.ts';
import { when } from '../use-admin.ts';

interface Row {
  device: string;
  user: string;
  hostName: string;
  enrolledAt: string;
  lastCheckInAt: string | null;
  revoked: boolean;
  state: string;
  workspaces: { workspace: string; version?: string; state?: string }[];
}
interface Filter {
  search: string;
  state: string;
  workspace: string;
  version: string;
  checkedInAfter: string;
}
const EMPTY: Filter = { search: '', state: '', workspace: '', version: '', checkedInAfter: '' };

function deviceLink(cell: CellComponent): HTMLElement {
  const id = String(cell.getValue());
  const a = document.createElement('a');
  a.href = `#/endpoints/${encodeURIComponent(id)}`;
  a.textContent = id.length > 28 ? `${id.slice(0, 27)}…` : id;
  a.title = id;
  return a;
}

const COLUMNS: ColumnDefinition[] = [
  { title: 'Device', field: 'device', formatter: deviceLink, minWidth: 220 },
  { title: 'User', field: 'user' },
  { title: 'Host', field: 'hostName' },
  { title: 'State', field: 'state', headerSort: false, width: 100 },
  {
    title: 'Workspaces',
    field: 'workspaces',
    headerSort: false,
    formatter: (c: CellComponent) =>
      (c.getValue() as Row['workspaces']).map((w) => `${w.workspace} ${w.version ?? ''}`.trim()).join(', '),
  },
  {
    title: 'Last check-in',
    field: 'lastCheckInAt',
    formatter: (c: CellComponent) => when(c.getValue() as string | null),
  },
  { title: 'Enrolled', field: 'enrolledAt', formatter: (c: CellComponent) => when(c.getValue() as string) },
];

/**
 * Every endpoint, paged, sorted and filtered by the server (`endpoint-search`): the page holds
 * one page of rows, and Tabulator renders only those in view.
 */
export function EndpointsPage() {
  const host = useRef<HTMLDivElement>(null);
  const pager = useRef<HTMLDivElement>(null);
  const counter = useRef<HTMLSpanElement>(null);
  const table = useRef<Tabulator | undefined>(undefined);
  const filter = useRef<Filter>(EMPTY);
  const [form, setForm] = useState<Filter>(EMPTY);
  const [total, setTotal] = useState<number | undefined>(undefined);
  const [failure, setFailure] = useState('');
  const revision = useRevision();

  useEffect(() => {
    if (!host.current || !pager.current || !counter.current) return;
    const t = new Tabulator(host.current, {
      height: '65vh',
      layout: 'fitColumns',
      renderVertical: 'virtual',
      placeholder: 'No endpoint matches.',
      columns: COLUMNS,
      pagination: true,
      paginationMode: 'remote',
      paginationSize: 100,
      paginationSizeSelector: [50, 100, 200, 500],
      paginationCounter: 'rows',
      // Outside the grid: a grid holds rows only (axe's aria-required-children).
      paginationElement: pager.current,
      paginationCounterElement: counter.current,
      sortMode: 'remote',
      initialSort: [{ column: 'lastCheckInAt', dir: 'desc' }],
      ajaxURL: 'endpoint-search',
      ajaxRequestFunc: async (_url: string, _config: unknown, params: Record<string, unknown>) => {
        const page = Number(params.page ?? 1);
        const size = Number(params.size ?? 100);
        const sort = (params.sort as { field: string; dir: 'asc' | 'desc' }[] | undefined)?.[0];
        const f = filter.current;
        try {
          const r = await admin<{ total: number; rows: Row[] }>('endpoint-search', {
            ...(f.search ? { search: f.search } : {}),
            ...(f.state ? { state: f.state } : {}),
            ...(f.workspace ? { workspace: f.workspace } : {}),
            ...(f.version ? { version: f.version } : {}),
            ...(f.checkedInAfter ? { checkedInAfter: new Date(f.checkedInAfter).toISOString() } : {}),
            ...(sort ? { sort: sort.field, order: sort.dir } : {}),
            limit: size,
            offset: (page - 1) * size,
          });
          setTotal(r.total);
          setFailure('');
          return { last_page: Math.max(1, Math.ceil(r.total / size)), last_row: r.total, data: r.rows };
        } catch (err) {
          setFailure(messageOf(err));
          return { last_page: 1, last_row: 0, data: [] };
        }
      },
    });
    // The scrolling holder is focusable (keyboard scrolling): make it the grid's row group and
    // its inner table presentational, so the grid owns only row groups (axe's aria-required-children).
    t.on('tableBuilt', () => {
      const holder = host.current?.querySelector('.tabulator-tableholder');
      holder?.setAttribute('role', 'rowgroup');
      holder?.querySelector('.tabulator-table')?.setAttribute('role', 'none');
    });
    table.current = t;
    return () => {
      t.destroy();
      table.current = undefined;
    };
  }, []);

  useEffect(() => {
    const t = table.current;
    if (t && revision > 0) void t.setPage(t.getPage() || 1);
  }, [revision]);

  const apply = (e: Event) => {
    e.preventDefault();
    filter.current = form;
    void table.current?.setPage(1);
  };
  const field = (key: keyof Filter, label: string, type = 'text') =>
    html`<div class="field">
      <label for=${`ep-${key}`}>${label}</label
      ><input
        id=${`ep-${key}`}
        type=${type}
        value=${form[key]}
        onInput=${(e: Event) => setForm({ ...form, [key]: (e.target as HTMLInputElement).value })}
      />
    </div>`;
  return html`
    <h1>Endpoints</h1>
    <form class="filters" onSubmit=${apply} aria-label="Filter endpoints">
      ${field('search', 'Search (device, user, host)', 'search')}
      <div class="field">
        <label for="ep-state">State</label>
        <select
          id="ep-state"
          value=${form.state}
          onChange=${(e: Event) => setForm({ ...form, state: (e.target as HTMLSelectElement).value })}
        >
          <option value="">Any</option>
          <option value="online">Online</option>
          <option value="offline">Offline</option>
          <option value="never">Never checked in</option>
          <option value="revoked">Revoked</option>
        </select>
      </div>
      ${field('workspace', 'Workspace')} ${field('version', 'Version')}
      ${field('checkedInAfter', 'Checked in after', 'datetime-local')}
      <button type="submit">Apply</button>
    </form>
    <p role="status" class="hint">${total === undefined ? 'Loading…' : `${total} endpoint(s) match.`}</p>
    ${failure && html`<p class="error" role="alert">${failure}</p>`}
    <div ref=${host} class="endpoints-table" aria-label="Endpoints"></div>
    <div class="pager"><span ref=${counter}></span><span ref=${pager}></span></div>
  `;
}
