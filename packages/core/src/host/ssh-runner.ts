import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type * as Ssh2 from 'ssh2';
import type { Client, ClientChannel, ConnectConfig } from 'ssh2';
import { AuthError, CancelledError, HostError, InvalidInputError, TandemError, TimeoutError } from '../errors.js';
import {
  hostKeyAlgorithms,
  knownHostName,
  parseKnownHosts,
  verifyHostKey,
  type HostKeyVerdict,
  type KnownHostEntry,
} from './known-hosts.js';
import { posixReportingCommandLine, remoteCommandLine } from './remote-command.js';
import { assertRequest } from './validate.js';
import { randomBytes } from 'node:crypto';
import type { CommandRequest, CommandResult, CommandRunner, RemoteShell, RunningCommand } from './types.js';

/** How to reach and trust a remote host. */
export interface SshHostOptions {
  readonly host: string;
  /** Default 22. */
  readonly port?: number;
  readonly username: string;
  /** A private key (PEM or OpenSSH format). */
  readonly privateKey?: string | Buffer;
  /** A file holding the private key. */
  readonly privateKeyPath?: string;
  readonly passphrase?: string;
  /** An SSH agent: its socket path, or true for `SSH_AUTH_SOCK`. */
  readonly agent?: string | true;
  /** known_hosts to check the host key against (default `~/.ssh/known_hosts`). */
  readonly knownHostsPath?: string;
  /** Pinned host key fingerprints (`SHA256:...`, as `ssh-keygen -lf` prints them). */
  readonly hostKeyFingerprints?: readonly string[];
  /** The remote account's shell (default `posix`; Windows OpenSSH uses `powershell` or `cmd`). */
  readonly shell?: RemoteShell;
  /** Time allowed to connect and authenticate (default 20 s). */
  readonly connectTimeoutMs?: number;
  /** Commands at once over the shared connection (default 8; OpenSSH allows 10 by default). */
  readonly maxChannels?: number;
  /** Keepalive interval (default 15 s; 0 turns it off). */
  readonly keepaliveIntervalMs?: number;
}

/**
 * Runs programs on another machine over SSH (ssh2). One connection is shared by all commands
 * and reopened when it drops. The host key must match known_hosts or a pinned fingerprint: an
 * unknown or changed key is refused, never accepted.
 *
 * @example
 * ```ts
 * const runner = new SshRunner({ host: 'hv01', username: 'admin', agent: true, shell: 'powershell' });
 * const { stdout } = await runner.run({ command: 'VBoxManage', args: ['list', 'vms'] });
 * await runner.close();
 * ```
 */
export class SshRunner implements CommandRunner {
  readonly description: string;
  readonly platform: 'posix' | 'windows';
  readonly remote = true;
  readonly #options: SshHostOptions;
  readonly #port: number;
  readonly #shell: RemoteShell;
  #client: Promise<Client> | undefined;
  #active = 0;
  #opened = 0;
  /** Marks the line on stderr that reports a POSIX program's pid; random so output cannot fake it. */
  readonly #pidMarker = `TANDEM-PID-${randomBytes(6).toString('hex')}`;
  readonly #waiting: (() => void)[] = [];

  constructor(options: SshHostOptions) {
    if (!options.host)
      throw new InvalidInputError('SSH host is empty: give the host name or address.', { details: { what: 'host' } });
    if (!options.username)
      throw new InvalidInputError('SSH username is empty: give the account to log in as.', {
        details: { what: 'username' },
      });
    if (!options.privateKey && !options.privateKeyPath && !options.agent) {
      throw new InvalidInputError('No SSH credentials: give privateKey, privateKeyPath or agent.', {
        details: { what: 'credentials' },
      });
    }
    this.#options = options;
    this.#port = options.port ?? 22;
    this.#shell = options.shell ?? 'posix';
    this.platform = this.#shell === 'posix' ? 'posix' : 'windows';
    this.description = `ssh ${options.username}@${options.host}:${this.#port}`;
  }

  async run(request: CommandRequest): Promise<CommandResult> {
    const running = await this.#exec(request, true);
    return running.result;
  }

  async start(request: CommandRequest): Promise<RunningCommand> {
    return this.#exec(request, false);
  }

  /** How many SSH connections this runner has opened so far (commands share one). */
  get connectionsOpened(): number {
    return this.#opened;
  }

  async close(): Promise<void> {
    const pending = this.#client;
    this.#client = undefined;
    if (!pending) return;
    const client = await pending.catch(() => undefined);
    client?.end();
  }

  async #exec(request: CommandRequest, withTimeout: boolean): Promise<RunningCommand> {
    assertRequest(request);
    const line =
      this.#shell === 'posix'
        ? posixReportingCommandLine(this.#pidMarker, request.command, request.args, request.env)
        : remoteCommandLine(this.#shell, request);
    const argv = [request.command, ...(request.args ?? [])];
    const base = { command: request.command, args: request.args ?? [] };
    if (request.signal?.aborted)
      throw new CancelledError(`${request.command} on ${this.description} was cancelled.`, { details: base });
    await this.#acquire();
    let channel: ClientChannel;
    try {
      const client = await this.#connect();
      channel = await new Promise<ClientChannel>((resolve, reject) => {
        client.exec(line, (err, ch) => (err ? reject(err) : resolve(ch)));
      });
    } catch (err) {
      this.#release();
      if (TandemError.is(err)) throw err;
      throw new HostError(
        `Cannot run ${request.command} on ${this.description}: ${(err as Error).message}. Check that the host is reachable.`,
        {
          cause: err,
          retryable: true,
          details: base,
        },
      );
    }

    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let exitCode: number | null = null;
    let signal: string | undefined;
    let settle: { resolve: (r: CommandResult) => void; reject: (e: Error) => void } | undefined;
    let done = false;
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      this.#release();
    };
    const finish = (outcome: CommandResult | Error): void => {
      if (done) return;
      done = true;
      if (timer) clearTimeout(timer);
      request.signal?.removeEventListener('abort', onAbort);
      if (outcome instanceof Error) settle?.reject(outcome);
      else settle?.resolve(outcome);
    };
    const text = (chunks: Buffer[]): string => Buffer.concat(chunks).toString('utf8');
    const pidLine = new RegExp(`^${this.#pidMarker} (\\d+)\\n`, 'm');
    const remotePid = (): number | undefined => {
      const m = pidLine.exec(text(stderr));
      return m ? Number(m[1]) : undefined;
    };
    const errText = (): string => text(stderr).replace(pidLine, '');
    // A timed-out or cancelled program gets a KILL signal (OpenSSH 7.9 and later deliver it) and
    // its channel is closed; the caller is answered at once, not when the server lets go.
    const stop = (why: 'timeout' | 'cancelled'): void => {
      if (done) return;
      try {
        channel.signal('KILL');
      } catch {
        // the channel may already be closing
      }
      channel.close();
      const pid = remotePid();
      if (pid !== undefined) void this.#kill(pid);
      const grace = setTimeout(release, 5_000);
      grace.unref();
      finish(
        why === 'timeout'
          ? new TimeoutError(
              `${request.command} on ${this.description} did not finish within ${request.timeoutMs} ms and was stopped. Retry, or allow more time.`,
              { details: { ...base, timeoutMs: request.timeoutMs, stdout: text(stdout), stderr: errText() } },
            )
          : new CancelledError(`${request.command} on ${this.description} was cancelled.`, { details: base }),
      );
    };
    const timer =
      withTimeout && request.timeoutMs !== undefined ? setTimeout(() => stop('timeout'), request.timeoutMs) : undefined;
    const onAbort = (): void => stop('cancelled');
    request.signal?.addEventListener('abort', onAbort, { once: true });

    const result = new Promise<CommandResult>((resolve, reject) => {
      settle = { resolve, reject };
    });
    result.catch(() => undefined);
    channel.on('data', (d: Buffer) => stdout.push(d));
    channel.stderr.on('data', (d: Buffer) => stderr.push(d));
    channel.on('exit', (code: number | null, sig?: string) => {
      exitCode = typeof code === 'number' ? code : null;
      if (sig) signal = sig;
    });
    channel.on('close', () => {
      release();
      finish({ ...base, exitCode, ...(signal ? { signal } : {}), stdout: text(stdout), stderr: errText() });
    });
    if (request.input !== undefined)
      channel.end(typeof request.input === 'string' ? request.input : Buffer.from(request.input));
    else channel.end();
    return { argv, result, kill: () => stop('cancelled') };
  }

  /** Ends a remote POSIX program by pid over its own channel (best effort). */
  async #kill(pid: number): Promise<void> {
    try {
      const client = await this.#connect();
      await new Promise<void>((resolve) => {
        client.exec(`kill -KILL ${pid}`, (err, ch) => {
          if (err) return resolve();
          ch.on('close', () => resolve());
          ch.resume();
          ch.stderr.resume();
          ch.end();
        });
      });
    } catch {
      // the connection is gone; so is the program's session
    }
  }

  async #acquire(): Promise<void> {
    const max = this.#options.maxChannels ?? 8;
    while (this.#active >= max) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    this.#active++;
  }

  #release(): void {
    this.#active--;
    this.#waiting.shift()?.();
  }

  #connect(): Promise<Client> {
    this.#client ??= this.#open().catch((err: unknown) => {
      this.#client = undefined;
      throw err;
    });
    return this.#client;
  }

  #open(): Promise<Client> {
    const o = this.#options;
    const name = knownHostName(o.host, this.#port);
    const knownHostsPath = o.knownHostsPath ?? join(homedir(), '.ssh', 'known_hosts');
    let entries: KnownHostEntry[] = [];
    try {
      entries = parseKnownHosts(readFileSync(knownHostsPath, 'utf8'));
    } catch (err) {
      if (!o.hostKeyFingerprints?.length) {
        return Promise.reject(
          new AuthError(
            `Cannot verify the host key of ${name}: ${knownHostsPath} cannot be read (${(err as Error).message}). Add the host with ssh-keyscan, or pin its fingerprint with hostKeyFingerprints.`,
            { fault: 'host', details: { host: o.host, port: this.#port, knownHostsPath } },
          ),
        );
      }
    }
    const pinned = o.hostKeyFingerprints ?? [];
    const algorithms = hostKeyAlgorithms(entries, name);
    let privateKey: string | Buffer | undefined = o.privateKey;
    if (!privateKey && o.privateKeyPath) {
      try {
        privateKey = readFileSync(o.privateKeyPath);
      } catch (err) {
        return Promise.reject(
          new AuthError(`Cannot read the SSH private key ${o.privateKeyPath}: ${(err as Error).message}.`, {
            details: { privateKeyPath: o.privateKeyPath },
          }),
        );
      }
    }
    let verdict: HostKeyVerdict | undefined;
    const config: ConnectConfig = {
      host: o.host,
      port: this.#port,
      username: o.username,
      readyTimeout: o.connectTimeoutMs ?? 20_000,
      keepaliveInterval: o.keepaliveIntervalMs ?? 15_000,
      ...(privateKey ? { privateKey } : {}),
      ...(o.passphrase ? { passphrase: o.passphrase } : {}),
      ...(o.agent ? { agent: o.agent === true ? process.env['SSH_AUTH_SOCK'] : o.agent } : {}),
      ...(algorithms.length && !pinned.length ? { algorithms: { serverHostKey: algorithms as never } } : {}),
      hostVerifier: (key: Buffer) => {
        verdict = verifyHostKey(key, name, entries, pinned);
        return verdict.ok;
      },
    };
    // ssh2 (and its native helper) loads on the first connection, not when the core is imported.
    return loadSsh2().then(
      ({ Client: SshClient }) =>
        new Promise<Client>((resolve, reject) => {
          const client = new SshClient();
          let ready = false;
          client.once('ready', () => {
            ready = true;
            this.#opened++;
            resolve(client);
          });
          client.on('error', (err: Error & { level?: string }) => {
            if (ready) {
              this.#client = undefined;
              return;
            }
            reject(this.#connectError(err, name, knownHostsPath, verdict));
          });
          client.on('close', () => {
            if (ready && this.#client) this.#client = undefined;
          });
          client.connect(config);
        }),
    );
  }

  #connectError(
    err: Error & { level?: string },
    name: string,
    knownHostsPath: string,
    verdict: HostKeyVerdict | undefined,
  ): Error {
    const details = { host: this.#options.host, port: this.#port, username: this.#options.username };
    if (verdict && !verdict.ok) {
      const what =
        verdict.reason === 'mismatch'
          ? `its host key ${verdict.fingerprint} differs from the one in ${knownHostsPath}. Someone may be intercepting the connection; if the key changed legitimately, update known_hosts`
          : verdict.reason === 'revoked'
            ? `its host key ${verdict.fingerprint} is marked @revoked in ${knownHostsPath}`
            : `its host key ${verdict.fingerprint} is not in ${knownHostsPath}. Verify the fingerprint out of band, then add the host (ssh-keyscan) or pin the fingerprint with hostKeyFingerprints`;
      return new AuthError(`Refusing to connect to ${name}: ${what}.`, {
        fault: 'host',
        cause: err,
        details: { ...details, fingerprint: verdict.fingerprint, reason: verdict.reason, knownHostsPath },
      });
    }
    if (err.level === 'client-authentication') {
      return new AuthError(
        `SSH login to ${this.description} failed: the server accepted none of the credentials. Check the username, key or agent, and authorized_keys on the host.`,
        { cause: err, details },
      );
    }
    if (err.level === 'client-timeout') {
      return new TimeoutError(`Connecting to ${this.description} timed out. Check that the host is up and reachable.`, {
        cause: err,
        details,
      });
    }
    return new HostError(
      `Cannot connect to ${this.description}: ${err.message}. Check that the host is up and sshd listens on port ${this.#port}.`,
      {
        cause: err,
        retryable: true,
        details,
      },
    );
  }
}

let ssh2Module: Promise<typeof Ssh2> | undefined;

function loadSsh2(): Promise<typeof Ssh2> {
  ssh2Module ??= import('ssh2');
  return ssh2Module;
}
