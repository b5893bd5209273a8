import { spawn } from 'node:child_process';
import { execa } from 'execa';
import {
  HostError,
  InvalidInputError,
  UnsupportedCapabilityError,
  type LaunchHandle,
  type LaunchRequest,
  type SeamlessOps,
  type SeamlessTransport,
} from '@tandem/core';
import { readDomainFacts } from '../domain-facts.js';
import type { AdapterInternals } from '../internals.js';
import { parseDomIfAddr, pickGuestAddress } from './address.js';
import { freeRdpArgs, type FreeRdpTarget } from './freerdp.js';
import { xpraArgs, xpraAttachArgs } from './xpra.js';

const SOURCES = ['lease', 'agent', 'arp'] as const;

/**
 * Seamless windows: RemoteApp through FreeRDP for Windows guests, Xpra over SSH for Linux
 * guests. The guest's address comes from libvirt (DHCP leases of its network, then the QEMU
 * guest agent, then the host's ARP table). The host-side client is started with an argument
 * array, never through a shell.
 */
export class LibvirtSeamless implements SeamlessOps {
  #freeRdpSyntax: Promise<'v2' | 'v3'> | undefined;

  constructor(readonly ctx: AdapterInternals) {}

  async launch(vm: string, request: LaunchRequest): Promise<LaunchHandle> {
    validateRequest(vm, request);
    const { osFamily } = await this.ctx.serialize(vm, async () => {
      await this.ctx.requireState(vm, 'launch an app in', ['running']);
      return readDomainFacts(await this.ctx.withDomain(vm, 'launch', (d) => d.getXMLDesc(0), true));
    });
    const transport: SeamlessTransport = request.transport ?? (osFamily === 'windows' ? 'rdp-remoteapp' : 'xpra');
    if (transport !== 'rdp-remoteapp' && transport !== 'xpra') {
      throw new UnsupportedCapabilityError(
        `The libvirt adapter launches apps with rdp-remoteapp or xpra, not ${transport}.`,
        {
          details: { vm, transport },
        },
      );
    }
    const host = await this.guestAddress(vm);
    if (transport === 'rdp-remoteapp') {
      const o = this.ctx.options.freerdp ?? {};
      const binary = o.path ?? 'xfreerdp';
      const syntax = o.syntax ?? (await this.#detectFreeRdp(binary));
      return launchFreeRdp(
        { host, port: o.port ?? 3389, syntax, certificate: o.certificate ?? 'tofu' },
        request,
        binary,
      );
    }
    const o = this.ctx.options.xpra ?? {};
    if (o.attachPort !== undefined) {
      const h = host.includes(':') ? `[${host}]` : host;
      return launchXpraAttach(`tcp://${h}:${o.attachPort}/`, request, o.path);
    }
    return startClient(transport, o.path ?? 'xpra', xpraArgs({ host, sshPort: o.sshPort ?? 22 }, request), undefined);
  }

  /** The guest's address as libvirt knows it; HostError (retryable) while it has none. */
  async guestAddress(vm: string): Promise<string> {
    const tried: string[] = [];
    for (const source of SOURCES) {
      try {
        const out = await this.ctx.virsh.run(['domifaddr', '--domain', vm, '--source', source]);
        const address = pickGuestAddress(parseDomIfAddr(out));
        if (address) return address;
        tried.push(`${source}: none`);
      } catch (err) {
        tried.push(`${source}: ${(err as Error).message}`);
      }
    }
    throw new HostError(
      `VM "${vm}" has no network address yet (${tried.join('; ')}). Wait until its OS has started and taken a DHCP lease, or install the QEMU guest agent.`,
      { retryable: true, details: { vm, tried } },
    );
  }

  #detectFreeRdp(binary: string): Promise<'v2' | 'v3'> {
    this.#freeRdpSyntax ??= execa(binary, ['/version'], { reject: false, stdin: 'ignore' }).then((r) => {
      if (r.exitCode === undefined) {
        this.#freeRdpSyntax = undefined;
        throw new HostError(
          `FreeRDP (${binary}) is not installed: install freerdp2-x11 or freerdp3-x11, or set freerdp.path.`,
          {
            details: { binary },
          },
        );
      }
      return /version 2\./.test(r.stdout) ? 'v2' : 'v3';
    });
    return this.#freeRdpSyntax;
  }
}

/**
 * Starts FreeRDP for `request` against `target` (see freeRdpArgs); a password goes to its stdin,
 * never its argv.
 */
export function launchFreeRdp(
  target: FreeRdpTarget,
  request: LaunchRequest,
  binary = 'xfreerdp',
): Promise<LaunchHandle> {
  validateRequest(target.host, request);
  const password = request.credentials?.password;
  return startClient(
    'rdp-remoteapp',
    binary,
    freeRdpArgs(target, request),
    password !== undefined ? `${password}\n` : undefined,
  );
}

/**
 * Starts the Xpra client attached to a running Xpra server at `url` (`tcp://host:port/`) with the
 * app, frame and policy of `request` (see xpraAttachArgs).
 */
export function launchXpraAttach(url: string, request: LaunchRequest, binary = 'xpra'): Promise<LaunchHandle> {
  validateRequest(url, request);
  return startClient('xpra', binary, xpraAttachArgs(url, request), undefined);
}

function validateRequest(vm: string, request: LaunchRequest): void {
  const fields: [string, string | undefined][] = [
    ['command', request.command],
    ['workingDirectory', request.workingDirectory],
    ['appId', request.appId],
    ...(request.args ?? []).map((a, i): [string, string] => [`args[${i}]`, a]),
  ];
  for (const [name, value] of fields) {
    if (value !== undefined && /[\0\r\n]/.test(value)) {
      throw new InvalidInputError(
        `Launch of "${request.appId}" in VM "${vm}": ${name} contains a line break or NUL, which no transport can carry.`,
        {
          details: { vm, field: name, value },
        },
      );
    }
  }
  if (request.command.trim() === '') {
    throw new InvalidInputError(`Launch of "${request.appId}" in VM "${vm}": command is empty.`, {
      details: { vm, field: 'command' },
    });
  }
}

function startClient(
  transport: SeamlessTransport,
  binary: string,
  args: string[],
  stdin: string | undefined,
): Promise<LaunchHandle> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, args, { stdio: [stdin !== undefined ? 'pipe' : 'ignore', 'ignore', 'ignore'] });
    const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
    child.once('error', (err: NodeJS.ErrnoException) => {
      reject(
        new HostError(
          `Cannot start ${binary} for ${transport}: ${err.message}. Install it or set its path in the adapter options.`,
          {
            cause: err,
            details: { binary, transport, code: err.code },
          },
        ),
      );
    });
    child.once('spawn', () => {
      // The client may exit before reading (bad arguments): that shows in `exited`, not as EPIPE.
      child.stdin?.on('error', () => undefined);
      if (stdin !== undefined) child.stdin?.end(stdin);
      resolve({
        transport,
        argv: [binary, ...args],
        ...(child.pid !== undefined ? { pid: child.pid } : {}),
        exited,
        close: async () => {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
          await exited;
        },
      });
    });
  });
}
