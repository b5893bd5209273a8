import { open } from 'node:fs/promises';
import { IntegrityError } from '@tandem/core';

const QCOW2_MAGIC = 0x514649fb; // "QFI\xfb"
const EXT_END = 0;
const EXT_CRYPTO = 0x0537be77;
const EXT_DATA_FILE = 0x44415441;

/** What Tandem reads from a qcow2 header (version 3) itself, without QEMU. */
export interface Qcow2Facts {
  readonly clusterBits: number;
  /** The virtual size (what the guest sees), in bytes. */
  readonly size: number;
  /** Where the LUKS header region lies in the qcow2 file (the full disk encryption header extension). */
  readonly crypto?: { readonly offset: number; readonly length: number };
  /** The external data file's name as the header records it. */
  readonly dataFile?: string;
}

/**
 * Reads a qcow2 file's header and its extensions (the qcow2 specification, QEMU's
 * docs/interop/qcow2.txt): cluster size, virtual size, the LUKS header's place (extension
 * 0x0537be77) and the external data file's name (0x44415441).
 */
export async function readQcow2Facts(path: string): Promise<Qcow2Facts> {
  const fh = await open(path, 'r');
  try {
    const head = Buffer.alloc(64 * 1024);
    const { bytesRead } = await fh.read(head, 0, head.length, 0);
    const b = head.subarray(0, bytesRead);
    if (b.length < 104 || b.readUInt32BE(0) !== QCOW2_MAGIC || b.readUInt32BE(4) < 3)
      throw new IntegrityError(`${path} is not a qcow2 version 3 image.`, { details: { path } });
    const clusterBits = b.readUInt32BE(20);
    const size = Number(b.readBigUInt64BE(24));
    const headerLength = b.readUInt32BE(100);
    let crypto: Qcow2Facts['crypto'];
    let dataFile: string | undefined;
    for (let at = headerLength; at + 8 <= b.length;) {
      const type = b.readUInt32BE(at);
      const length = b.readUInt32BE(at + 4);
      if (type === EXT_END) break;
      const data = b.subarray(at + 8, at + 8 + length);
      if (type === EXT_CRYPTO && length >= 16)
        crypto = { offset: Number(data.readBigUInt64BE(0)), length: Number(data.readBigUInt64BE(8)) };
      if (type === EXT_DATA_FILE) dataFile = data.toString('utf8');
      at += 8 + Math.ceil(length / 8) * 8;
    }
    return { clusterBits, size, ...(crypto ? { crypto } : {}), ...(dataFile !== undefined ? { dataFile } : {}) };
  } finally {
    await fh.close();
  }
}

/** Reads `length` bytes at `offset` of a file (the LUKS header region of a qcow2). */
export async function readRegion(path: string, offset: number, length: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const out = Buffer.alloc(length);
    const { bytesRead } = await fh.read(out, 0, length, offset);
    if (bytesRead !== length)
      throw new IntegrityError(`${path} is truncated: its LUKS header region ends early.`, { details: { path } });
    return out;
  } finally {
    await fh.close();
  }
}
