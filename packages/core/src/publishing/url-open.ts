import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { basename, delimiter, join } from 'node:path';
import { HostError, InvalidInputError } from '../errors.js';
import type { EventBus, EventContext } from '../events/bus.js';
import { toDecisionEvent } from '../policy/decision.js';
import type { UrlDecision } from '../policy/web-redirection.js';

/**
 * Web redirection at run time. `tandem open URL` is the host's http/https handler: the policy
 * decides, and the URL opens in the real host browser or goes to the guest agent. URLs the guest
 * agent forwards are decided the same way and opened on the host only when the policy says so.
 */

/** The environment variable set for the host browser Tandem starts: a URL handed back is a loop. */
export const OPENING_ENV = 'TANDEM_URL_OPENING';

/** Where `tandem open` sends a URL. */
export interface UrlOpenTargets {
  /** Opens the URL in the host's real browser. */
  openOnHost(url: string): Promise<void>;
  /** Sends the URL to the guest agent (`GuestConnection.openUrl`), starting the session if needed. */
  openInGuest(url: string): Promise<void>;
}

/** What happened to a URL. */
export interface UrlOpenResult {
  readonly decision: UrlDecision;
  readonly openedIn: 'host' | 'guest';
}

/**
 * Decides a URL opened on the host and opens it where the policy says; the decision is
 * published as `policy.decision` with its explanation, so `tandem events` shows why.
 *
 * @example
 * ```ts
 * await openHostUrl('http://erp.intranet.example/', engine.forSubject({}), {
 *   openOnHost: (u) => hostBrowser().open(u),
 *   openInGuest: (u) => guest.openUrl(u),
 * }, { events, context: { workspace: 'legacy-erp' } });
 * ```
 */
export async function openHostUrl(
  url: string,
  policy: { decideUrl(url: string, options: { from: 'host' | 'guest' }): UrlDecision },
  targets: UrlOpenTargets,
  options: { events?: EventBus; context?: EventContext } = {},
): Promise<UrlOpenResult> {
  const decision = policy.decideUrl(url, { from: 'host' });
  options.events?.publish('policy.decision', toDecisionEvent(decision), options.context ?? {});
  if (decision.target === 'guest') {
    await targets.openInGuest(decision.url);
    return { decision, openedIn: 'guest' };
  }
  await targets.openOnHost(decision.url);
  return { decision, openedIn: 'host' };
}

/**
 * The `onUrlToHost` callback for a GuestConnection: the connection has already decided (and
 * published `guest.url-to-host`); this opens a URL whose decision says host in the host browser,
 * and nothing else.
 *
 * @example
 * ```ts
 * new GuestConnection({ adapter, vm, policy, onUrlToHost: guestUrlOpener((u) => openInHostBrowser(u)) });
 * ```
 */
export function guestUrlOpener(
  openOnHost: (url: string) => Promise<void>,
  onError: (err: unknown, url: string) => void = () => undefined,
): (url: string, decision: UrlDecision) => void {
  return (url, decision) => {
    if (decision.target !== 'host') return;
    openOnHost(url).catch((err: unknown) => onError(err, url));
  };
}

/** A program that opens URLs on the host. */
export interface HostBrowser {
  /** The browser's argv before the URL. */
  readonly argv: readonly string[];
  /** Where it was found: `$TANDEM_HOST_BROWSER`, `$BROWSER`, or the search list. */
  readonly source: string;
}

const CANDIDATES = [
  'firefox-esr',
  'firefox',
  'chromium',
  'chromium-browser',
  'google-chrome',
  'microsoft-edge',
  'epiphany-browser',
  'konqueror',
];

/** True for a command that would hand the URL back to Tandem (or to the desktop's default handler, which may be Tandem). */
function loops(program: string): boolean {
  const name = basename(program).toLowerCase();
  return (
    /^tandem(\.exe|\.cmd|\.js|\.mjs)?$/.test(name) ||
    ['xdg-open', 'gio', 'kde-open', 'gnome-open', 'sensible-browser', 'x-www-browser', 'www-browser'].includes(name)
  );
}

/**
 * Finds the real host browser: `$TANDEM_HOST_BROWSER`, then `$BROWSER`, then a list of known
 * browsers on `PATH`. Never Tandem itself and never the desktop's default URL handler
 * (`xdg-open` and friends), which is Tandem once it is installed as that handler: no loops.
 *
 * @example
 * ```ts
 * findHostBrowser({ TANDEM_HOST_BROWSER: '/usr/bin/firefox-esr' }).argv; // ['/usr/bin/firefox-esr']
 * ```
 */
export function findHostBrowser(env: NodeJS.ProcessEnv = process.env): HostBrowser {
  const tried: string[] = [];
  for (const key of ['TANDEM_HOST_BROWSER', 'BROWSER']) {
    const value = env[key];
    if (!value) continue;
    for (const candidate of value.split(':')) {
      const argv = candidate.trim().split(/\s+/).filter(Boolean);
      const program = argv[0];
      if (!program) continue;
      if (loops(program)) {
        tried.push(`${key}=${candidate}: would hand the URL back to the URL handler`);
        continue;
      }
      return { argv: argv.filter((a) => a !== '%s'), source: `$${key}` };
    }
  }
  for (const name of CANDIDATES) {
    for (const dir of (env['PATH'] ?? '').split(delimiter)) {
      if (dir && existsSync(join(dir, name))) return { argv: [join(dir, name)], source: 'PATH' };
    }
  }
  throw new HostError(
    `No host browser found (${[...tried, `none of ${CANDIDATES.join(', ')} on PATH`].join('; ')}). Set TANDEM_HOST_BROWSER to the browser's program.`,
    { details: { tried } },
  );
}

/** Refuses a URL handed back by the browser Tandem itself started (a loop).
 *
 * @example
 * ```ts
 * assertNotLooping(url); // throws when the browser Tandem started handed the URL back
 * ```
 */
export function assertNotLooping(url: string, env: NodeJS.ProcessEnv = process.env): void {
  if (env[OPENING_ENV]) {
    throw new InvalidInputError(
      `${url} came back to tandem open from the browser it started (${OPENING_ENV} is set): the host browser is configured to hand URLs to Tandem. Set TANDEM_HOST_BROWSER to the real browser.`,
      { details: { url } },
    );
  }
}

/**
 * Starts the host browser on `url`, detached, with {@link OPENING_ENV} set so that a browser
 * that hands the URL back to `tandem open` is caught as a loop. Resolves once it started.
 *
 * @example
 * ```ts
 * await openInHostBrowser('https://example.org/');
 * ```
 */
export function openInHostBrowser(url: string, browser: HostBrowser = findHostBrowser()): Promise<void> {
  const [program, ...args] = browser.argv;
  return new Promise((resolve, reject) => {
    const child = spawn(program!, [...args, url], {
      detached: true,
      stdio: 'ignore',
      env: { ...process.env, [OPENING_ENV]: '1' },
    });
    child.once('error', (err) =>
      reject(
        new HostError(`Cannot start the host browser ${program}: ${err.message}.`, {
          cause: err,
          details: { program },
        }),
      ),
    );
    child.once('spawn', () => {
      child.unref();
      resolve();
    });
  });
}
