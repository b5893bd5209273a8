import { connect } from 'node:net';
import type { Duplex } from 'node:stream';
import { CancelledError, HostError, InvalidInputError, type GuestChannelOps } from '@tandem/core';
import { readDomainFacts } from './domain-facts.js';
import type { AdapterInternals } from './internals.js';
import { openRemoteUnixSocket } from './ssh-socket.js';
import { isSshTransport } from './uri.js';

/**
 * The guest-agent channel: a virtio-serial port (`org.tandem.agent.0`) in the guest, backed
 * on the host by a unix socket that libvirt creates for the running VM. Locally the socket is
 * opened directly; on a `qemu+ssh://` host it is reached through SSH stream forwarding.
 * QEMU accepts one host connection at a time.
 */
export class LibvirtGuestChannel implements GuestChannelOps {
  constructor(readonly ctx: AdapterInternals) {}

  async open(vm: string, options: { signal?: AbortSignal } = {}): Promise<Duplex> {
    const socketPath = await this.ctx.serialize(vm, async () => {
      await this.ctx.requireState(vm, 'open the guest channel of', ['running', 'paused']);
      const facts = readDomainFacts(await this.ctx.withDomain(vm, 'guest channel', (d) => d.getXMLDesc(0), true));
      if (!facts.hasAgentChannel) {
        throw new InvalidInputError(
          `VM "${vm}" has no guest channel: define it with guestChannel: true (workspace hardware.guestChannel).`,
          { details: { vm, expected: 'guestChannel: true' } },
        );
      }
      if (!facts.agentSocket) {
        throw new HostError(`libvirt did not report the guest channel's socket for VM "${vm}".`, { details: { vm } });
      }
      return facts.agentSocket;
    });
    if (options.signal?.aborted) throw new CancelledError('Opening the guest channel was cancelled.');
    if (this.ctx.uri.remote) {
      if (!isSshTransport(this.ctx.uri)) {
        throw new HostError(
          `The guest channel of a VM on ${this.ctx.uri.uri} can only be reached over SSH (qemu+ssh://, qemu+libssh://).`,
          { details: { vm, uri: this.ctx.uri.uri } },
        );
      }
      return openRemoteUnixSocket(this.ctx.uri, socketPath, options.signal);
    }
    return openLocalSocket(socketPath, vm, options.signal);
  }
}

function openLocalSocket(path: string, vm: string, signal?: AbortSignal): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    const onAbort = (): void => {
      socket.destroy();
      reject(new CancelledError('Opening the guest channel was cancelled.'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () => {
      signal?.removeEventListener('abort', onAbort);
      resolve(socket);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      signal?.removeEventListener('abort', onAbort);
      reject(
        new HostError(
          `Cannot open the guest channel of VM "${vm}" at ${path}: ${err.message}. Opening it needs root or the libvirt-qemu group.`,
          {
            cause: err,
            details: { vm, socket: path, code: err.code },
          },
        ),
      );
    });
  });
}
