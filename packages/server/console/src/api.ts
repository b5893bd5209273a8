// The console's only way to the server: the server's own API (the admin actions the CLI also
// calls), with the session cookie and the CSRF token the sign-in returned.

/** The signed-in administrator. */
export interface Session {
  readonly user: string;
  readonly displayName?: string;
  readonly csrfToken: string;
  readonly expiresAt: string;
}

/** A refused request: the server's code, reason and message. */
export class ApiFailure extends Error {
  override readonly name = 'ApiFailure';
  constructor(
    readonly status: number,
    readonly code: string,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

let csrf = '';
let onSignedOut: () => void = () => undefined;

/** Called when the server says the session is gone (expired, logged out elsewhere). */
export function whenSignedOut(f: () => void): void {
  onSignedOut = f;
}

async function reply<T>(res: Response): Promise<T> {
  const text = await res.text();
  let body: Record<string, unknown>;
  try {
    body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    body = { message: text };
  }
  if (!res.ok) {
    const failure = new ApiFailure(
      res.status,
      typeof body.code === 'string' ? body.code : 'HTTP',
      typeof body.reason === 'string' ? body.reason : '',
      typeof body.message === 'string' ? body.message : `The server answered ${res.status}.`,
    );
    throw failure;
  }
  return body as T;
}

/** The current session, or undefined when not signed in. */
export async function currentSession(): Promise<Session | undefined> {
  const res = await fetch('/v1/console/session', { credentials: 'same-origin' });
  if (res.status === 401) return undefined;
  const s = await reply<Session>(res);
  csrf = s.csrfToken;
  return s;
}

/** Signs in with the directory; refused unless the user is in the admin group. */
export async function signIn(user: string, password: string): Promise<Session> {
  const res = await fetch('/v1/console/session', {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user, password }),
  });
  const s = await reply<Session>(res);
  csrf = s.csrfToken;
  return s;
}

/** Ends the session on the server. */
export async function signOut(): Promise<void> {
  const res = await fetch('/v1/console/session', {
    method: 'DELETE',
    credentials: 'same-origin',
    headers: { 'x-csrf-token': csrf },
  });
  csrf = '';
  if (!res.ok && res.status !== 401) await reply(res);
}

/** One admin action: `POST /v1/admin/<action>`. */
export async function admin<T>(action: string, body: object = {}): Promise<T> {
  const res = await fetch(`/v1/admin/${action}`, {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'content-type': 'application/json', 'x-csrf-token': csrf },
    body: JSON.stringify(body),
  });
  if (res.status === 401) {
    csrf = '';
    onSignedOut();
  }
  return reply<T>(res);
}

/** A stored event as the server reports it. */
export interface StoredEvent {
  readonly device: string;
  readonly user: string | null;
  readonly receivedAt: string;
  readonly event: { id: string; type: string; at: string; workspace?: string; [k: string]: unknown };
}

/** An assignment as the server stores it. */
export interface Assignment {
  readonly id: string;
  readonly workspace: string;
  readonly channel?: string;
  readonly version?: string;
  readonly users: readonly string[];
  readonly groups: readonly string[];
  readonly policyLayers: readonly string[];
  readonly lease?: string;
  readonly updatedAt: string;
}

/** What the message of any failure is, for the page. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
