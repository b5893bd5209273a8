import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { z } from 'zod';
import { InvalidInputError, NotFoundError, TandemError, keyIdOf } from '@tandem/core';
import { keysDirOf, openEndpointKeys, readPrivateFile, writePrivateFile } from '@tandem/core/crypto';
import { ManagementClient } from '@tandem/core/management';
import type { CliContext } from '../context.js';
import type { CommandHost } from '../program.js';
import { readTrustedAuthorities, writeTrustedAuthorities } from './keys-files.js';
import { openCredentialCache, signInResultOf } from './login-cache.js';

/** What `tandem login` keeps in the state directory (0600): the server and the signed-in user. */
const EndpointConfigSchema = z.object({
  format: z.literal('tandem.management/v1'),
  server: z.string(),
  /** The CA certificate (PEM) the server's certificate is checked against. */
  ca: z.string().optional(),
  device: z.string(),
  /** Absent after the server told this endpoint to delete the cached credentials. */
  user: z.string().optional(),
  signedInAt: z.string().optional(),
  token: z.string().optional(),
});
export type EndpointConfig = z.infer<typeof EndpointConfigSchema>;

/** Where the endpoint keeps its management server's settings. */
export function endpointConfigFile(stateDir: string): string {
  return join(stateDir, 'management.json');
}

export async function readEndpointConfig(stateDir: string): Promise<EndpointConfig> {
  const raw = await readPrivateFile(endpointConfigFile(stateDir));
  if (!raw)
    throw new NotFoundError('This device has not signed in to a management server; run tandem login SERVER first.');
  return EndpointConfigSchema.parse(JSON.parse(raw.toString('utf8')));
}

export async function writeEndpointConfig(stateDir: string, config: EndpointConfig): Promise<void> {
  await writePrivateFile(endpointConfigFile(stateDir), JSON.stringify(config, null, 2) + '\n');
}

/** The client for this endpoint's server, signed with its device key. */
export async function endpointClient(ctx: CliContext, config: EndpointConfig): Promise<ManagementClient> {
  const { device } = await openEndpointKeys(keysDirOf(ctx.stateDir));
  return new ManagementClient({ baseUrl: config.server, device, ca: config.ca });
}

/**
 * A password for a command: `--password` where the command has one, else stdin with
 * `--password-stdin` (one line, the newline dropped), else TANDEM_PASSWORD; never a prompt.
 */
export async function readSecret(opts: { password?: string; passwordStdin?: boolean }): Promise<string> {
  if (opts.password !== undefined) return opts.password;
  if (opts.passwordStdin) {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin as AsyncIterable<Buffer>) chunks.push(c);
    return Buffer.concat(chunks)
      .toString('utf8')
      .replace(/\r?\n$/, '');
  }
  const env = process.env['TANDEM_PASSWORD'];
  if (env !== undefined && env !== '') return env;
  throw new InvalidInputError('Give the password with --password-stdin (or TANDEM_PASSWORD in the environment).');
}

/** `tandem login SERVER`: sign in and enroll this device (its device key) with a management server. */
export function registerLogin(program: Command, host: CommandHost): void {
  program
    .command('login <server>')
    .description('sign in to a management server and enroll this device; trusts its key-release authority')
    .requiredOption('--user <name>', 'your sign-in name')
    .option('--password-stdin', 'read the password from stdin (else TANDEM_PASSWORD)')
    .option('--ca <file>', "the server's CA or self-signed certificate (PEM), instead of the system's CAs")
    .option('--host-name <name>', 'the name this device is listed under', hostname())
    .option('--offline', 'sign in from the credentials cached at the last online sign-in, without the server')
    .action(
      host.run(
        async (
          ctx,
          server: string,
          opts: { user: string; passwordStdin?: boolean; ca?: string; hostName: string; offline?: boolean },
        ) => {
          const password = await readSecret(opts);
          const cache = await openCredentialCache(ctx.stateDir);
          const offline = async (why: string) => {
            const s = await cache.signInOffline(opts.user, password);
            ctx.result({ server, offline: true, user: s.user.name, cachedAt: s.cachedAt, validUntil: s.validUntil }, [
              `signed in offline as ${s.user.name} (${why}); cached at ${s.cachedAt}, valid until ${s.validUntil}`,
            ]);
          };
          if (opts.offline) return offline('--offline');
          const ca = opts.ca !== undefined ? await readFile(opts.ca, 'utf8') : undefined;
          const { device } = await openEndpointKeys(keysDirOf(ctx.stateDir));
          const client = new ManagementClient({ baseUrl: server, device, ca });
          let reply: Awaited<ReturnType<ManagementClient['enroll']>>;
          try {
            reply = await client.enroll({ user: opts.user, password, hostName: opts.hostName });
          } catch (err) {
            // The server (or its directory) cannot be reached: sign in from the cache when this
            // user signed in online here before; a refusal (wrong password, locked) is final.
            if (TandemError.is(err) && err.retryable && (await cache.cached(opts.user)))
              return offline(`${server} cannot be reached`);
            throw err;
          }
          const trusted = await readTrustedAuthorities(ctx.stateDir);
          const id = keyIdOf(reply.authority);
          if (!trusted.some((k) => keyIdOf(k) === id))
            await writeTrustedAuthorities(ctx.stateDir, [...trusted, reply.authority]);
          await writeEndpointConfig(ctx.stateDir, {
            format: 'tandem.management/v1',
            server: client.baseUrl.href.replace(/\/$/, ''),
            ...(ca !== undefined ? { ca } : {}),
            device: reply.device,
            user: reply.signIn.user,
            signedInAt: reply.signIn.signedInAt,
          });
          // The verifier (never the password) for offline sign-in within the lease.
          await cache.remember(reply.signIn.user, password, signInResultOf(reply.signIn, Date.now()));
          const warn = reply.signIn.passwordExpiresInMs;
          ctx.result({ server, device: reply.device, signIn: reply.signIn, authority: id }, [
            `signed in to ${server} as ${reply.signIn.user}; device ${reply.device} enrolled`,
            ...(warn !== undefined
              ? [`your password expires in ${Math.max(1, Math.round(warn / 86_400_000))} day(s): change it soon`]
              : []),
            'next: tandem checkin',
          ]);
        },
      ),
    );
}
