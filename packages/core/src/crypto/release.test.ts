// Key release end to end on the API: an authority seals a data key for one device, the device
// opens it; and every bad input or attack of issue 11 is refused with a typed error, nothing
// unsealed.
import fc from 'fast-check';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { VirtualClock } from '../clock.js';
import { TandemError } from '../errors.js';
import { KeyReleaseAuthority } from './authority.js';
import { DataKey } from './data-key.js';
import { DeviceKeys, formatDevicePublicKey, parseDevicePublicKey } from './device-key.js';
import { parseEnvelope, readGrant, serializeEnvelope, type KeyEnvelope } from './envelope.js';
import { openEndpointKeys, openEnvelope, requireDataKey } from './release.js';
import { TrustedTime, TRUSTED_TIME_FILE } from './trusted-time.js';

const T0 = Date.parse('2027-01-10T09:00:00Z');
const DAY = 24 * 3600 * 1000;

describe('key release', () => {
  let root: string;
  let clock: VirtualClock;
  let authority: KeyReleaseAuthority;
  let dataKey: DataKey;
  let endpoint: Awaited<ReturnType<typeof openEndpointKeys>>;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'tandem-keys-'));
    clock = new VirtualClock(T0);
    authority = KeyReleaseAuthority.generate({ clock });
    dataKey = DataKey.generate();
    endpoint = await openEndpointKeys(join(root, 'keys'), { clock });
  });
  afterEach(async () => {
    dataKey.dispose();
    await rm(root, { recursive: true, force: true });
  });

  const seal = (over: Partial<Parameters<KeyReleaseAuthority['seal']>[0]> = {}): Promise<KeyEnvelope> =>
    authority.seal({
      dataKey,
      device: formatDevicePublicKey(endpoint.device.publicKey),
      imageId: 'legacy-erp',
      versions: '>=3.0.0 <4',
      notAfter: 'P14D',
      ...over,
    });
  const open = (envelope: KeyEnvelope, over: Partial<Parameters<typeof openEnvelope>[1]> = {}) =>
    openEnvelope(envelope, {
      trustedAuthorities: [authority.publicKey],
      device: endpoint.device,
      trustedTime: endpoint.trustedTime,
      imageId: 'legacy-erp',
      version: '3.2.0',
      clock,
      ...over,
    });
  const refused = async (p: Promise<unknown>, code: string, reason?: string): Promise<void> => {
    const err = await p.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(TandemError.is(err, code), `expected ${code}, got ${String(err)}`).toBe(true);
    if (reason) expect((err as TandemError).details['reason']).toBe(reason);
    // Nothing secret in what a refusal says.
    const said = JSON.stringify((err as TandemError).toJSON()) + String(err);
    dataKey.use((b) => {
      expect(said).not.toContain(b.toString('hex'));
      expect(said).not.toContain(b.toString('base64'));
    });
  };

  it('seals for one device and opens there, through the file form', async () => {
    const text = serializeEnvelope(await seal());
    const envelope = parseEnvelope(text, 'erp.envelope');
    using released = await open(envelope);
    expect(released.dataKey.id).toBe(dataKey.id);
    expect(released.dataKey.use((b) => b.toString('hex'))).toBe(dataKey.use((b) => b.toString('hex')));
    expect(released.grant).toMatchObject({
      image: { id: 'legacy-erp', versions: '>=3.0.0 <4' },
      device: { id: endpoint.device.deviceId },
      lease: { issuedAt: '2027-01-10T09:00:00.000Z', notAfter: '2027-01-24T09:00:00.000Z' },
    });
    // The envelope names the key by id and never holds it in the clear.
    dataKey.use((b) => {
      expect(text).not.toContain(b.toString('hex'));
      expect(text).not.toContain(b.toString('base64url'));
    });
    expect(() => requireDataKey(released.dataKey, dataKey.id, 'legacy-erp')).not.toThrow();
  });

  it('zeroes the released key on dispose', async () => {
    let held: Buffer | undefined;
    {
      using released = await open(await seal());
      released.dataKey.use((b) => (held = b));
    }
    expect(held?.every((x) => x === 0)).toBe(true);
  });

  it('refuses a wrong data key', async () => {
    using released = await open(await seal());
    using other = DataKey.generate();
    expect(() => requireDataKey(released.dataKey, other.id, 'legacy-erp')).toThrow(
      expect.objectContaining({ code: 'TANDEM_AUTH', details: expect.objectContaining({ reason: 'wrong-data-key' }) }),
    );
  });

  it('refuses an envelope for another device', async () => {
    const other = await DeviceKeys.create(join(root, 'other'));
    await refused(open(await seal({ device: other.publicKey })), 'TANDEM_AUTH', 'other-device');
  });

  it('refuses an envelope for another image', async () => {
    await refused(open(await seal({ imageId: 'payroll' })), 'TANDEM_AUTH', 'other-image');
  });

  it('refuses a version the envelope does not cover', async () => {
    await refused(open(await seal(), { version: '4.0.0' }), 'TANDEM_AUTH', 'version-not-covered');
    await refused(open(await seal({ versions: '3.1.0' })), 'TANDEM_AUTH', 'version-not-covered');
  });

  it('refuses an envelope signed by an untrusted key', async () => {
    const rogue = KeyReleaseAuthority.generate({ clock });
    const envelope = await rogue.seal({
      dataKey,
      device: endpoint.device.publicKey,
      imageId: 'legacy-erp',
      notAfter: 'P1D',
    });
    await refused(open(envelope), 'TANDEM_AUTH', 'untrusted-signer');
    // Claiming the trusted key's id does not help: the signature is checked against that key.
    await refused(
      open({ ...envelope, signature: { ...envelope.signature, keyid: authority.keyid } }),
      'TANDEM_INTEGRITY',
      'bad-signature',
    );
  });

  it('refuses an envelope with any one byte changed (property)', async () => {
    const text = serializeEnvelope(await seal());
    const bytes = Buffer.from(text);
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: bytes.length - 1 }), fc.integer({ min: 1, max: 255 }), async (at, x) => {
        const bad = Buffer.from(bytes);
        bad[at]! ^= x;
        let err: unknown;
        try {
          using released = await open(parseEnvelope(bad, 'tampered'));
          // Only a change outside what is signed and parsed (JSON whitespace) may still open.
          expect(JSON.parse(bad.toString())).toEqual(JSON.parse(text));
          expect(released.dataKey.id).toBe(dataKey.id);
          return;
        } catch (e) {
          err = e;
        }
        expect(TandemError.is(err)).toBe(true);
        expect(['TANDEM_INVALID_INPUT', 'TANDEM_INTEGRITY', 'TANDEM_AUTH']).toContain((err as TandemError).code);
      }),
      { numRuns: 80 },
    );
  });

  it('refuses a signature or payload spelled another way with the same bytes', async () => {
    const envelope = await seal();
    const last = envelope.signature.sig.at(-1)!;
    // The last of 86 characters carries 2 bits; the 4 spare bits differ here, the bytes do not.
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const same = alphabet[(alphabet.indexOf(last) & ~15) | ((alphabet.indexOf(last) + 1) & 15)]!;
    const sig = envelope.signature.sig.slice(0, -1) + same;
    expect(Buffer.from(sig, 'base64url').equals(Buffer.from(envelope.signature.sig, 'base64url'))).toBe(true);
    await refused(
      open({ ...envelope, signature: { ...envelope.signature, sig } }),
      'TANDEM_INTEGRITY',
      'bad-signature',
    );
  });

  it('refuses an expired lease and one not yet valid', async () => {
    const envelope = await seal({ notBefore: T0 + DAY, notAfter: T0 + 3 * DAY });
    await refused(open(envelope), 'TANDEM_LEASE', 'not-yet-valid');
    await clock.advance(2 * DAY);
    using ok = await open(envelope);
    expect(ok.dataKey.id).toBe(dataKey.id);
    await clock.advance(DAY);
    await refused(open(envelope), 'TANDEM_LEASE', 'expired');
  });

  it('refuses a clock rolled back past the trusted-time record, after a restart too', async () => {
    const envelope = await seal({ notAfter: T0 + 2 * DAY });
    await clock.advance(3 * DAY);
    await refused(open(envelope), 'TANDEM_LEASE', 'expired');
    // The user sets the clock back to inside the lease: refused as a rolled-back clock.
    const back = new VirtualClock(T0 + DAY);
    const again = await openEndpointKeys(join(root, 'keys'), { clock: back });
    await refused(open(envelope, { clock: back, trustedTime: again.trustedTime }), 'TANDEM_CLOCK_ROLLBACK');
    expect(() => again.trustedTime.check()).toThrow(expect.objectContaining({ code: 'TANDEM_CLOCK_ROLLBACK' }));
  });

  it('learns trusted time from an envelope: a clock behind the authority is refused', async () => {
    const later = new VirtualClock(T0 + 10 * DAY);
    const envelope = await new KeyReleaseAuthority(authority.signingKey, { clock: later }).seal({
      dataKey,
      device: endpoint.device.publicKey,
      imageId: 'legacy-erp',
      notBefore: T0 - DAY,
      notAfter: T0 + 20 * DAY,
    });
    await refused(open(envelope), 'TANDEM_CLOCK_ROLLBACK');
    expect(endpoint.trustedTime.latest).toBe(T0 + 10 * DAY);
    expect(endpoint.trustedTime.source).toBe('envelope');
  });

  it('refuses an edited or removed trusted-time record', async () => {
    await clock.advance(5 * DAY);
    await endpoint.trustedTime.now();
    const file = join(root, 'keys', TRUSTED_TIME_FILE);
    const record = JSON.parse(await readFile(file, 'utf8')) as { latest: number };
    await writeFile(file, JSON.stringify({ ...record, latest: T0 }));
    await refused(TrustedTime.open(join(root, 'keys'), endpoint.device), 'TANDEM_INTEGRITY');
    await rm(file);
    await refused(openEndpointKeys(join(root, 'keys'), { clock }), 'TANDEM_INTEGRITY');
  });

  it('keeps device keys private, stable and unprinted', async () => {
    const umask = process.umask(0o000);
    try {
      const dir = join(root, 'fresh', 'keys');
      const first = await openEndpointKeys(dir, { clock });
      const second = await openEndpointKeys(dir, { clock });
      expect(second.device.deviceId).toBe(first.device.deviceId);
      expect((await stat(dir)).mode & 0o777).toBe(0o700);
      expect((await stat(join(dir, 'device.json'))).mode & 0o777).toBe(0o600);
      expect((await stat(join(dir, TRUSTED_TIME_FILE))).mode & 0o777).toBe(0o600);
      const stored = JSON.parse(await readFile(join(dir, 'device.json'), 'utf8')) as { x25519: { private: string } };
      const shown =
        JSON.stringify(first.device) + inspect(first.device) + formatDevicePublicKey(first.device.publicKey);
      expect(shown).not.toContain(stored.x25519.private);
      expect(parseDevicePublicKey(formatDevicePublicKey(first.device.publicKey))).toEqual(first.device.publicKey);
      await expect(DeviceKeys.create(dir)).rejects.toMatchObject({ code: 'TANDEM_CONFLICT' });
    } finally {
      process.umask(umask);
    }
  });

  it('refuses bad seal requests and bad device keys', async () => {
    await refused(seal({ notAfter: T0 - 1 }), 'TANDEM_INVALID_INPUT');
    await refused(seal({ notAfter: 'next tuesday' }), 'TANDEM_INVALID_INPUT');
    await refused(seal({ versions: '>=' }), 'TANDEM_INVALID_INPUT');
    await refused(seal({ device: 'tandem-device1:abc' }), 'TANDEM_INVALID_INPUT');
    expect(() => parseEnvelope('{"format":"x"}', 'f')).toThrow(
      expect.objectContaining({ code: 'TANDEM_INVALID_INPUT' }),
    );
  });

  it('inspects without trusting and without the key', async () => {
    const envelope = await seal();
    const grant = readGrant(envelope, 'e');
    expect(grant.image.id).toBe('legacy-erp');
    expect(JSON.stringify(grant)).not.toContain(dataKey.use((b) => b.toString('base64url')));
  });
});
