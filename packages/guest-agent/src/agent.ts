import type { Server } from 'node:net';
import { AGENT_CHANNEL_NAME, AgentEndpoint, OpenUrlParamsSchema, type AgentHandlers } from '@tandem/core/guest';
import { loadAllowList, runAllowed } from './allow-list.js';
import { discoverLinuxApps, xdgDataDirs } from './apps-linux.js';
import { findChannel, openChannel, type Channel, type ChannelTarget } from './channel.js';
import { defaultUrlSocket, serveUrlSocket } from './forward-url.js';
import { guestInfo } from './info.js';
import { openUrlInGuest } from './open-url.js';
import { SYSTEM_PATHS, type GuestPaths } from './paths.js';
import { runProgram, type ProgramRunner } from './run.js';
import { linuxSetup } from './setup-linux.js';
import { GuestSetup, type SetupApplier } from './setup.js';
import { linuxSignIn, type SignInApplier } from './sign-in-linux.js';
import { windowsSignIn } from './sign-in-windows.js';
import { AgentState } from './state.js';
import { AGENT_SOFTWARE, AGENT_VERSION } from './version.js';
import { applyRdpPolicy, discoverWindowsApps, windowsSetup } from './windows.js';

/** Options of {@link runAgent} (the command line maps onto these). */
export interface AgentOptions {
  /** The virtio-serial port name (default org.tandem.agent.0). */
  readonly port?: string;
  /** A fixed channel instead of discovery (`--device`, `--tcp`). */
  readonly target?: ChannelTarget;
  readonly stateDir?: string;
  /** Extra directories of .desktop files (`--apps-dir`). */
  readonly appsDirs?: readonly string[];
  /** The allow-list of maintenance commands (`--allow-file`); none: exec allows nothing. */
  readonly allowFile?: string;
  /** The local socket `forward-url` talks to; `false`: none. */
  readonly urlSocket?: string | false;
  readonly paths?: GuestPaths;
  readonly sysDir?: string;
  readonly devDir?: string;
  readonly platform?: NodeJS.Platform;
  readonly run?: ProgramRunner;
  /** Single sign-on into this guest (`sign-in`); default the platform's (Linux, Windows). */
  readonly signIn?: SignInApplier;
  readonly log?: (line: string) => void;
  readonly signal?: AbortSignal;
}

const BACKOFF_MS = [100, 250, 500, 1000, 2000];

/**
 * The guest agent: finds its channel, serves the host, and when the host goes away (the port
 * gives EOF) or the channel is not there yet, waits with backoff and tries again, forever,
 * until `signal` aborts.
 */
export async function runAgent(options: AgentOptions = {}): Promise<void> {
  const platform = options.platform ?? process.platform;
  const paths = options.paths ?? SYSTEM_PATHS;
  const run = options.run ?? runProgram;
  const log = options.log ?? ((line: string) => process.stderr.write(`tandem-guest-agent: ${line}\n`));
  const state = new AgentState(options.stateDir ?? '/var/lib/tandem-guest-agent');
  const applier: SetupApplier | undefined =
    platform === 'linux' ? linuxSetup(paths, run) : platform === 'win32' ? windowsSetup(run) : undefined;
  const setup = applier ? new GuestSetup(state, applier) : undefined;

  // A recorded computer name is applied again at start, as the OS does from /etc/hostname (an
  // initramfs guest has no persistent /etc).
  const recorded = state.load().computerName;
  if (recorded && applier?.reapply) {
    await applier
      .reapply(recorded)
      .catch((err: unknown) => log(`cannot apply the recorded computer name: ${String(err)}`));
  }
  const allowList = await loadAllowList(options.allowFile);

  const handlers: AgentHandlers = {
    ping: async () => ({}),
    info: async () => guestInfo(paths, state.load().computerName, platform),
    'open-url': async (params) => {
      await openUrlInGuest(OpenUrlParamsSchema.parse(params).url, run, platform);
      return { opened: true };
    },
    exec: async (params, { signal }) => runAllowed(allowList, params!.command, params!.args, run, signal),
  };
  if (platform === 'linux') {
    handlers.apps = async () => ({
      apps: await discoverLinuxApps({ dataDirs: xdgDataDirs(), appsDirs: options.appsDirs ?? [] }),
    });
  } else if (platform === 'win32') {
    handlers.apps = async () => ({ apps: await discoverWindowsApps(run) });
    handlers['rdp-policy.apply'] = async (params, { signal }) => applyRdpPolicy(run, params!.values, signal);
  }
  const signIn: SignInApplier | undefined =
    options.signIn ??
    (platform === 'linux' ? linuxSignIn(paths, run) : platform === 'win32' ? windowsSignIn(run) : undefined);
  if (signIn) {
    handlers['sign-in'] = async (params, { signal }) => {
      // The password as bytes this agent owns, zeroed once the sign-in settled; it is never
      // logged (failures carry the guest's words and the user name only).
      const password = Buffer.from(params!.password, 'utf8');
      try {
        const result = await signIn.signIn(params!.user, params!.domain, password, signal);
        log(`signed in ${params!.user} (${result.method})`);
        return result;
      } catch (err) {
        log(`sign-in of ${params!.user} failed: ${(err as Error).message}`);
        throw err;
      } finally {
        password.fill(0);
      }
    };
  }
  if (setup) {
    handlers['setup.status'] = async () => setup.status();
    handlers['setup.step'] = async (params, { signal }) => setup.step(params!, signal);
  }
  const urlSocket = options.urlSocket ?? defaultUrlSocket(platform);
  const endpoint = new AgentEndpoint({
    software: AGENT_SOFTWARE,
    version: AGENT_VERSION,
    handlers,
    eventCapabilities: urlSocket === false ? [] : ['url-to-host'],
    onProblem: log,
  });

  let server: Server | undefined;
  if (urlSocket !== false) {
    try {
      server = await serveUrlSocket(urlSocket, (url) =>
        endpoint.sendEvent('url-to-host', { url })
          ? { ok: true, message: 'sent to the host' }
          : { ok: false, message: 'the host is not connected' },
      );
    } catch (err) {
      log(`cannot listen on ${urlSocket} for forward-url: ${(err as Error).message}`);
    }
  }

  const signal = options.signal ?? new AbortController().signal;
  let channel: Channel | undefined;
  let attempt = 0;
  let lastReason = '';
  const note = (reason: string): void => {
    if (reason !== lastReason) log(reason);
    lastReason = reason;
  };
  const onAbort = (): void => {
    endpoint.close();
    channel?.close();
  };
  signal.addEventListener('abort', onAbort, { once: true });
  log(`${AGENT_SOFTWARE} ${AGENT_VERSION} starting; capabilities ${endpoint.capabilities.join(', ')}`);
  try {
    while (!signal.aborted) {
      if (!channel) {
        const target =
          options.target ??
          (await findChannel({
            port: options.port ?? AGENT_CHANNEL_NAME,
            platform,
            ...(options.sysDir ? { sysDir: options.sysDir } : {}),
            ...(options.devDir ? { devDir: options.devDir } : {}),
          }));
        if ('reason' in target) {
          note(target.reason);
          await sleep(BACKOFF_MS[Math.min(attempt++, BACKOFF_MS.length - 1)]!, signal);
          continue;
        }
        channel = openChannel(target);
        note(`using ${'path' in target ? target.path : `${target.host}:${target.port}`}`);
      }
      let stream;
      try {
        stream = await channel.next();
      } catch (err) {
        note(`cannot open the channel: ${(err as Error).message}`);
        if (!options.target) channel = undefined; // discover again: the port may have moved
        await sleep(BACKOFF_MS[Math.min(attempt++, BACKOFF_MS.length - 1)]!, signal);
        continue;
      }
      const { reason, hostSaidHello } = await endpoint.serve(stream);
      if (hostSaidHello) {
        attempt = 0;
        note(`host gone: ${reason}`);
      }
      // The host side is closed: a virtio port reads EOF at once until it is back, so wait.
      await sleep(BACKOFF_MS[Math.min(attempt++, BACKOFF_MS.length - 1)]!, signal);
    }
  } finally {
    signal.removeEventListener('abort', onAbort);
    server?.close();
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(() => {
      signal.removeEventListener('abort', done);
      resolve();
    }, ms);
    const done = (): void => {
      clearTimeout(t);
      resolve();
    };
    signal.addEventListener('abort', done, { once: true });
  });
}
