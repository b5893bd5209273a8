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
import { connectAgent } from '../agent-client.js';
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

/**
 * Reads a password from the terminal without echoing it (one line; Ctrl-C cancels). Only on a
 * terminal: elsewhere the command needs `--password-stdin`.
 */
export async function promptSecret(question: string): Promise<string> {
  const input = process.stdin;
  if (!input.isTTY)
    throw new InvalidInputError('No terminal to ask for the password on: give it with --password-stdin.', {
      details: { option: '--password-stdin' },
    });
  process.stderr.write(question);
  input.setRawMode(true);
  input.resume();
  return new Promise((resolve, reject) => {
    let text = '';
    const done = (): void => {
      input.off('data', onData);
      input.setRawMode(false);
      input.pause();
      process.stderr.write('\n');
    };
    const onData = (chunk: Buffer): void => {
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n') {
          done();
          resolve(text);
          return;
        }
        if (ch === '\u0003' || ch === '\u0004') {
          done();
          reject(
            new TandemError('The password was not given (cancelled).', { code: 'TANDEM_CANCELLED', fault: 'user' }),
          );
          return;
        }
        text = ch === '\u007f' || ch === '\b' ? [...text].slice(0, -1).join('') : text + ch;
      }
    };
    input.on('data', onData);
  });
}

/** What became of credentials offered to the host agent. */
export type AgentHandOver = 'held' | 'no-agent' | 'agent-too-old';

/**
 * Hands the credentials the user just signed in with to this user's running host agent
 * (`credentials.hold`, agent API 1.1), which keeps them in memory only and signs the user in to
 * the guests of workspaces with `spec.guestSignIn`. Nothing when no agent runs.
 */
export async function handCredentialsToAgent(
  ctx: CliContext,
  credentials: { user: string; password: string; source: string },
): Promise<AgentHandOver> {
  const agent = await connectAgent(ctx);
  if (!agent) return 'no-agent';
  try {
    const [major = 0, minor = 0] = (agent.hello?.apiVersion ?? '0.0').split('.').map(Number);
    if (major < 1 || (major === 1 && minor < 1)) return 'agent-too-old';
    await agent.call('credentials.hold', credentials);
    return 'held';
  } finally {
    agent.close();
  }
}

/** The line `tandem login` and `tandem up` print about the hand-over. */
export function handOverLine(result: AgentHandOver): string | undefined {
  if (result === 'held') return 'the tandem agent signs you in to workspaces that ask (spec.guestSignIn)';
  if (result === 'agent-too-old')
    return 'the running tandem agent predates single sign-on into guests (agent API 1.1): restart it (tandem agent run)';
  return undefined;
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
            const agent = await handCredentialsToAgent(ctx, { user: s.user.name, password, source: 'login' });
            const line = handOverLine(agent);
            ctx.result(
              { server, offline: true, user: s.user.name, cachedAt: s.cachedAt, validUntil: s.validUntil, agent },
              [
                `signed in offline as ${s.user.name} (${why}); cached at ${s.cachedAt}, valid until ${s.validUntil}`,
                ...(line ? [line] : []),
              ],
            );
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
          // The running agent keeps the password in memory for single sign-on into guests.
          const agent = await handCredentialsToAgent(ctx, { user: reply.signIn.user, password, source: 'login' });
          const line = handOverLine(agent);
          ctx.result({ server, device: reply.device, signIn: reply.signIn, authority: id, agent }, [
            `signed in to ${server} as ${reply.signIn.user}; device ${reply.device} enrolled`,
            ...(line ? [line] : []),
            ...(warn !== undefined
              ? [`your password expires in ${Math.max(1, Math.round(warn / 86_400_000))} day(s): change it soon`]
              : []),
            'next: tandem checkin',
          ]);
        },
      ),
    );
}
