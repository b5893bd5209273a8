import { read, write, open as openFd, constants } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { Duplex } from 'node:stream';

/** Where the agent's channel is. */
export type ChannelTarget =
  | { readonly kind: 'device'; readonly path: string }
  | { readonly kind: 'socket'; readonly path: string }
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number };

/** Options of {@link findChannel}. */
export interface FindChannelOptions {
  /** The virtio-serial port name (`org.tandem.agent.0`). */
  readonly port: string;
  readonly platform?: NodeJS.Platform;
  /** Roots of sysfs and devfs (tests point them at a fake tree). */
  readonly sysDir?: string;
  readonly devDir?: string;
}

/**
 * Finds the virtio-serial port named `port`. Linux: the entry of /sys/class/virtio-ports whose
 * `name` file holds it, opened as /dev/<entry>; Windows: the virtio-serial driver's named pipe
 * `\\.\Global\<port>` (a device, as qemu-ga opens it). Returns a reason instead of throwing when it is not there (the virtio
 * modules may still be loading).
 *
 * @example
 * ```ts
 * const found = await findChannel({ port: 'org.tandem.agent.0' });
 * if ('reason' in found) console.error(found.reason);
 * ```
 */
export async function findChannel(options: FindChannelOptions): Promise<ChannelTarget | { reason: string }> {
  const platform = options.platform ?? process.platform;
  // vioser's port is a device opened with CreateFile (as qemu-ga does), not a named-pipe server.
  if (platform === 'win32') return { kind: 'device', path: `\\\\.\\Global\\${options.port}` };
  const classDir = join(options.sysDir ?? '/sys', 'class', 'virtio-ports');
  let entries: string[];
  try {
    entries = await readdir(classDir);
  } catch {
    return { reason: `${classDir} does not exist: is the virtio_console module loaded?` };
  }
  const names: string[] = [];
  for (const entry of entries.sort()) {
    let name: string;
    try {
      name = (await readFile(join(classDir, entry, 'name'), 'utf8')).trim();
    } catch {
      continue;
    }
    names.push(`${entry}=${name || '(unnamed)'}`);
    if (name === options.port) {
      const path = join(options.devDir ?? '/dev', entry);
      const s = await stat(path).catch(() => undefined);
      if (!s) return { reason: `the port ${options.port} is ${entry}, but ${path} does not exist yet` };
      return { kind: s.isSocket() ? 'socket' : 'device', path };
    }
  }
  return {
    reason: `no virtio-serial port is named ${options.port} (found: ${names.length > 0 ? names.join(', ') : 'none'}); does the VM have the Tandem guest channel?`,
  };
}

/** Parses `--tcp HOST:PORT`. */
export function parseTcpTarget(text: string): ChannelTarget {
  const m = /^(.*):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !m[1] || port < 1 || port > 65535) throw new Error(`--tcp expects HOST:PORT, not "${text}"`);
  return { kind: 'tcp', host: m[1].replace(/^\[(.*)\]$/, '$1'), port };
}

/**
 * A source of streams to the host: each `next()` gives the stream of one host conversation.
 * A socket is reconnected; a virtio-serial device is opened once and kept open, because a
 * virtio port gives EOF (read returns 0) while the host side is closed, a write blocks until the
 * host comes back, and only one process may hold the port: closing and reopening while a
 * blocked write still holds it would fail with EBUSY.
 */
export interface Channel {
  next(): Promise<Duplex>;
  close(): void;
}

/** Opens the channel at `target`. */
export function openChannel(target: ChannelTarget): Channel {
  return target.kind === 'device' ? new DeviceChannel(target.path) : new SocketChannel(target);
}

class SocketChannel implements Channel {
  #socket: Duplex | undefined;
  constructor(readonly target: Exclude<ChannelTarget, { kind: 'device' }>) {}

  next(): Promise<Duplex> {
    return new Promise((resolve, reject) => {
      const socket =
        this.target.kind === 'tcp' ? connect(this.target.port, this.target.host) : connect(this.target.path);
      socket.once('connect', () => {
        socket.removeAllListeners('error');
        socket.on('error', () => undefined);
        this.#socket = socket;
        resolve(socket);
      });
      socket.once('error', (err) => reject(err));
    });
  }

  close(): void {
    this.#socket?.destroy();
  }
}

class DeviceChannel implements Channel {
  #fd: number | undefined;
  #opening: Promise<number> | undefined;
  #reading = false;
  #current: Duplex | undefined;
  #writes: Promise<void> = Promise.resolve();
  readonly #buf = Buffer.alloc(64 * 1024);

  constructor(readonly path: string) {}

  #open(): Promise<number> {
    if (this.#fd !== undefined) return Promise.resolve(this.#fd);
    this.#opening ??= new Promise<number>((resolve, reject) => {
      openFd(this.path, constants.O_RDWR | constants.O_NOCTTY, (err, fd) => {
        this.#opening = undefined;
        if (err) reject(err);
        else {
          this.#fd = fd;
          resolve(fd);
        }
      });
    });
    return this.#opening;
  }

  /**
   * One read at a time, and its bytes go to the conversation current when they arrive: a read
   * still in flight when a conversation ended (an error, a close) feeds the next one.
   */
  #pump(): void {
    const fd = this.#fd;
    if (this.#reading || fd === undefined || !this.#current || this.#current.destroyed) return;
    this.#reading = true;
    read(fd, this.#buf, 0, this.#buf.length, null, (err, bytesRead) => {
      this.#reading = false;
      const current = this.#current;
      if (!current || current.destroyed) return;
      if (err) {
        current.destroy(err);
        return;
      }
      // 0 bytes: the host side is closed (EOF/EPOLLHUP); this conversation is over.
      if (bytesRead === 0) current.push(null);
      else current.push(Buffer.from(this.#buf.subarray(0, bytesRead)));
    });
  }

  async next(): Promise<Duplex> {
    const fd = await this.#open();
    const stream: Duplex = new Duplex({
      read: () => this.#pump(),
      write: (chunk: Buffer, _enc, cb) => {
        // One write at a time across conversations: a write to a port whose host is away blocks a
        // thread of the pool until the host is back, and the pool must keep a thread for reads.
        this.#writes = this.#writes.then(
          () =>
            new Promise<void>((done) => {
              if (stream.destroyed) {
                done();
                cb();
                return;
              }
              const writeAll = (offset: number): void => {
                write(fd, chunk, offset, chunk.length - offset, null, (err, n) => {
                  if (err) {
                    done();
                    cb(err);
                  } else if (offset + n < chunk.length) writeAll(offset + n);
                  else {
                    done();
                    cb();
                  }
                });
              };
              writeAll(0);
            }),
        );
      },
    });
    stream.once('end', () => stream.destroy());
    this.#current = stream;
    return stream;
  }

  close(): void {
    this.#current?.destroy();
  }
}
