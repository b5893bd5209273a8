import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  HypervisorError,
  InvalidInputError,
  InvalidStateError,
  UnsupportedCapabilityError,
  assertArgument,
  type CommandRunner,
  type LaunchHandle,
  type LaunchRequest,
  type SeamlessOps,
  type SeamlessTransport,
} from '@tandem/core';
import { guid, mapHyperVState } from './parse.js';
import { desktopRdp, enhancedSessionRdp, remoteAppRdp } from './rdp.js';
import { checkVmName, type HyperVContext } from './vm.js';

/** The RDP client on the user's machine. */
export interface RdpClient {
  /** `mstsc` (Windows' Remote Desktop Connection) or `freerdp` (xfreerdp, wlfreerdp, sdl-freerdp). */
  readonly kind: 'mstsc' | 'freerdp';
  /** The program (default `mstsc.exe` or `xfreerdp`). */
  readonly program?: string;
}

/** Options of the seamless part of the Hyper-V adapter. */
export interface HyperVSeamlessOptions {
  /** Runs the RDP client (default: this machine). */
  readonly clientRunner: CommandRunner;
  readonly client: RdpClient;
  /** The Hyper-V host as the RDP client reaches it, for enhanced sessions. */
  readonly hostAddress: string;
  /** Where .rdp files are written (default the system temp directory); each is removed when the client ends. */
  readonly rdpDir?: string;
}

/**
 * Seamless windows for Hyper-V guests over RDP: RemoteApp (only the app's windows, through the
 * guest's network address) for `seamless`, and an enhanced session (the whole desktop over the
 * host's VMBus listener) for `full-desktop`. Connection settings go into an .rdp file (mode
 * 0600, removed when the client exits); the client's argv carries only that file's path, and a
 * FreeRDP client gets the password on stdin (`/from-stdin`).
 */
export class HyperVSeamless implements SeamlessOps {
  constructor(
    readonly ctx: HyperVContext,
    readonly options: HyperVSeamlessOptions,
  ) {}

  async launch(vm: string, request: LaunchRequest): Promise<LaunchHandle> {
    checkVmName(vm);
    assertArgument(request.command, 'app command');
    (request.args ?? []).forEach((a, i) => assertArgument(a, `app argument ${i + 1}`));
    const transport: SeamlessTransport =
      request.transport ?? (request.mode === 'seamless' ? 'rdp-remoteapp' : 'enhanced-session');
    if (transport !== 'rdp-remoteapp' && transport !== 'enhanced-session') {
      throw new UnsupportedCapabilityError(
        `The Hyper-V adapter launches apps over rdp-remoteapp or enhanced-session, not ${transport}.`,
        {
          details: { transport },
        },
      );
    }
    if (transport === 'enhanced-session' && request.mode === 'seamless') {
      throw new UnsupportedCapabilityError(
        'An enhanced session shows the whole desktop; use rdp-remoteapp for seamless windows.',
        { details: { transport } },
      );
    }
    const password = request.credentials?.password;
    if (password !== undefined && /[\r\n]/.test(password)) {
      throw new InvalidInputError('The password contains a line break; RDP clients read one line.', {
        details: { what: 'password' },
      });
    }
    const user = {
      ...(request.credentials?.username ? { username: request.credentials.username } : {}),
      ...(request.credentials?.domain ? { domain: request.credentials.domain } : {}),
    };

    const info = (await this.ctx.serial.run(vm, () =>
      this.ctx.ps.call('connect-info', { name: vm }, `Read connection details of "${vm}"`),
    )) as Record<string, unknown>;
    const state = mapHyperVState(info['State']);
    if (state !== 'running') {
      throw new InvalidStateError(`Cannot launch an app in "${vm}": it is ${state}; start it first.`, state, {
        details: { vm },
      });
    }
    // The data-transfer policy goes into the .rdp file as redirection settings (all off without one).
    const transfer = request.transfer ? { transfer: request.transfer } : {};
    let content: string;
    if (transport === 'enhanced-session') {
      content = enhancedSessionRdp({ host: this.options.hostAddress, vmId: guid(info['Id']) ?? '', user, ...transfer });
    } else {
      const ips = Array.isArray(info['IPAddresses']) ? (info['IPAddresses'] as unknown[]).map(String) : [];
      const address = ips.find((ip) => /^\d+\.\d+\.\d+\.\d+$/.test(ip)) ?? ips[0];
      if (!address) {
        throw new HypervisorError(
          `"${vm}" reports no IP address, so RDP cannot reach it. Check the guest's network and that its integration services run.`,
          {
            details: { vm },
          },
        );
      }
      content =
        request.mode === 'seamless'
          ? remoteAppRdp({
              address,
              program: request.command,
              ...(request.args ? { args: request.args } : {}),
              name: request.appId,
              ...(request.workingDirectory ? { workingDirectory: request.workingDirectory } : {}),
              user,
              ...transfer,
            })
          : desktopRdp({ address, user, ...transfer });
    }
    if (request.frameColor) this.ctx.warn('RDP clients draw no coloured frame; frameColor is ignored for Hyper-V.');

    const dir = mkdtempSync(join(this.options.rdpDir ?? tmpdir(), 'tandem-rdp-'));
    const file = join(dir, 'connection.rdp');
    writeFileSync(file, content, { mode: 0o600 });
    chmodSync(file, 0o600);
    const cleanup = (): void => rmSync(dir, { recursive: true, force: true });
    const { kind } = this.options.client;
    const program = this.options.client.program ?? (kind === 'mstsc' ? 'mstsc.exe' : 'xfreerdp');
    const args = [file];
    let input: string | undefined;
    if (password !== undefined) {
      if (kind === 'freerdp') {
        args.push('/from-stdin');
        input = `${password}\n`;
      } else this.ctx.warn('mstsc takes no password from Tandem; it asks the user.');
    }
    let running;
    try {
      running = await this.options.clientRunner.start({
        command: program,
        args,
        ...(input !== undefined ? { input } : {}),
      });
    } catch (err) {
      cleanup();
      throw err;
    }
    const exited = running.result.then(
      (r) => r.exitCode,
      () => null,
    );
    void exited.finally(cleanup);
    return {
      transport,
      argv: running.argv,
      ...(running.pid !== undefined ? { pid: running.pid } : {}),
      exited,
      close: async () => {
        running.kill();
        await exited;
      },
    };
  }
}
