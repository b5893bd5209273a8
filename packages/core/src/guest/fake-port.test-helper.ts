import { type Duplex, duplexPair } from 'node:stream';
import type { GuestChannelOps } from '../adapter/types.js';

/**
 * A virtio-serial port as QEMU presents it, in memory: one host connection at a time (the unix
 * socket), and a guest side that an agent opens and closes on its own. Closing the host side
 * gives the guest EOF; an agent that goes away leaves the host connection open and silent,
 * as a reboot does.
 */
export class FakeVirtioPort implements GuestChannelOps {
  #host: Duplex | undefined;
  #guest: Duplex | undefined;
  opens = 0;
  /** When set, open() fails with it. */
  failOpen: Error | undefined;

  async open(): Promise<Duplex> {
    if (this.failOpen) throw this.failOpen;
    if (this.#host && !this.#host.destroyed) throw new Error('QEMU accepts one host connection at a time');
    const [outer, inner] = duplexPair();
    this.opens++;
    this.#host = inner;
    inner.on('data', (b: Buffer) => this.#guest?.write(b));
    inner.on('close', () => {
      if (this.#host === inner) this.#host = undefined;
      this.#guest?.end();
    });
    inner.on('end', () => inner.destroy());
    inner.on('error', () => undefined);
    outer.on('end', () => outer.destroy());
    outer.on('close', () => inner.destroy());
    return outer;
  }

  /** The agent opens the port: the stream it reads and writes. */
  attachGuest(): Duplex {
    const [outer, inner] = duplexPair();
    this.#guest = inner;
    inner.on('data', (b: Buffer) => this.#host?.write(b));
    inner.on('end', () => inner.destroy());
    inner.on('error', () => undefined);
    outer.on('end', () => outer.destroy());
    outer.on('close', () => inner.destroy());
    return outer;
  }

  /** The agent is gone without a word (killed, or the guest rebooted). */
  detachGuest(): void {
    const g = this.#guest;
    this.#guest = undefined;
    g?.destroy();
  }

  /** Bytes straight from the guest side, as a broken or hostile agent would write them. */
  injectFromGuest(bytes: Uint8Array): void {
    this.#host?.write(bytes);
  }

  /** QEMU drops the host connection (the host end sees EOF). */
  dropHost(): void {
    this.#host?.end();
  }
}
