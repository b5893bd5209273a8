import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { beforeEach, describe, expect, it } from 'vitest';
import { VirtualClock } from '../../clock.js';
import { IntegrityError } from '../../errors.js';
import { DirectoryStore } from '../store/directory.js';
import { canonicalJson } from './canonical.js';
import { RepositoryClient } from './client.js';
import { generateSigningKey, loadKeys, saveKeys, type KeySet } from './keys.js';
import { serializeEnvelope, signEnvelope, verifyRole, type RootMetadata, type TargetFile } from './metadata.js';
import {
  initRepository,
  readRepository,
  refreshRepository,
  rotateKey,
  setChannel,
  updateTargets,
} from './publisher.js';
import { MemoryTrustStore } from './trust-store.js';

const DAY = 24 * 3600 * 1000;
const target = (workspace: string, version: string, channels: string[] = []): TargetFile => ({
  length: 10,
  hashes: { sha256: 'ab'.repeat(32) },
  custom: { workspace, version, channels, imageSha256: 'cd'.repeat(32), imageSize: 1 },
});

describe('canonical JSON', () => {
  it('does not depend on key order', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.oneof(fc.integer(), fc.string(), fc.boolean())), (obj) => {
        const reversed = Object.fromEntries(Object.entries(obj).reverse());
        expect(canonicalJson(reversed)).toBe(canonicalJson(obj));
        expect(JSON.parse(canonicalJson(obj))).toEqual(obj);
      }),
    );
  });
});

describe('signatures', () => {
  it('need the threshold of distinct valid keys of the role', () => {
    const [a, b] = [generateSigningKey(), generateSigningKey()];
    const root: RootMetadata = {
      _type: 'root',
      spec_version: '1.0.31',
      version: 1,
      expires: '2100-01-01T00:00:00Z',
      consistent_snapshot: true,
      keys: { [a.keyid]: a.entry, [b.keyid]: b.entry },
      roles: {
        root: { keyids: [a.keyid, b.keyid], threshold: 2 },
        targets: { keyids: [a.keyid], threshold: 1 },
        snapshot: { keyids: [a.keyid], threshold: 1 },
        timestamp: { keyids: [a.keyid], threshold: 1 },
      },
    };
    expect(() => verifyRole(signEnvelope(root, [a, b]), root, 'root', 'r')).not.toThrow();
    expect(() => verifyRole(signEnvelope(root, [a]), root, 'root', 'r')).toThrow(IntegrityError);
    // The same key twice is one signature.
    expect(() => verifyRole(signEnvelope(root, [a, a]), root, 'root', 'r')).toThrow(/1 valid of 2/);
    const forged = signEnvelope(root, [a, b]);
    expect(() => verifyRole({ ...forged, signed: { ...root, version: 2 } }, root, 'root', 'r')).toThrow(/0 valid of 2/);
  });
});

describe('repository metadata', () => {
  let store: DirectoryStore;
  let keys: KeySet;
  let root: Buffer;
  let clock: VirtualClock;
  beforeEach(async () => {
    store = new DirectoryStore(await mkdtemp(join(tmpdir(), 'tandem-trust-')));
    clock = new VirtualClock(Date.parse('2026-03-01T00:00:00Z'));
    ({ keys, root } = await initRepository({ store, clock }));
    await updateTargets({ store, keys, clock }, () => ({
      'manifests/erp/1.0.0.manifest': target('erp', '1.0.0', ['stable']),
      'manifests/erp/2.0.0.manifest': target('erp', '2.0.0', ['pilot']),
    }));
  });
  const client = (trust = new MemoryTrustStore()) => new RepositoryClient({ store, trust, initialRoot: root, clock });

  it('resolves versions and channels from verified targets', async () => {
    const c = client();
    await c.refresh();
    expect(c.resolve('erp').file.custom.version).toBe('1.0.0');
    expect(c.resolve('erp', { channel: 'pilot' }).file.custom.version).toBe('2.0.0');
    expect(c.resolve('erp', { version: '2.0.0' }).path).toBe('manifests/erp/2.0.0.manifest');
    await setChannel({ store, keys, clock }, 'erp', 'stable', '2.0.0');
    await c.refresh();
    expect(c.resolve('erp', { channel: 'stable' }).file.custom.version).toBe('2.0.0');
    expect(() => c.resolve('erp', { channel: 'beta' })).toThrow(/no channel beta/);
    expect(() => c.resolve('crm')).toThrow(/no workspace crm/);
  });

  it('says a trusted root from another repository is the likelier cause when no signature is by a key it knows', async () => {
    const other = await initRepository({
      store: new DirectoryStore(await mkdtemp(join(tmpdir(), 'tandem-other-'))),
      clock,
    });
    const c = new RepositoryClient({ store, trust: new MemoryTrustStore(), initialRoot: other.root, clock });
    await expect(c.refresh()).rejects.toMatchObject({
      code: 'TANDEM_INTEGRITY',
      message: expect.stringMatching(/most likely belongs to another repository/),
      details: { unknownKeys: true },
    });
  });

  it('saves a whole key set where loadKeys reads it back', async () => {
    const dir = join(await mkdtemp(join(tmpdir(), 'tandem-keys-')), 'keys');
    await saveKeys(dir, keys);
    const loaded = await loadKeys(dir);
    expect(Object.keys(loaded).sort()).toEqual(Object.keys(keys).sort());
    expect(loaded.targets?.keyid).toBe(keys.targets?.keyid);
  });

  it('refuses a rollback to older timestamp metadata', async () => {
    const trust = new MemoryTrustStore();
    const old = await readFile(join(store.location, 'timestamp.json'));
    await refreshRepository({ store, keys, clock });
    await client(trust).refresh();
    await writeFile(join(store.location, 'timestamp.json'), old);
    await expect(client(trust).refresh()).rejects.toThrow(/rollback/);
  });

  it('refuses expired metadata (freeze), until the publisher refreshes it', async () => {
    await clock.advance(8 * DAY);
    await expect(client().refresh()).rejects.toMatchObject({ code: 'TANDEM_INTEGRITY', details: { kind: 'expired' } });
    await refreshRepository({ store, keys, clock });
    await expect(client().refresh()).resolves.toBeDefined();
  });

  it('follows a root key rotation; a root signed only by the new key is refused', async () => {
    const trust = new MemoryTrustStore();
    await client(trust).refresh();
    const keys2 = await rotateKey({ store, keys, clock }, 'root');
    expect(keys2.root!.keyid).not.toBe(keys.root!.keyid);
    const c = client(trust);
    const trusted = await c.refresh();
    expect(trusted.root.version).toBe(2);
    expect(trusted.root.roles.root.keyids).toEqual([keys2.root!.keyid]);
    // A third root signed by the new key alone, as a thief of it would: refused by the next client.
    const forged = {
      ...trusted.root,
      version: 3,
      roles: { ...trusted.root.roles, targets: { keyids: [keys2.root!.keyid], threshold: 1 } },
    };
    await writeFile(
      join(store.location, '3.root.json'),
      serializeEnvelope(signEnvelope(forged, [generateSigningKey()])),
    );
    await expect(client(trust).refresh()).rejects.toThrow(/previous root's keys/);
  });

  it('follows a targets key rotation; the revoked key can no longer sign targets', async () => {
    const trust = new MemoryTrustStore();
    await client(trust).refresh();
    const keys2 = await rotateKey({ store, keys, clock }, 'targets');
    const trusted = await client(trust).refresh();
    expect(trusted.root.roles.targets.keyids).toEqual([keys2.targets!.keyid]);
    expect(Object.keys(trusted.targets.targets)).toHaveLength(2);
    // Publishing with the old key fails for the publisher ...
    await expect(updateTargets({ store, keys, clock }, (t) => ({ ...t }))).rejects.toThrow(/rotated/);
    // ... and metadata signed with it anyway is refused by clients.
    const current = await readRepository(store, clock);
    const evil = {
      ...current.targets,
      version: current.targets.version + 1,
      targets: { 'manifests/erp/6.6.6.manifest': target('erp', '6.6.6', ['stable']) },
    };
    await writeFile(
      join(store.location, `${evil.version}.targets.json`),
      serializeEnvelope(signEnvelope(evil, [keys.targets!])),
    );
    const snap = {
      ...current.snapshot,
      version: current.snapshot.version + 1,
      meta: { 'targets.json': { version: evil.version } },
    };
    await writeFile(
      join(store.location, `${snap.version}.snapshot.json`),
      serializeEnvelope(signEnvelope(snap, [keys2.snapshot!])),
    );
    const ts = {
      ...current.timestamp,
      version: current.timestamp.version + 1,
      meta: { 'snapshot.json': { version: snap.version } },
    };
    await writeFile(join(store.location, 'timestamp.json'), serializeEnvelope(signEnvelope(ts, [keys2.timestamp!])));
    await expect(client(trust).refresh()).rejects.toThrow(/not signed by enough targets keys/);
  });

  it('needs a root on the first use', async () => {
    const c = new RepositoryClient({ store, trust: new MemoryTrustStore(), clock });
    await expect(c.refresh()).rejects.toThrow(/root.json, obtained out of band/);
  });
});
