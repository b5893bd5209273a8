// A newc ("070701") cpio writer, the format the Linux kernel unpacks an initramfs from, gzipped.
// Written here because the `cpio` package is not on a new machine. Entries keep a fixed owner
// (root) and time, so the same inputs give the same archive.
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { createGzip } from 'node:zlib';

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

/** A newc archive written through gzip to `path`. Call `dir`, `file`, `symlink`, `chardev`, then `close`. */
export function newcWriter(path, { mtime = 0, level = 6 } = {}) {
  const gzip = createGzip({ level });
  const out = createWriteStream(path);
  gzip.pipe(out);
  let ino = 1;
  let written = 0;
  const seen = new Set();

  async function push(buf) {
    written += buf.length;
    if (!gzip.write(buf)) await once(gzip, 'drain');
  }
  const pad = (n) => Buffer.alloc((4 - (n % 4)) % 4);
  const hex = (n) => n.toString(16).padStart(8, '0');

  async function entry(name, mode, data = Buffer.alloc(0), rdev = [0, 0]) {
    const nameBuf = Buffer.from(name + '\0');
    const fields = [
      ino++,
      mode,
      0,
      0,
      (mode & S_IFDIR) === S_IFDIR ? 2 : 1,
      mtime,
      data.length,
      0,
      0,
      rdev[0],
      rdev[1],
      nameBuf.length,
      0,
    ];
    const header = Buffer.from('070701' + fields.map(hex).join(''), 'latin1');
    await push(Buffer.concat([header, nameBuf, pad(header.length + nameBuf.length)]));
    if (data.length > 0) {
      await push(data);
      await push(pad(data.length));
    }
  }

  /** Adds the directory and its parents (once each). */
  async function dir(name, perm = 0o755) {
    const parts = name.split('/').filter(Boolean);
    for (let i = 1; i <= parts.length; i++) {
      const p = parts.slice(0, i).join('/');
      if (seen.has(p)) continue;
      seen.add(p);
      await entry(p, S_IFDIR | perm);
    }
  }
  const parent = (name) => name.split('/').filter(Boolean).slice(0, -1).join('/');

  return {
    dir,
    async file(name, data, perm = 0o644) {
      await dir(parent(name));
      await entry(name.replace(/^\/+/, ''), S_IFREG | perm, Buffer.isBuffer(data) ? data : Buffer.from(data));
    },
    async symlink(name, target) {
      await dir(parent(name));
      await entry(name.replace(/^\/+/, ''), S_IFLNK | 0o777, Buffer.from(target));
    },
    async chardev(name, major, minor, perm = 0o600) {
      await dir(parent(name));
      await entry(name.replace(/^\/+/, ''), S_IFCHR | perm, Buffer.alloc(0), [major, minor]);
    },
    /** Writes the trailer and finishes the file; resolves with the uncompressed size. */
    async close() {
      await entry('TRAILER!!!', 0);
      gzip.end();
      await once(out, 'close');
      return written;
    },
  };
}
