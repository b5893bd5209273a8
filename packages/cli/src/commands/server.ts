import { join } from 'node:path';
import type { Command } from 'commander';
import { InvalidInputError } from '@tandem/core';
import { initServerDirectory, openDeployment } from '@tandem/server';
import type { CliContext } from '../context.js';
import type { CommandHost } from '../program.js';

/** The server directory: `--dir`, else `<state-dir>/server`. */
export function serverDirOf(ctx: CliContext, dir: string | undefined): string {
  return dir ?? join(ctx.stateDir, 'server');
}

function parseListen(text: string | undefined): { host: string; port: number } | undefined {
  if (text === undefined) return undefined;
  const m = /^(.*):(\d{1,5})$/.exec(text);
  if (!m) throw new InvalidInputError(`--listen ${text}: expected HOST:PORT, such as 0.0.0.0:8443.`);
  return { host: (m[1] ?? '').replace(/^\[|\]$/g, '') || '0.0.0.0', port: Number(m[2]) };
}

interface InitOptions {
  dir?: string;
  database?: string;
  ldap?: string;
  ldapFlavor?: 'active-directory' | 'openldap';
  ldapBindDn?: string;
  ldapBindPasswordFile?: string;
  ldapBaseDn?: string;
  ldapCa?: string;
  host: string[];
  listen?: string;
  tlsKey?: string;
  tlsCert?: string;
  noTls?: boolean;
  tls?: boolean;
  adminGroup?: string;
}

/** `tandem server init|run`: the management server. */
export function registerServer(program: Command, host: CommandHost): void {
  const server = program
    .command('server')
    .description('the management server (sign-in, provisioning, key release, events)');
  server
    .command('init')
    .description(
      'make a server directory: config, keys, a self-signed certificate, the admin token (SQLite and the built-in directory by default)',
    )
    .option('--dir <dir>', 'the server directory (default <state-dir>/server)')
    .option('--database <url>', 'postgres://user:pass@host/db for many processes (default sqlite:server.db)')
    .option(
      '--ldap <url>',
      'ldaps://host:636: sign users in through LDAP / Active Directory instead of the built-in directory',
    )
    .option('--ldap-flavor <flavor>', 'active-directory or openldap', 'active-directory')
    .option('--ldap-bind-dn <dn>', "the service account's DN")
    .option('--ldap-bind-password-file <file>', "a file holding the service account's password")
    .option('--ldap-base-dn <dn>', 'where users and groups are (DC=corp,DC=example)')
    .option('--ldap-ca <file>', "the directory's CA certificate (PEM)")
    .option(
      '--host <name>',
      'a host name or address for the certificate (repeatable)',
      (v: string, a: string[]) => [...a, v],
      [],
    )
    .option('--listen <host:port>', 'where to listen (default 127.0.0.1:8443)')
    .option('--tls-key <file>', 'your own TLS key (PEM) instead of a self-signed certificate')
    .option('--tls-cert <file>', 'your own TLS certificate (PEM)')
    .option('--no-tls', 'plain HTTP, only behind a TLS-terminating proxy')
    .option(
      '--admin-group <name-or-dn>',
      'whose members may sign in to the web console (default with the built-in directory: admins)',
    )
    .action(
      host.run(async (ctx, opts: InitOptions) => {
        const dir = serverDirOf(ctx, opts.dir);
        if ((opts.tlsKey === undefined) !== (opts.tlsCert === undefined))
          throw new InvalidInputError('Give both --tls-key and --tls-cert, or neither (a self-signed certificate).');
        let ldap;
        if (opts.ldap !== undefined) {
          if (!opts.ldapBindDn || !opts.ldapBindPasswordFile || !opts.ldapBaseDn)
            throw new InvalidInputError('--ldap needs --ldap-bind-dn, --ldap-bind-password-file and --ldap-base-dn.');
          ldap = {
            url: opts.ldap,
            flavor: opts.ldapFlavor ?? 'active-directory',
            bindDn: opts.ldapBindDn,
            bindPasswordFile: opts.ldapBindPasswordFile,
            baseDn: opts.ldapBaseDn,
            ...(opts.ldapCa !== undefined ? { caFile: opts.ldapCa } : {}),
          };
        }
        const { config, created } = await initServerDirectory(dir, {
          database: opts.database,
          ldap,
          listen: parseListen(opts.listen),
          hostNames: opts.host.length > 0 ? opts.host : undefined,
          adminGroup: opts.adminGroup,
          tls:
            opts.tls === false
              ? 'none'
              : opts.tlsKey && opts.tlsCert
                ? { key: opts.tlsKey, cert: opts.tlsCert }
                : undefined,
        });
        ctx.result({ dir, created, config }, [
          created ? `server directory ${dir} made` : `server directory ${dir} exists (unchanged)`,
          `database: ${config.database.startsWith('sqlite:') ? config.database : 'postgres'}`,
          `directory: ${config.ldap ? config.ldap.url : 'built-in'}`,
          `tls: ${config.tls ? config.tls.cert : 'none'}`,
          `console admins: members of ${config.adminGroup ?? (config.ldap ? '(none: give --admin-group)' : 'admins')}${config.ldap ? '' : ` (add the first: tandem admin user add NAME --password-stdin; tandem admin group add ${config.adminGroup ?? 'admins'} --member NAME)`}`,
          `start it: tandem server run --dir ${dir}`,
        ]);
      }),
    );
  server
    .command('run')
    .description('run the server until SIGINT or SIGTERM; several may share one PostgreSQL database')
    .option('--dir <dir>', 'the server directory (default <state-dir>/server)')
    .option('--listen <host:port>', "override server.json's address")
    .option('--console-dir <dir>', 'serve the web console from this built directory (default: the packaged one)')
    .option('--no-console', 'do not serve the web console')
    .action(
      host.run(async (ctx, opts: { dir?: string; listen?: string; consoleDir?: string; console?: boolean }) => {
        const dir = serverDirOf(ctx, opts.dir);
        const deployment = await openDeployment(dir);
        const consoleDir = opts.console === false ? false : opts.consoleDir;
        const { url, console: consoleServed } = await deployment.serve(
          parseListen(opts.listen),
          consoleDir !== undefined ? { consoleDir } : {},
        );
        ctx.line(
          {
            event: 'listening',
            url,
            store: deployment.store.kind,
            directory: deployment.directory.kind,
            console: consoleServed ? `${url}/console/` : null,
          },
          `tandem server listening on ${url}${consoleServed ? `; console at ${url}/console/` : ''}`,
        );
        await new Promise<void>((resolve) => {
          const stop = (): void => {
            process.off('SIGINT', stop);
            process.off('SIGTERM', stop);
            resolve();
          };
          process.on('SIGINT', stop);
          process.on('SIGTERM', stop);
        });
        await deployment.close();
        ctx.line({ event: 'stopped' }, 'tandem server stopped');
      }),
    );
}
