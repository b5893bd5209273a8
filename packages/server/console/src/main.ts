// The console's shell: sign-in, the navigation and a page per route (`#/endpoints/<id>`...).
import { html } from 'htm/preact';
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { currentSession, messageOf, signOut, whenSignedOut, type Session } from './api.ts';
import { closeStream, openStream } from './live.ts';
import { AssignmentsPage } from './pages/assignments.ts';
import { AuditPage } from './pages/audit.ts';
import { EndpointPage } from './pages/endpoint.ts';
import { EndpointsPage } from './pages/endpoints.ts';
import { EventsPage } from './pages/events.ts';
import { OverviewPage } from './pages/overview.ts';
import { PolicyPage } from './pages/policy.ts';
import { SignInPage } from './pages/signin.ts';
import { WorkspacesPage } from './pages/workspaces.ts';

const NAV: readonly (readonly [string, string])[] = [
  ['overview', 'Overview'],
  ['workspaces', 'Workspaces'],
  ['assignments', 'Assignments'],
  ['policy', 'Policy'],
  ['endpoints', 'Endpoints'],
  ['events', 'Events'],
  ['audit', 'Audit'],
];

function route(): string[] {
  const parts = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  return parts.length ? parts : ['overview'];
}

function useRoute(): string[] {
  const [r, setR] = useState(route());
  useEffect(() => {
    const f = () => setR(route());
    addEventListener('hashchange', f);
    return () => removeEventListener('hashchange', f);
  }, []);
  return r;
}

function Page({ parts }: { parts: string[] }) {
  const [name, arg] = parts;
  switch (name) {
    case 'overview':
      return html`<${OverviewPage} />`;
    case 'workspaces':
      return html`<${WorkspacesPage} />`;
    case 'assignments':
      return html`<${AssignmentsPage} />`;
    case 'policy':
      return html`<${PolicyPage} />`;
    case 'endpoints':
      return arg ? html`<${EndpointPage} id=${arg} />` : html`<${EndpointsPage} />`;
    case 'events':
      return html`<${EventsPage} />`;
    case 'audit':
      return html`<${AuditPage} />`;
    default:
      return html`<h1>Not found</h1>
        <p>There is no page "${name}". <a href="#/overview">Go to the overview</a>.</p>`;
  }
}

function App() {
  const [session, setSession] = useState<Session | undefined | null>(null);
  const [error, setError] = useState('');
  const parts = useRoute();
  useEffect(() => {
    whenSignedOut(() => {
      closeStream();
      setSession(undefined);
    });
    currentSession().then(setSession, (e: unknown) => {
      setError(messageOf(e));
      setSession(undefined);
    });
  }, []);
  useEffect(() => {
    if (session) openStream();
  }, [session]);
  useEffect(() => {
    const title = NAV.find(([k]) => k === parts[0])?.[1];
    document.title = session ? `${title ?? 'Console'} · Tandem` : 'Sign in · Tandem';
  }, [parts[0], session]);

  if (session === null) return html`<main id="main" class="loading"><p>Loading…</p></main>`;
  if (!session) return html`<${SignInPage} error=${error} onSignedIn=${(s: Session) => setSession(s)} />`;

  const logout = async () => {
    try {
      await signOut();
    } finally {
      closeStream();
      setSession(undefined);
    }
  };
  return html`
    <a class="skip" href="#main" onClick=${(e: Event) => (e.preventDefault(), document.getElementById('main')?.focus())}
      >Skip to content</a
    >
    <header class="top">
      <span class="brand">Tandem console</span>
      <nav aria-label="Main">
        <ul>
          ${NAV.map(
            ([k, label]) =>
              html`<li>
                <a href=${`#/${k}`} aria-current=${parts[0] === k ? 'page' : undefined}>${label}</a>
              </li>`,
          )}
        </ul>
      </nav>
      <span class="who">
        <span>Signed in as <strong>${session.displayName ?? session.user}</strong></span>
        <button type="button" class="secondary" onClick=${() => void logout()}>Log out</button>
      </span>
    </header>
    <main id="main" tabindex="-1"><${Page} key=${parts.join('/')} parts=${parts} /></main>
  `;
}

const root = document.getElementById('app');
if (root) render(html`<${App} />`, root);
