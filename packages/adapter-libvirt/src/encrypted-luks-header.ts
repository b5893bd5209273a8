import { hash, pbkdf2, randomBytes, randomUUID } from 'node:crypto';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { promisify } from 'node:util';
import { InvalidInputError } from '@tandem/core';
import { wipe, XtsCipher, XTS_SECTOR_BYTES } from '@tandem/core/crypto';
import { luksPassphrase, runQemuImg } from './encryption.js';

const pbkdf2Async = promisify(pbkdf2);

/**
 * PBKDF2-SHA256 iterations of the key slot and of the master key digest in the LUKS1 headers
 * Tandem writes: cryptsetup's floor for LUKS1. The passphrase is a disk key (256 random bits), not
 * a password, so iterations buy nothing against guessing; qemu-img's calibration (about 1 s of CPU
 * per image whatever `iter-time` says) is what this replaces.
 */
export const LUKS_ITERATIONS = 1000;

const MASTER_KEY_BYTES = 64; // aes-256-xts: two 256-bit keys
const STRIPES = 4000;
const SALT_BYTES = 32;
const DIGEST_BYTES = 20;
const KEY_SLOTS = 8;
/** Key material of one slot, in sectors: 64 x 4000 bytes, aligned to 4096 bytes (QEMU's layout). */
const SLOT_SECTORS = Math.ceil(Math.ceil((MASTER_KEY_BYTES * STRIPES) / XTS_SECTOR_BYTES) / 8) * 8;
/** The first slot's key material starts at 4096 bytes; the payload after the eighth slot. */
const FIRST_SLOT_SECTOR = 8;
const PAYLOAD_SECTORS = FIRST_SLOT_SECTOR + KEY_SLOTS * SLOT_SECTORS;
/** The LUKS region's length in a qcow2 (the crypto header extension's length): up to the payload. */
export const LUKS_REGION_BYTES = PAYLOAD_SECTORS * XTS_SECTOR_BYTES;

const QCOW2_MAGIC = 0x514649fb;
const EXT_END = 0;
const EXT_CRYPTO = 0x0537be77;
const CRYPT_LUKS = 2;

/** LUKS1's diffusion (as cryptsetup's AF_split): each digest-sized block j becomes SHA-256(be32(j) || block). */
function diffuse(d: Buffer, scratch: Buffer): void {
  for (let j = 0, at = 0; at < d.length; j++, at += 32) {
    const n = Math.min(32, d.length - at);
    // One-shot hash: a Hash object per block costs three times as much, 8000 times per image.
    scratch.writeUInt32BE(j, 0);
    d.copy(scratch, 4, at, at + n);
    const h = hash('sha256', scratch.subarray(0, 4 + n), 'buffer');
    h.copy(d, at, 0, n);
    wipe(h);
  }
}

/**
 * The anti-forensic split of LUKS1 (AFsplit): `stripes - 1` random stripes, the last one the key
 * XOR the diffused XOR of the others, so that `afMerge` of `@tandem/core/crypto` gives the key back.
 */
export function afSplit(key: Uint8Array, stripes: number): Buffer {
  const n = key.length;
  const out = randomBytes(n * stripes);
  const d = Buffer.alloc(n);
  const scratch = Buffer.alloc(36);
  for (let s = 0; s < stripes - 1; s++) {
    for (let i = 0; i < n; i++) d[i]! ^= out[s * n + i]!;
    diffuse(d, scratch);
  }
  for (let i = 0; i < n; i++) out[(stripes - 1) * n + i] = d[i]! ^ key[i]!;
  wipe(d, scratch);
  return out;
}

function field(b: Buffer, at: number, length: number, text: string): void {
  b.fill(0, at, at + length);
  b.write(text, at, length, 'latin1');
}

/**
 * A LUKS1 header region (aes, xts-plain64, sha256, a 512-bit master key) with one active key slot
 * opened by `passphrase`, laid out as qemu-img lays out the LUKS header of a qcow2: the slots'
 * key material at 4096 + k x 258048 bytes, 4000 stripes each, the payload (unused in a qcow2) after
 * the last slot. The master key is drawn here, used, and wiped before this returns.
 */
export async function luks1Region(passphrase: Uint8Array | string, iterations = LUKS_ITERATIONS): Promise<Buffer> {
  if (!Number.isSafeInteger(iterations) || iterations < 1 || iterations > 0xffffffff)
    throw new InvalidInputError(`LUKS iterations must be a whole number from 1 to 2^32-1, not ${iterations}.`, {
      details: { iterations, expected: '1..4294967295' },
    });
  const secret = Buffer.from(passphrase);
  const master = randomBytes(MASTER_KEY_BYTES);
  const mkSalt = randomBytes(SALT_BYTES);
  const slotSalt = randomBytes(SALT_BYTES);
  let mkDigest: Buffer | undefined;
  let slotKey: Buffer | undefined;
  let material: Buffer | undefined;
  try {
    mkDigest = await pbkdf2Async(master, mkSalt, iterations, DIGEST_BYTES, 'sha256');
    slotKey = await pbkdf2Async(secret, slotSalt, iterations, MASTER_KEY_BYTES, 'sha256');
    material = afSplit(master, STRIPES);
    const region = Buffer.alloc(LUKS_REGION_BYTES);
    region.set([0x4c, 0x55, 0x4b, 0x53, 0xba, 0xbe], 0); // "LUKS\xba\xbe"
    region.writeUInt16BE(1, 6);
    field(region, 8, 32, 'aes');
    field(region, 40, 32, 'xts-plain64');
    field(region, 72, 32, 'sha256');
    region.writeUInt32BE(PAYLOAD_SECTORS, 104);
    region.writeUInt32BE(MASTER_KEY_BYTES, 108);
    mkDigest.copy(region, 112);
    mkSalt.copy(region, 132);
    region.writeUInt32BE(iterations, 164);
    field(region, 168, 40, randomUUID());
    for (let k = 0; k < KEY_SLOTS; k++) {
      const at = 208 + k * 48;
      region.writeUInt32BE(k === 0 ? 0x00ac71f3 : 0x0000dead, at);
      if (k === 0) {
        region.writeUInt32BE(iterations, at + 4);
        slotSalt.copy(region, at + 8);
      }
      region.writeUInt32BE(FIRST_SLOT_SECTOR + k * SLOT_SECTORS, at + 40);
      region.writeUInt32BE(STRIPES, at + 44);
    }
    const padded = Buffer.alloc(SLOT_SECTORS * XTS_SECTOR_BYTES);
    material.copy(padded);
    {
      using xts = new XtsCipher(slotKey);
      const sealed = xts.encrypt(0, padded);
      sealed.copy(region, FIRST_SLOT_SECTOR * XTS_SECTOR_BYTES);
    }
    wipe(padded);
    return region;
  } finally {
    wipe(secret, master, mkSalt, slotSalt, mkDigest, slotKey, material);
  }
}

/** The writes that make an unencrypted qcow2 a LUKS one (see planPatch). */
type Patch = { readonly header: Buffer; readonly refcounts: { at: number; bytes: Buffer }; readonly offset: number };

/**
 * Plans turning the unencrypted qcow2 in `fh` (as `qemu-img create` makes it) into a LUKS one:
 * the header's crypt method, a crypto header extension, the LUKS region in fresh clusters at the
 * end of the file and their refcounts. A layout this does not know (not version 3, refcounts not
 * 16 bits, no refcount block where the new clusters fall, no room for the extension) is the
 * reason it returns; the caller then lets qemu-img make the image.
 */
async function planPatch(fh: FileHandle, fileSize: number): Promise<Patch | string> {
  const head = Buffer.alloc(4096);
  await fh.read(head, 0, head.length, 0);
  if (head.readUInt32BE(0) !== QCOW2_MAGIC || head.readUInt32BE(4) !== 3) return 'not a qcow2 version 3 image';
  const clusterBits = head.readUInt32BE(20);
  const cluster = 2 ** clusterBits;
  if (head.readUInt32BE(32) !== 0) return 'already encrypted';
  if (head.readUInt32BE(96) !== 4) return `refcount order ${head.readUInt32BE(96)}, not 4`;
  const headerLength = head.readUInt32BE(100);
  const refTable = Number(head.readBigUInt64BE(48));
  // The extensions: read, the crypto one inserted before the end marker.
  const exts: Buffer[] = [];
  let at = headerLength;
  for (;;) {
    if (at + 8 > head.length) return 'header extensions run past 4096 bytes';
    const type = head.readUInt32BE(at);
    const length = head.readUInt32BE(at + 4);
    if (type === EXT_END) break;
    if (type === EXT_CRYPTO) return 'a crypto header extension is already there';
    const total = 8 + Math.ceil(length / 8) * 8;
    exts.push(head.subarray(at, at + total));
    at += total;
  }
  const offset = Math.ceil(fileSize / cluster) * cluster;
  const crypto = Buffer.alloc(24);
  crypto.writeUInt32BE(EXT_CRYPTO, 0);
  crypto.writeUInt32BE(16, 4);
  crypto.writeBigUInt64BE(BigInt(offset), 8);
  crypto.writeBigUInt64BE(BigInt(LUKS_REGION_BYTES), 16);
  const extensions = Buffer.concat([exts[0] ?? Buffer.alloc(0), crypto, ...exts.slice(1), Buffer.alloc(8)]);
  // An overlay's backing file name follows the extensions: it moves behind the longer list.
  const backingAt = Number(head.readBigUInt64BE(8));
  const backingLength = head.readUInt32BE(16);
  if (backingAt !== 0 && backingAt < at + 8) return 'the backing file name sits inside the header extensions';
  const backing = Buffer.from(head.subarray(backingAt, backingAt + backingLength));
  if (backing.length !== backingLength || headerLength + extensions.length + backing.length > head.length)
    return 'no room for the crypto header extension';
  const header = Buffer.from(head);
  header.writeUInt32BE(CRYPT_LUKS, 32);
  header.fill(0, headerLength);
  extensions.copy(header, headerLength);
  if (backingAt !== 0) {
    header.writeBigUInt64BE(BigInt(headerLength + extensions.length), 8);
    backing.copy(header, headerLength + extensions.length);
  }
  // The new clusters' refcounts (16 bits each): all in one refcount block qemu-img already made.
  const perBlock = cluster / 2;
  const first = offset / cluster;
  const count = Math.ceil(LUKS_REGION_BYTES / cluster);
  if (Math.floor(first / perBlock) !== Math.floor((first + count - 1) / perBlock))
    return 'the new clusters straddle two refcount blocks';
  const entry = Buffer.alloc(8);
  await fh.read(entry, 0, 8, refTable + Math.floor(first / perBlock) * 8);
  const block = Number(entry.readBigUInt64BE(0) & 0x00fffffffffffe00n);
  if (block === 0) return 'no refcount block covers the new clusters';
  const refs = Buffer.alloc(count * 2);
  for (let i = 0; i < count; i++) refs.writeUInt16BE(1, i * 2);
  return { header, refcounts: { at: block + (first % perBlock) * 2, bytes: refs }, offset };
}

/**
 * Creates a LUKS qcow2 of `size` bytes at `path` without qemu-img's PBKDF2 calibration: qemu-img
 * makes the unencrypted qcow2 (`extraArgs` after `create -f qcow2`, e.g. `-o data_file=...` or
 * `-u -b BASE -F qcow2`; no key involved), then
 * Tandem adds the LUKS1 header it wrote itself ({@link luks1Region}, {@link LUKS_ITERATIONS}),
 * with the crypto header extension and the refcounts of its clusters. QEMU 7.2's qcow2 with LUKS
 * is byte for byte this (checked in `encrypted-luks-header.integ.test.ts`). The image is made
 * beside `path` and renamed into place whole. Returns false (and leaves nothing) when qemu-img
 * laid the qcow2 out in a way this does not know; the caller then creates it with qemu-img's
 * own LUKS.
 */
export async function createLuksQcow2(
  qemuImg: string,
  path: string,
  size: number,
  key: Uint8Array,
  extraArgs: readonly string[] = [],
): Promise<boolean> {
  const tmp = `${path}.tandem-creating`;
  try {
    await runQemuImg(qemuImg, ['create', '-q', '-f', 'qcow2', ...extraArgs, tmp, String(size)]);
    const fh = await open(tmp, 'r+');
    try {
      const plan = await planPatch(fh, (await fh.stat()).size);
      if (typeof plan === 'string') return false;
      const region = await luks1Region(luksPassphrase(key));
      try {
        await fh.write(region, 0, region.length, plan.offset);
      } finally {
        wipe(region);
      }
      const cluster = 2 ** plan.header.readUInt32BE(20);
      await fh.truncate(Math.ceil((plan.offset + LUKS_REGION_BYTES) / cluster) * cluster);
      await fh.write(plan.refcounts.bytes, 0, plan.refcounts.bytes.length, plan.refcounts.at);
      await fh.write(plan.header, 0, plan.header.length, 0);
      await fh.datasync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
    return true;
  } finally {
    await rm(tmp, { force: true });
  }
}
