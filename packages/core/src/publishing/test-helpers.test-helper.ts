// Test helpers for publishing (not exported): hostile strings, a tiny PNG, directory walks.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import fc from 'fast-check';
import { hostileFragments } from '../host/test-strings.js';

/** Strings an attacker in the guest would try as an app's name, id, folder or extension. */
export function hostileString(): fc.Arbitrary<string> {
  const fragments = [
    ...hostileFragments('/tmp/tandem-canary'),
    '../',
    '..',
    '/',
    '/etc/passwd',
    '..\\..\\',
    'C:\\Windows\\',
    '%f',
    '%F',
    '%u',
    '%U',
    '%k',
    '%c',
    '%i',
    '%%',
    '%',
    '\0',
    '\n',
    '[Desktop Entry]\nExec=sh -c "touch /tmp/pwned"',
    'Exec=evil',
    '\\n',
    '\\s',
    '"',
    "'",
    ';',
    '.desktop',
    'CON',
    'NUL',
    'x'.repeat(300),
  ];
  return fc
    .array(
      fc.oneof(
        fc.constantFrom(...fragments),
        fc.string({ maxLength: 12 }),
        fc.string({ unit: 'grapheme', maxLength: 6 }),
      ),
      {
        minLength: 1,
        maxLength: 8,
      },
    )
    .map((parts) => parts.join(''));
}

/** Every file under `dir`, recursively. */
export function walk(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else out.push(p);
  }
  return out;
}

function crc32(buf: Uint8Array): number {
  let c = ~0;
  for (const b of buf) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return ~c >>> 0;
}

function chunk(type: string, data: Uint8Array): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

/** A valid RGB PNG of `size` x `size` pixels in one colour. */
export function solidPng(size: number, rgb: [number, number, number] = [0xd9, 0x53, 0x4f]): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  const row = Buffer.concat([Buffer.of(0), Buffer.from(Array.from({ length: size }, () => rgb).flat())]);
  const raw = Buffer.concat(Array.from({ length: size }, () => row));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', new Uint8Array()),
  ]);
}
