import { connect, type Socket } from 'node:net';
import { HostError, IntegrityError } from '@tandem/core';

const NBDMAGIC = Buffer.from('NBDMAGIC');
const IHAVEOPT = Buffer.from('IHAVEOPT');
const FLAG_FIXED_NEWSTYLE = 1;
const FLAG_NO_ZEROES = 2;
const OPT_EXPORT_NAME = 1;
const REQUEST_MAGIC = 0x25609513;
const SIMPLE_REPLY_MAGIC = 0x67446698;
const CMD_READ = 0;
const CMD_WRITE = 1;
const CMD_DISC = 2;
const CMD_FLUSH = 3;
/** Largest request sent; qemu-nbd takes up to 32 MiB. */
export const NBD_MAX_REQUEST = 8 * 1024 * 1024;

interface Pending {
  readonly type: number;
  readonly offset: number;
  readonly length: number;
  resolve(data: Buffer | undefined): void;
  reject(err: Error): void;
}

/**
 * A minimal NBD client (fixed newstyle handshake, simple replies) for a qemu-nbd serving an
 * encrypted image over a unix socket: plaintext moves between Tandem and QEMU through the
 * kernel's socket buffers only, never through a file. Requests may be in flight together (the
 * protocol matches replies by cookie), so Tandem decrypts the next range while QEMU encrypts the
 * last; QEMU orders overlapping requests itself.
 */
export class NbdClient {
  #socket: Socket;
  #buffered: Buffer[] = [];
  #bufferedBytes = 0;
  #waiter: (() => void) | undefined;
  #error: Error | undefined;
  #cookie = 0n;
  #pending = new Map<bigint, Pending>();
  #reading = false;
  #inflight = new Set<Promise<unknown>>();
  size = 0;

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.on('data', (d: Buffer) => {
      this.#buffered.push(d);
      this.#bufferedBytes += d.length;
      this.#waiter?.();
    });
    const fail = (err: Error): void => {
      this.#error ??= err;
      this.#waiter?.();
      for (const p of this.#pending.values()) p.reject(this.#error);
      this.#pending.clear();
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new HostError('The NBD connection to qemu-nbd closed.')));
  }

  /** Connects to the export on `path` and negotiates. */
  static async connect(path: string): Promise<NbdClient> {
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = connect(path);
      s.once('connect', () => resolve(s));
      s.once('error', reject);
    });
    const client = new NbdClient(socket);
    try {
      const hello = await client.#take(18);
      if (!hello.subarray(0, 8).equals(NBDMAGIC) || !hello.subarray(8, 16).equals(IHAVEOPT))
        throw new HostError('qemu-nbd did not answer as an NBD server (fixed newstyle).');
      const serverFlags = hello.readUInt16BE(16);
      const noZeroes = (serverFlags & FLAG_NO_ZEROES) !== 0;
      const clientFlags = Buffer.alloc(4);
      clientFlags.writeUInt32BE(FLAG_FIXED_NEWSTYLE | (noZeroes ? FLAG_NO_ZEROES : 0));
      const opt = Buffer.alloc(16);
      IHAVEOPT.copy(opt, 0);
      opt.writeUInt32BE(OPT_EXPORT_NAME, 8);
      opt.writeUInt32BE(0, 12);
      socket.write(Buffer.concat([clientFlags, opt]));
      const info = await client.#take(10 + (noZeroes ? 0 : 124));
      client.size = Number(info.readBigUInt64BE(0));
      return client;
    } catch (err) {
      socket.destroy();
      throw err;
    }
  }

  /** Reads `length` bytes at `offset`. */
  async read(offset: number, length: number): Promise<Buffer> {
    const parts: Promise<Buffer | undefined>[] = [];
    for (let done = 0; done < length; done += NBD_MAX_REQUEST)
      parts.push(this.#request(CMD_READ, offset + done, Math.min(NBD_MAX_REQUEST, length - done)));
    const got = await Promise.all(parts);
    return got.length === 1 ? got[0]! : Buffer.concat(got as Buffer[], length);
  }

  /** Writes `data` at `offset`; resolves when the server has taken it. */
  async write(offset: number, data: Uint8Array): Promise<void> {
    const parts: Promise<unknown>[] = [];
    for (let done = 0; done < data.length; done += NBD_MAX_REQUEST) {
      const n = Math.min(NBD_MAX_REQUEST, data.length - done);
      parts.push(this.#request(CMD_WRITE, offset + done, n, data.subarray(done, done + n)));
    }
    await Promise.all(parts);
  }

  /** Asks the server to put what was written on disk (after every write before it was answered). */
  async flush(): Promise<void> {
    await this.#request(CMD_FLUSH, 0, 0);
  }

  /** Disconnects (the server then exits, as qemu-nbd does without --persistent). */
  async close(): Promise<void> {
    await Promise.allSettled([...this.#inflight]);
    if (!this.#socket.destroyed) {
      this.#socket.write(header(CMD_DISC, this.#cookie++, 0, 0));
      this.#socket.end();
    }
  }

  #request(type: number, offset: number, length: number, data?: Uint8Array): Promise<Buffer | undefined> {
    if (this.#error) return Promise.reject(this.#error);
    const cookie = this.#cookie++;
    const done = new Promise<Buffer | undefined>((resolve, reject) => {
      this.#pending.set(cookie, { type, offset, length, resolve, reject });
    });
    this.#inflight.add(done);
    void done.catch(() => undefined).finally(() => this.#inflight.delete(done));
    this.#socket.write(header(type, cookie, offset, length));
    if (data) this.#socket.write(data);
    if (!this.#reading) void this.#readReplies();
    return done;
  }

  /** Reads replies while requests are pending, handing each to its request by cookie. */
  async #readReplies(): Promise<void> {
    this.#reading = true;
    try {
      while (this.#pending.size > 0 && !this.#error) {
        const reply = await this.#take(16);
        const cookie = reply.readBigUInt64BE(8);
        const p = this.#pending.get(cookie);
        if (reply.readUInt32BE(0) !== SIMPLE_REPLY_MAGIC || !p)
          throw new IntegrityError('qemu-nbd sent a reply Tandem cannot read (not a simple reply to a request).');
        this.#pending.delete(cookie);
        const error = reply.readUInt32BE(4);
        if (error !== 0) {
          p.reject(
            new HostError(
              `qemu-nbd refused a ${p.type === CMD_READ ? 'read' : p.type === CMD_WRITE ? 'write' : 'flush'} at ${p.offset} (NBD error ${error}).`,
              { details: { nbdError: error, offset: p.offset, length: p.length } },
            ),
          );
          // A refused read still has no payload in a simple reply.
          continue;
        }
        p.resolve(p.type === CMD_READ ? await this.#take(p.length) : undefined);
      }
    } catch (err) {
      this.#error ??= err as Error;
      for (const p of this.#pending.values()) p.reject(this.#error);
      this.#pending.clear();
    } finally {
      this.#reading = false;
    }
  }

  async #take(n: number): Promise<Buffer> {
    while (this.#bufferedBytes < n) {
      if (this.#error) throw this.#error;
      await new Promise<void>((resolve) => (this.#waiter = resolve));
      this.#waiter = undefined;
    }
    const all = this.#buffered.length === 1 ? this.#buffered[0]! : Buffer.concat(this.#buffered);
    const out = Buffer.from(all.subarray(0, n));
    const rest = all.subarray(n);
    this.#buffered = rest.length > 0 ? [rest] : [];
    this.#bufferedBytes = rest.length;
    return out;
  }
}

function header(type: number, cookie: bigint, offset: number, length: number): Buffer {
  const h = Buffer.alloc(28);
  h.writeUInt32BE(REQUEST_MAGIC, 0);
  h.writeUInt16BE(0, 4);
  h.writeUInt16BE(type, 6);
  h.writeBigUInt64BE(cookie, 8);
  h.writeBigUInt64BE(BigInt(offset), 16);
  h.writeUInt32BE(length, 24);
  return h;
}
