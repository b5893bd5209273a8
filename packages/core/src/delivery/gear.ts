import { createHash } from 'node:crypto';

/** The name recorded in manifests for Tandem's gear table. */
export const GEAR_TABLE_NAME = 'tandem-gear-v1';

/**
 * The FastCDC gear table: 256 pseudo-random 32-bit values. It is derived, not random, so that
 * every client computes the same table: entry `i` is the first four bytes (big-endian) of
 * SHA-256(`tandem/fastcdc/gear/v1/<i>`). A test pins its digest, so a change to this derivation
 * cannot go unnoticed (it would make every existing manifest's boundaries unreproducible).
 */
export const GEAR: Uint32Array = deriveGear();

function deriveGear(): Uint32Array {
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    table[i] = createHash('sha256').update(`tandem/fastcdc/gear/v1/${i}`).digest().readUInt32BE(0);
  }
  return table;
}

/** SHA-256 (hex) of the gear table's 1024 bytes, big-endian; recorded in manifests. */
export function gearTableDigest(table: Uint32Array = GEAR): string {
  const bytes = Buffer.alloc(table.length * 4);
  table.forEach((v, i) => bytes.writeUInt32BE(v, i * 4));
  return createHash('sha256').update(bytes).digest('hex');
}
