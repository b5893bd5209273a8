import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { readFile } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { z } from 'zod';
import { InvalidInputError, NotFoundError, systemClock, type Clock } from '@tandem/core';
import { ensurePrivateDir, readPrivateFile, writePrivateFile } from '@tandem/core/crypto';
import { BuiltinDirectory, LdapDirectory, SignInThrottle } from '@tandem/core/identity';
import { AdminApi } from './admin-http.js';
import { AdminService } from './admin.js';
import { ConsoleSessions, DEFAULT_ADMIN_GROUP } from './console-session.js';
import type { ServerDirectory } from './directory-port.js';
import { createManagementServer, type ManagementHttpServer } from './http.js';
import { ServerSecrets } from './secrets.js';
import { ManagementService } from './service.js';
import { SqliteStore } from './store/sqlite-store.js';
import type { ServerStore } from './store/types.js';
import { makeSelfSignedCertificate, readTlsFiles } from './tls.js';

/** Where the built console is (packages/server/console/dist), served by default when it exists. */
export const DEFAULT_CONSOLE_DIR = fileURLToPath(new URL('../console/dist', import.meta.url));

/** The server directory's files. */
export const SERVER_CONFIG_FILE = 'server.json';
export const ADMIN_TOKEN_FILE = 'admin-token';

const LdapConfigSchema = z.strictObject({
  url: z.string().regex(/^ldaps?:\/\//),
  flavor: z.enum(['active-directory', 'openldap']),
  bindDn: z.string().min(1),
  /** A file holding the service account's password (0600), relative to the server directory. */
  bindPasswordFile: z.string().min(1),
  baseDn: z.string().min(1),
  caFile: z.string().optional(),
});

/** `server.json`: what `tandem server init` chose. */
export const ServerConfigSchema = z.strictObject({
  format: z.literal('tandem.server-config/v1'),
  /** `sqlite:FILE` (relative to the server directory) or a `postgres://` URL. */
  database: z.string().regex(/^(sqlite:.+|postgres(ql)?:\/\/.+)$/),
  /** PostgreSQL: the schema the tables live in; default `public`. */
  databaseSchema: z
    .string()
    .regex(/^[a-z_][a-z0-9_]{0,62}$/)
    .optional(),
  ldap: LdapConfigSchema.optional(),
  listen: z.strictObject({ host: z.string(), port: z.number().int().min(0).max(65535) }),
  /** PEM files, relative to the server directory; null: plain HTTP behind a TLS-terminating proxy. */
  tls: z.strictObject({ key: z.string(), cert: z.string() }).nullable(),
  /**
   * The group (name or DN; nested membership counts) whose members may sign in to the console.
   * Default with the built-in directory: `admins` (made empty at first start); with LDAP none,
   * so console sign-in is off until one is named.
   */
  adminGroup: z.string().min(1).max(1024).optional(),
});
export type ServerConfig = z.infer<typeof ServerConfigSchema>;

/** What `tandem server init` takes. */
export interface InitServerOptions {
  readonly database?: string | undefined;
  readonly databaseSchema?: string | undefined;
  readonly ldap?: z.infer<typeof LdapConfigSchema> | undefined;
  readonly listen?: { host: string; port: number } | undefined;
  /** Host names and addresses of the self-signed certificate; default localhost and 127.0.0.1. */
  readonly hostNames?: readonly string[] | undefined;
  /** Your own PEM key and certificate instead of a self-signed one, or `none` for plain HTTP. */
  readonly tls?: { key: string; cert: string } | 'none' | undefined;
  /** The console's admin group (see {@link ServerConfigSchema}). */
  readonly adminGroup?: string | undefined;
}

/**
 * Makes a server directory: `server.json`, the authority and master keys (`keys/`, 0600), a
 * self-signed certificate (`tls/`) unless given one, and the admin API's token. Embedded
 * defaults: SQLite in `server.db` and the built-in directory.
 *
 * @example
 * ```ts
 * const { config, adminToken } = await initServerDirectory('/var/lib/tandem-server', { hostNames: ['tandem.corp.example'] });
 * ```
 */
export async function initServerDirectory(
  dir: string,
  options: InitServerOptions = {},
): Promise<{ config: ServerConfig; adminToken: string; created: boolean }> {
  await ensurePrivateDir(dir);
  const existing = await readPrivateFile(join(dir, SERVER_CONFIG_FILE));
  if (existing) {
    const config = parseConfig(existing.toString('utf8'), dir);
    return { config, adminToken: await readAdminToken(dir), created: false };
  }
  let tls: ServerConfig['tls'];
  if (options.tls === 'none') tls = null;
  else if (options.tls) tls = options.tls;
  else {
    await makeSelfSignedCertificate(join(dir, 'tls'), options.hostNames ?? ['localhost', '127.0.0.1']);
    tls = { key: 'tls/server.key', cert: 'tls/server.crt' };
  }
  const config: ServerConfig = {
    format: 'tandem.server-config/v1',
    database: options.database ?? 'sqlite:server.db',
    ...(options.databaseSchema !== undefined ? { databaseSchema: options.databaseSchema } : {}),
    ...(options.ldap ? { ldap: options.ldap } : {}),
    listen: options.listen ?? { host: '127.0.0.1', port: 8443 },
    tls,
    ...(options.adminGroup !== undefined ? { adminGroup: options.adminGroup } : {}),
  };
  ServerConfigSchema.parse(config);
  await ServerSecrets.open(join(dir, 'keys'));
  const adminToken = randomBytes(24).toString('base64url');
  await writePrivateFile(join(dir, ADMIN_TOKEN_FILE), adminToken + '\n');
  await writePrivateFile(join(dir, SERVER_CONFIG_FILE), JSON.stringify(config, null, 2) + '\n');
  return { config, adminToken, created: true };
}

function parseConfig(text: string, dir: string): ServerConfig {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new InvalidInputError(`${join(dir, SERVER_CONFIG_FILE)} is not valid JSON.`);
  }
  const parsed = ServerConfigSchema.safeParse(data);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new InvalidInputError(
      `${join(dir, SERVER_CONFIG_FILE)}: ${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}`,
    );
  }
  return parsed.data;
}

/** The admin API's token of a server directory. */
export async function readAdminToken(dir: string): Promise<string> {
  const raw = await readPrivateFile(join(dir, ADMIN_TOKEN_FILE));
  if (!raw) throw new NotFoundError(`${join(dir, ADMIN_TOKEN_FILE)} is missing; run tandem server init.`);
  return raw.toString('utf8').trim();
}

/** One server process's parts over a server directory. Close it when done. */
export interface Deployment {
  readonly dir: string;
  readonly config: ServerConfig;
  readonly store: ServerStore;
  readonly directory: ServerDirectory;
  readonly secrets: ServerSecrets;
  readonly service: ManagementService;
  readonly admin: AdminService;
  readonly adminApi: AdminApi;
  /** The console's sessions; undefined when no admin group is configured (LDAP without one). */
  readonly consoleSessions: ConsoleSessions | undefined;
  /**
   * Starts the HTTP(S) server; `listen` overrides server.json's. The console is served from
   * `consoleDir` (default {@link DEFAULT_CONSOLE_DIR} when it exists; `false`: not served).
   */
  serve(
    listen?: { host?: string; port?: number },
    options?: { consoleDir?: string | false },
  ): Promise<{ url: string; http: ManagementHttpServer; console: boolean }>;
  close(): Promise<void>;
}

const resolveIn = (dir: string, p: string): string => (isAbsolute(p) ? p : join(dir, p));

/**
 * Opens a server directory (after `initServerDirectory`): the store (`migrate`d), the
 * directory (built-in over the store, or LDAP), the sign-in throttle over the store (shared by
 * every process), the secrets, the API and the admin service.
 *
 * @example
 * ```ts
 * const deployment = await openDeployment('/var/lib/tandem-server');
 * const { url } = await deployment.serve();
 * ```
 */
export async function openDeployment(dir: string, options: { clock?: Clock } = {}): Promise<Deployment> {
  const raw = await readPrivateFile(join(dir, SERVER_CONFIG_FILE));
  if (!raw) throw new NotFoundError(`${dir} is not a server directory; run tandem server init first.`);
  const config = parseConfig(raw.toString('utf8'), dir);
  const clock = options.clock ?? systemClock;
  let store: ServerStore;
  if (config.database.startsWith('sqlite:'))
    store = new SqliteStore({ path: resolveIn(dir, config.database.slice('sqlite:'.length)), clock });
  else {
    const { PostgresStore } = await import('./store/postgres-store.js');
    store = new PostgresStore({
      url: config.database,
      clock,
      ...(config.databaseSchema !== undefined ? { schema: config.databaseSchema } : {}),
    });
  }
  await store.migrate();
  let directory: ServerDirectory & { close?(): Promise<void> };
  let builtin: BuiltinDirectory | undefined;
  if (config.ldap) {
    const password = (await readFile(resolveIn(dir, config.ldap.bindPasswordFile), 'utf8')).trim();
    const ca = config.ldap.caFile ? await readFile(resolveIn(dir, config.ldap.caFile), 'utf8') : undefined;
    directory = new LdapDirectory({
      url: config.ldap.url,
      flavor: config.ldap.flavor,
      bindDn: config.ldap.bindDn,
      bindPassword: password,
      baseDn: config.ldap.baseDn,
      ...(ca ? { tlsOptions: { ca: [ca] } } : {}),
    });
  } else {
    builtin = new BuiltinDirectory(store, { clock });
    directory = builtin;
  }
  const throttle = new SignInThrottle(store, { clock });
  const secrets = await ServerSecrets.open(join(dir, 'keys'), { clock });
  const service = new ManagementService({ store, directory, secrets, throttle, clock });
  const admin = new AdminService({ store, secrets, directory, users: builtin, clock });
  const adminGroup = config.adminGroup ?? (builtin ? DEFAULT_ADMIN_GROUP : undefined);
  if (builtin && adminGroup !== undefined && !config.adminGroup && !(await store.getGroup(adminGroup)))
    await store.putGroup({ name: adminGroup, description: 'Tandem console administrators', members: [] });
  const consoleSessions =
    adminGroup !== undefined ? new ConsoleSessions({ store, directory, throttle, adminGroup, clock }) : undefined;
  const adminApi = new AdminApi(admin, await readAdminToken(dir), { sessions: consoleSessions });
  const unsubscribe = await store.onChange((change) => {
    if (change.scope === 'directory') service.forgetUsers();
  });
  const servers: ManagementHttpServer[] = [];
  return {
    dir,
    config,
    store,
    directory,
    secrets,
    service,
    admin,
    adminApi,
    consoleSessions,
    async serve(listen = {}, serveOptions = {}) {
      let consoleDir = serveOptions.consoleDir === undefined ? DEFAULT_CONSOLE_DIR : serveOptions.consoleDir;
      if (consoleDir !== false && serveOptions.consoleDir === undefined && !existsSync(join(consoleDir, 'index.html')))
        consoleDir = false;
      const tls = config.tls
        ? await readTlsFiles(resolveIn(dir, config.tls.key), resolveIn(dir, config.tls.cert))
        : undefined;
      const http = createManagementServer({
        service,
        admin: adminApi,
        tls,
        ...(consoleDir !== false ? { console: { dir: consoleDir } } : {}),
        onError: (err) => process.stderr.write(`tandem server: ${String((err as Error).stack ?? err)}\n`),
      });
      servers.push(http);
      const url = await http.listen(listen.port ?? config.listen.port, listen.host ?? config.listen.host);
      return { url, http, console: consoleDir !== false };
    },
    async close() {
      for (const s of servers) await s.close();
      unsubscribe();
      await directory.close?.();
      await store.close();
    },
  };
}
