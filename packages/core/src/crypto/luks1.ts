import { createHash, pbkdf2, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import { AuthError, IntegrityError, UnsupportedCapabilityError } from '../errors.js';
import { SecretKey, wipe } from './secret.js';
import { XTS_SECTOR_BYTES, XtsCipher } from './xts.js';

const pbkdf2Async = promisify(pbkdf2);

const MAGIC = Buffer.from([0x4c, 0x55, 0x4b, 0x53, 0xba, 0xbe]); // "LUKS\xba\xbe"
/** Size of the LUKS1 partition header (phdr) with its 8 key slots. */
export const LUKS1_PHDR_BYTES = 592;
const SLOT_ACTIVE = 0x00ac71f3;
const DIGEST_BYTES = 20;

/** One key slot of a LUKS1 header. */
export interface Luks1KeySlot {
  readonly index: number;
  readonly active: boolean;
  readonly iterations: number;
  readonly salt: Buffer;
  /** Where the slot's key material starts, in 512-byte sectors from the header's start. */
  readonly keyMaterialOffset: number;
  readonly stripes: number;
}

/** The public fields of a LUKS1 header (the cryptsetup LUKS1 on-disk format, version 1.2.3). */
export interface Luks1Header {
  readonly cipherName: string;
  readonly cipherMode: string;
  readonly hashSpec: string;
  /** Where the payload starts, in sectors (for a qcow2's LUKS header: unused). */
  readonly payloadOffset: number;
  readonly keyBytes: number;
  readonly mkDigest: Buffer;
  readonly mkDigestSalt: Buffer;
  readonly mkDigestIterations: number;
  readonly uuid: string;
  readonly keySlots: readonly Luks1KeySlot[];
}

function text(b: Buffer, from: number, length: number): string {
  const field = b.subarray(from, from + length);
  const end = field.indexOf(0);
  return field.subarray(0, end < 0 ? length : end).toString('latin1');
}

/**
 * Parses a LUKS1 header (big-endian fields, as the LUKS1 specification lays them out). A header
 * that is not LUKS1 is an IntegrityError.
 *
 * @example
 * ```ts
 * const header = parseLuks1Header(bytes); // bytes: the LUKS region of a volume
 * console.log(header.cipherName, header.cipherMode, header.hashSpec); // aes xts-plain64 sha256
 * ```
 */
export function parseLuks1Header(bytes: Uint8Array): Luks1Header {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  if (b.length < LUKS1_PHDR_BYTES || !b.subarray(0, 6).equals(MAGIC))
    throw new IntegrityError('This is not a LUKS header (no LUKS magic): the image is damaged or not LUKS.');
  const version = b.readUInt16BE(6);
  if (version !== 1)
    throw new UnsupportedCapabilityError(
      `LUKS version ${version} is not supported here; only LUKS1 (what QEMU writes).`,
      {
        details: { version },
      },
    );
  const keySlots: Luks1KeySlot[] = [];
  for (let i = 0; i < 8; i++) {
    const at = 208 + i * 48;
    keySlots.push({
      index: i,
      active: b.readUInt32BE(at) === SLOT_ACTIVE,
      iterations: b.readUInt32BE(at + 4),
      salt: Buffer.from(b.subarray(at + 8, at + 40)),
      keyMaterialOffset: b.readUInt32BE(at + 40),
      stripes: b.readUInt32BE(at + 44),
    });
  }
  return {
    cipherName: text(b, 8, 32),
    cipherMode: text(b, 40, 32),
    hashSpec: text(b, 72, 32),
    payloadOffset: b.readUInt32BE(104),
    keyBytes: b.readUInt32BE(108),
    mkDigest: Buffer.from(b.subarray(112, 132)),
    mkDigestSalt: Buffer.from(b.subarray(132, 164)),
    mkDigestIterations: b.readUInt32BE(164),
    uuid: text(b, 168, 40),
    keySlots,
  };
}

/** Node's name for a LUKS hash spec (LUKS says `sha256`, `sha1`, ...). */
function hashOf(spec: string): string {
  const name = spec.toLowerCase();
  if (!/^(sha1|sha224|sha256|sha384|sha512)$/.test(name))
    throw new UnsupportedCapabilityError(`LUKS hash ${spec} is not supported here (sha1 or sha2 only).`, {
      details: { hash: spec },
    });
  return name;
}

/**
 * The anti-forensic merge of LUKS1 (AFmerge): XOR the stripes together, diffusing with the
 * header's hash between them.
 */
export function afMerge(material: Uint8Array, keyBytes: number, stripes: number, hash: string): Buffer {
  const d = Buffer.alloc(keyBytes);
  for (let s = 0; s < stripes - 1; s++) {
    const stripe = material.subarray(s * keyBytes, (s + 1) * keyBytes);
    for (let i = 0; i < keyBytes; i++) d[i]! ^= stripe[i]!;
    diffuse(d, hash);
  }
  const last = material.subarray((stripes - 1) * keyBytes, stripes * keyBytes);
  for (let i = 0; i < keyBytes; i++) d[i]! ^= last[i]!;
  return d;
}

/** LUKS1's diffusion: each digest-sized block j becomes H(be32(j) || block), cut to its length. */
function diffuse(d: Buffer, hash: string): void {
  const size = createHash(hash).digest().length;
  const counter = Buffer.alloc(4);
  for (let j = 0, at = 0; at < d.length; j++, at += size) {
    const block = d.subarray(at, Math.min(d.length, at + size));
    counter.writeUInt32BE(j);
    const h = createHash(hash).update(counter).update(block).digest();
    h.copy(block, 0, 0, block.length);
    wipe(h);
  }
}

/**
 * Recovers the master key of a LUKS1 volume with `aes` / `xts-plain64` (what QEMU writes by
 * default) from its header region (`bytes`: the header and the key material of its slots, as
 * laid out from the header's start) and a passphrase: for each active key slot, PBKDF2 of the
 * passphrase with the slot's salt and iterations, the slot's key material decrypted with
 * AES-XTS-plain64 under that key (sectors numbered from 0), AF-merged into a candidate, which is
 * the master key when its PBKDF2 digest is the header's `mkDigest`. No maintained npm library
 * reads LUKS1 (see docs/encryption.md), so this follows the LUKS1 on-disk format specification.
 * Another passphrase is an AuthError; nothing is returned then. The key is returned in a
 * {@link SecretKey} (zero it with `dispose`); every intermediate buffer is wiped.
 *
 * @example
 * ```ts
 * using master = await recoverLuks1MasterKey(region, passphrase);
 * master.use((key) => { using xts = new XtsCipher(key); ... });
 * ```
 */
export async function recoverLuks1MasterKey(bytes: Uint8Array, passphrase: Uint8Array | string): Promise<SecretKey> {
  const header = parseLuks1Header(bytes);
  if (header.cipherName !== 'aes' || header.cipherMode !== 'xts-plain64' || header.keyBytes !== 64)
    throw new UnsupportedCapabilityError(
      `LUKS cipher ${header.cipherName}-${header.cipherMode} with a ${header.keyBytes * 8}-bit key is not supported here; Tandem writes aes-xts-plain64 with 512-bit keys (qemu-img's default).`,
      { details: { cipher: header.cipherName, mode: header.cipherMode, keyBytes: header.keyBytes } },
    );
  const hash = hashOf(header.hashSpec);
  const secret = typeof passphrase === 'string' ? Buffer.from(passphrase) : Buffer.from(passphrase);
  try {
    for (const slot of header.keySlots) {
      if (!slot.active) continue;
      const length = header.keyBytes * slot.stripes;
      const from = slot.keyMaterialOffset * XTS_SECTOR_BYTES;
      const sectors = Math.ceil(length / XTS_SECTOR_BYTES);
      if (slot.stripes < 1 || from + sectors * XTS_SECTOR_BYTES > bytes.length)
        throw new IntegrityError(`LUKS key slot ${slot.index} lies outside the header region: the image is damaged.`, {
          details: { slot: slot.index },
        });
      const slotKey = await pbkdf2Async(secret, slot.salt, slot.iterations, header.keyBytes, hash);
      let material: Buffer | undefined;
      let candidate: Buffer | undefined;
      let digest: Buffer | undefined;
      try {
        {
          using xts = new XtsCipher(slotKey);
          material = xts.decrypt(0, bytes.subarray(from, from + sectors * XTS_SECTOR_BYTES));
        }
        candidate = afMerge(material, header.keyBytes, slot.stripes, hash);
        digest = await pbkdf2Async(candidate, header.mkDigestSalt, header.mkDigestIterations, DIGEST_BYTES, hash);
        if (timingSafeEqual(digest, header.mkDigest)) return new SecretKey(candidate, 'LUKS master key');
      } finally {
        wipe(slotKey, material, candidate, digest);
      }
    }
  } finally {
    wipe(secret);
  }
  throw new AuthError('No LUKS key slot of this image opens with the key given: it was made under another key.', {
    details: { reason: 'wrong-key' },
  });
}
