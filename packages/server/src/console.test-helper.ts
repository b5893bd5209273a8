// What the console's tests share: a server directory with an admin and a non-admin user, served
// over plain HTTP with a small built console, and raw HTTP calls (cookies, SSE, odd paths).
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initServerDirectory, openDeployment, type Deployment } from './deployment.js';

export const ADMIN = { user: 'alice', password: 'alice-console-pw-1' };
export const OTHER_ADMIN = { user: 'carol', password: 'carol-console-pw-1' };
export const NOT_ADMIN = { user: 'bob', password: 'bob-console-pw-1' };

/** A reply read whole. */
export interface RawReply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly text: string;
  json<T = Record<string, unknown>>(): T;
}

/** One HTTP request with an exact path (no URL normalisation), from `localAddress` if given. */
export function raw(
  base: string,
  method: string,
  path: string,
  options: { headers?: Record<string, string>; body?: unknown; localAddress?: string } = {},
): Promise<RawReply> {
  const url = new URL(base);
  const body = options.body === undefined ? undefined : JSON.stringify(options.body);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        method,
        path,
        ...(options.localAddress ? { localAddress: options.localAddress } : {}),
        headers: {
          ...(body !== undefined
            ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }
            : {}),
          ...options.headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text,
            json: <T>() => JSON.parse(text) as T,
          });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** The cookie pair (`tandem_console=...`) of a Set-Cookie reply. */
export function cookieOf(reply: RawReply): string {
  const set = reply.headers['set-cookie'];
  const first = Array.isArray(set) ? set[0] : set;
  if (!first) throw new Error(`no set-cookie in the reply (${reply.status} ${reply.text})`);
  return first.split(';')[0]!;
}

/** A signed-in console session: its cookie and CSRF token, and calls made with them. */
export interface ConsoleLogin {
  readonly cookie: string;
  readonly csrf: string;
  admin(action: string, body?: unknown): Promise<RawReply>;
}

export async function signIn(base: string, who: { user: string; password: string }): Promise<ConsoleLogin> {
  const r = await raw(base, 'POST', '/v1/console/session', { body: who });
  if (r.status !== 200) throw new Error(`sign-in of ${who.user} failed: ${r.status} ${r.text}`);
  const cookie = cookieOf(r);
  const csrf = r.json<{ csrfToken: string }>().csrfToken;
  return {
    cookie,
    csrf,
    admin: (action, body = {}) =>
      raw(base, 'POST', `/v1/admin/${action}`, { headers: { cookie, 'x-csrf-token': csrf }, body }),
  };
}

/** A built console stand-in: index.html and one hashed asset. */
export async function fakeConsole(dir: string): Promise<string> {
  const dist = join(dir, 'console-dist');
  await mkdir(join(dist, 'assets'), { recursive: true });
  await writeFile(
    join(dist, 'index.html'),
    '<!doctype html><title>Tandem</title><script type="module" src="/console/assets/app-1a2b3c.js"></script>\n',
  );
  await writeFile(join(dist, 'assets', 'app-1a2b3c.js'), 'console.log("tandem console");\n');
  await writeFile(join(dir, 'secret.txt'), 'TOP-SECRET-FILE\n');
  return dist;
}

/** A server directory with users alice and carol (admins) and bob (not), and a way to serve it again. */
export interface ConsoleServer {
  readonly dir: string;
  readonly deployment: Deployment;
  readonly url: string;
  /** Another server process's view: a second deployment on the same store, served. */
  second(): Promise<{ deployment: Deployment; url: string }>;
  close(): Promise<void>;
}

export async function startConsoleServer(
  options: { database?: string; databaseSchema?: string } = {},
): Promise<ConsoleServer> {
  const dir = await mkdtemp(join(tmpdir(), 'tandem-console-'));
  const serverDir = join(dir, 'server');
  await initServerDirectory(serverDir, {
    tls: 'none',
    listen: { host: '127.0.0.1', port: 0 },
    ...(options.database ? { database: options.database } : {}),
    ...(options.databaseSchema ? { databaseSchema: options.databaseSchema } : {}),
  });
  const consoleDir = await fakeConsole(dir);
  const deployment = await openDeployment(serverDir);
  for (const u of [ADMIN, OTHER_ADMIN, NOT_ADMIN])
    await deployment.admin.addUser('cli:test', { name: u.user, password: u.password });
  // carol is an admin through a nested group.
  await deployment.admin.addMembers('cli:test', 'console-team', [OTHER_ADMIN.user]);
  await deployment.admin.addMembers('cli:test', 'admins', [ADMIN.user, 'group:console-team']);
  const { url } = await deployment.serve({ port: 0 }, { consoleDir });
  const others: Deployment[] = [];
  return {
    dir,
    deployment,
    url,
    async second() {
      const d = await openDeployment(serverDir);
      others.push(d);
      const served = await d.serve({ port: 0 }, { consoleDir });
      return { deployment: d, url: served.url };
    },
    async close() {
      for (const d of others) await d.close();
      await deployment.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** An open event stream: its frames so far, and a wait for one. */
export interface OpenStream {
  readonly frames: { event: string; data: string }[];
  waitFor(
    test: (f: { event: string; data: string }) => boolean,
    what: string,
    timeoutMs?: number,
  ): Promise<{ event: string; data: string }>;
  close(): void;
}

export function openStream(base: string, headers: Record<string, string>): Promise<OpenStream> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path: '/v1/admin/stream', headers }, (res) => {
      if (res.statusCode !== 200) {
        reject(new Error(`stream refused: ${res.statusCode}`));
        res.resume();
        return;
      }
      const frames: { event: string; data: string }[] = [];
      let buffer = '';
      const waiters = new Set<() => void>();
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        let i: number;
        while ((i = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, i);
          buffer = buffer.slice(i + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event !== undefined && data !== undefined) frames.push({ event, data });
        }
        for (const w of [...waiters]) w();
      });
      resolve({
        frames,
        waitFor(test, what, timeoutMs = 60_000) {
          return new Promise((ok, fail) => {
            const check = (): void => {
              const f = frames.find(test);
              if (f) {
                waiters.delete(check);
                clearTimeout(timer);
                ok(f);
              }
            };
            const timer = setTimeout(() => {
              waiters.delete(check);
              fail(new Error(`Timed out waiting for ${what}; frames: ${JSON.stringify(frames)}`));
            }, timeoutMs);
            waiters.add(check);
            check();
          });
        },
        close: () => req.destroy(),
      });
    });
    req.on('error', reject);
    req.end();
  });
}
