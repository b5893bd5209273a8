// LUKS1 master key recovery on a header made here by the LUKS1 specification's own steps
// (AF-split, key slot encryption, mkDigest); the real-QEMU check is in the libvirt adapter's
// encrypted-data-file.integ.test.ts.
import { createHash, pbkdf2Sync, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AuthError, IntegrityError, UnsupportedCapabilityError } from '../errors.js';
import { afMerge, parseLuks1Header, recoverLuks1MasterKey } from './luks1.js';
import { XtsCipher } from './xts.js';

const STRIPES = 40;
const KEY_BYTES = 64;
const MATERIAL_SECTOR = 8;

function diffuse(d: Buffer): void {
  for (let j = 0, at = 0; at < d.length; j++, at += 32) {
    const block = d.subarray(at, Math.min(d.length, at + 32));
    const counter = Buffer.alloc(4);
    counter.writeUInt32BE(j);
    createHash('sha256').update(counter).update(block).digest().copy(block, 0, 0, block.length);
  }
}

/** AFsplit of the LUKS1 specification: random stripes, the last one making the merge the key. */
function afSplit(key: Buffer): Buffer {
  const stripes = randomBytes(KEY_BYTES * STRIPES);
  const d = Buffer.alloc(KEY_BYTES);
  for (let s = 0; s < STRIPES - 1; s++) {
    for (let i = 0; i < KEY_BYTES; i++) d[i]! ^= stripes[s * KEY_BYTES + i]!;
    diffuse(d);
  }
  for (let i = 0; i < KEY_BYTES; i++) stripes[(STRIPES - 1) * KEY_BYTES + i] = d[i]! ^ key[i]!;
  return stripes;
}

function field(b: Buffer, at: number, text: string): void {
  b.write(text, at, 'latin1');
}

/** A LUKS1 header region (aes xts-plain64 sha256) with key slot `slot` opened by `passphrase`. */
function makeLuks1(masterKey: Buffer, passphrase: string, slot = 0): Buffer {
  const region = Buffer.alloc((MATERIAL_SECTOR + 8 * 10) * 512);
  region.set([0x4c, 0x55, 0x4b, 0x53, 0xba, 0xbe], 0);
  region.writeUInt16BE(1, 6);
  field(region, 8, 'aes');
  field(region, 40, 'xts-plain64');
  field(region, 72, 'sha256');
  region.writeUInt32BE(4096, 104);
  region.writeUInt32BE(KEY_BYTES, 108);
  const mkSalt = randomBytes(32);
  pbkdf2Sync(masterKey, mkSalt, 100, 20, 'sha256').copy(region, 112);
  mkSalt.copy(region, 132);
  region.writeUInt32BE(100, 164);
  field(region, 168, '1b4e28ba-2fa1-11d2-883f-0016d3cca427');
  for (let i = 0; i < 8; i++) {
    const at = 208 + i * 48;
    const offset = MATERIAL_SECTOR + i * 10;
    region.writeUInt32BE(i === slot ? 0x00ac71f3 : 0x0000dead, at);
    region.writeUInt32BE(1000, at + 4);
    const salt = randomBytes(32);
    salt.copy(region, at + 8);
    region.writeUInt32BE(offset, at + 40);
    region.writeUInt32BE(STRIPES, at + 44);
    if (i !== slot) continue;
    const slotKey = pbkdf2Sync(passphrase, salt, 1000, KEY_BYTES, 'sha256');
    const material = Buffer.alloc(Math.ceil((KEY_BYTES * STRIPES) / 512) * 512);
    afSplit(masterKey).copy(material);
    new XtsCipher(slotKey).encrypt(0, material).copy(region, offset * 512);
  }
  return region;
}

describe('LUKS1 master key recovery', () => {
  it('recovers the master key from the active slot and refuses another passphrase', async () => {
    const master = randomBytes(KEY_BYTES);
    const region = makeLuks1(master, 'correct horse', 3);
    const header = parseLuks1Header(region);
    expect(header).toMatchObject({ cipherName: 'aes', cipherMode: 'xts-plain64', hashSpec: 'sha256', keyBytes: 64 });
    expect(header.keySlots.filter((s) => s.active).map((s) => s.index)).toEqual([3]);
    const key = await recoverLuks1MasterKey(region, 'correct horse');
    expect(key.use((k) => Buffer.from(k).equals(master))).toBe(true);
    expect(String(key)).not.toContain(master.toString('hex'));
    key.dispose();
    await expect(recoverLuks1MasterKey(region, 'wrong horse')).rejects.toBeInstanceOf(AuthError);
  });

  it('AF-merges what AF-split made', () => {
    const key = randomBytes(KEY_BYTES);
    expect(afMerge(afSplit(key), KEY_BYTES, STRIPES, 'sha256').equals(key)).toBe(true);
  });

  it('refuses what is not LUKS1 aes-xts-plain64, and a key slot outside the region', async () => {
    const region = makeLuks1(randomBytes(KEY_BYTES), 'p');
    expect(() => parseLuks1Header(Buffer.alloc(600))).toThrow(IntegrityError);
    const v2 = Buffer.from(region);
    v2.writeUInt16BE(2, 6);
    expect(() => parseLuks1Header(v2)).toThrow(UnsupportedCapabilityError);
    const cbc = Buffer.from(region);
    cbc.fill(0, 40, 72);
    field(cbc, 40, 'cbc-essiv:sha256');
    await expect(recoverLuks1MasterKey(cbc, 'p')).rejects.toBeInstanceOf(UnsupportedCapabilityError);
    await expect(recoverLuks1MasterKey(region.subarray(0, 4096 + 512), 'p')).rejects.toBeInstanceOf(IntegrityError);
  });
});
