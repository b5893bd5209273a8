import { HostError } from '@tandem/core';
import { BINDING_FIX, loadBinding, type NativeHypervisor } from './binding.js';
import { classifyLibvirtMessage } from './errors.js';

/** Told what each call saw of libvirtd: {@link ConnectionWatch} implements it. */
export interface ConnectionObserver {
  /** libvirtd could not be reached (the connection failed or broke). */
  lost(reason: string): void;
  /** A call reached libvirtd. */
  ok(): void;
}

/**
 * One libvirt connection through the binding, opened on first use. When libvirtd goes away
 * the connection is dropped and the next call opens a new one; read-only calls retry once.
 * An observer hears every loss and every call that got through.
 */
export class LibvirtConnection {
  #hv: NativeHypervisor | undefined;
  #opening: Promise<NativeHypervisor> | undefined;

  constructor(
    readonly uri: string,
    readonly observer?: ConnectionObserver,
  ) {}

  /** The open connection (opening it if needed). Throws HostError when it cannot be opened. */
  async get(): Promise<NativeHypervisor> {
    if (this.#hv) return this.#hv;
    this.#opening ??= this.#open().finally(() => {
      this.#opening = undefined;
    });
    return this.#opening;
  }

  async #open(): Promise<NativeHypervisor> {
    const binding = await loadBinding();
    if (!binding.ok) {
      throw new HostError(`The libvirt binding (@unraid/libvirt) is not available: ${binding.reason}. ${BINDING_FIX}`, {
        details: { uri: this.uri, reason: binding.reason },
      });
    }
    const hv = binding.create(this.uri);
    try {
      await hv.connectOpen();
    } catch (err) {
      const message = (err as Error).message;
      if (isConnectionLoss(err)) this.observer?.lost(message);
      throw new HostError(
        `Cannot connect to libvirt at ${this.uri}: ${message}. Start libvirtd (systemctl start libvirtd, or /usr/sbin/libvirtd -d) or check the URI.`,
        { cause: err, retryable: true, details: { uri: this.uri, libvirtMessage: message, output: message } },
      );
    }
    this.#hv = hv;
    return hv;
  }

  /**
   * Runs `fn` on the connection. A lost connection is dropped; with `idempotent` the call
   * is retried once on a fresh connection. Other errors pass through unchanged.
   */
  async use<T>(fn: (hv: NativeHypervisor) => Promise<T>, idempotent: boolean): Promise<T> {
    const hv = await this.get();
    try {
      const result = await fn(hv);
      this.observer?.ok();
      return result;
    } catch (err) {
      if (!isConnectionLoss(err)) {
        // libvirtd answered, if only to refuse.
        this.observer?.ok();
        throw err;
      }
      this.#drop(hv);
      if (!idempotent) {
        this.observer?.lost((err as Error).message);
        throw err;
      }
      // libvirtd may have restarted since the connection opened: one fresh try tells.
      try {
        const result = await fn(await this.get());
        this.observer?.ok();
        return result;
      } catch (again) {
        if (isConnectionLoss(again)) this.observer?.lost((again as Error).message);
        throw again;
      }
    }
  }

  #drop(hv: NativeHypervisor): void {
    if (this.#hv !== hv) return;
    this.#hv = undefined;
    hv.connectClose().catch(() => undefined);
  }

  /** Closes the connection. */
  async close(): Promise<void> {
    const hv = this.#hv;
    this.#hv = undefined;
    await hv?.connectClose().catch(() => undefined);
  }
}

/** True when an error from the binding means the connection to libvirtd is gone. */
export function isConnectionLoss(err: unknown): boolean {
  return err instanceof Error && classifyLibvirtMessage(err.message) === 'connection';
}
