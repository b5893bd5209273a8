import { systemClock, type Clock } from '../../clock.js';
import { ConflictError, InvalidInputError, NotFoundError } from '../../errors.js';
import { sha256Hex } from '../manifest.js';
import type { RepoStore } from '../store/types.js';
import { RepositoryClient, type TrustedMetadata } from './client.js';
import { generateSigningKey, requireKey, ROLES, type KeySet, type RoleName, type SigningKey } from './keys.js';
import { serializeEnvelope, signEnvelope, SPEC_VERSION, type RootMetadata, type TargetFile } from './metadata.js';
import { MemoryTrustStore } from './trust-store.js';

const DAY = 24 * 60 * 60 * 1000;

/** How long each role's metadata stays valid, in milliseconds. */
export type ExpiryPolicy = Record<RoleName, number>;

/** Defaults: root a year, targets 90 days, snapshot 30 days, timestamp 7 days. */
export const DEFAULT_EXPIRY: ExpiryPolicy = {
  root: 365 * DAY,
  targets: 90 * DAY,
  snapshot: 30 * DAY,
  timestamp: 7 * DAY,
};

/** What every repository administration call needs. */
export interface RepoAdminOptions {
  store: RepoStore;
  keys: KeySet;
  clock?: Clock;
  expiry?: Partial<ExpiryPolicy>;
}

interface Ctx {
  store: RepoStore;
  keys: KeySet;
  clock: Clock;
  expiry: ExpiryPolicy;
}

function ctxOf(options: RepoAdminOptions): Ctx {
  return {
    store: options.store,
    keys: options.keys,
    clock: options.clock ?? systemClock,
    expiry: { ...DEFAULT_EXPIRY, ...options.expiry },
  };
}

function expires(ctx: Ctx, role: RoleName): string {
  return new Date(ctx.clock.now() + ctx.expiry[role]).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function put(store: RepoStore, path: string, data: Uint8Array): Promise<void> {
  if (!store.put)
    throw new InvalidInputError(
      `${store.location} is read-only; publish to a directory or an S3 bucket and serve that over HTTP.`,
    );
  return store.put(path, data);
}

/**
 * Creates an empty repository: a root signed with a new root key, and empty targets, snapshot
 * and timestamp metadata. Keys not given are generated; the returned key set must be saved
 * (the root key offline). Throws ConflictError when the store already holds a repository.
 *
 * @example
 * ```ts
 * const { keys, root } = await initRepository({ store: new DirectoryStore('repo') });
 * ```
 */
export async function initRepository(
  options: Omit<RepoAdminOptions, 'keys'> & { keys?: KeySet },
): Promise<{ keys: KeySet; root: Buffer }> {
  const keys: KeySet = {};
  for (const role of ROLES) keys[role] = options.keys?.[role] ?? generateSigningKey();
  const ctx = ctxOf({ ...options, keys });
  if (await ctx.store.has('1.root.json'))
    throw new ConflictError(`${ctx.store.location} already holds a repository (1.root.json exists).`);
  const rootKeys: Record<string, SigningKey['entry']> = {};
  for (const role of ROLES) rootKeys[keys[role]!.keyid] = keys[role]!.entry;
  const root: RootMetadata = {
    _type: 'root',
    spec_version: SPEC_VERSION,
    version: 1,
    expires: expires(ctx, 'root'),
    consistent_snapshot: true,
    keys: rootKeys,
    roles: {
      root: { keyids: [keys.root!.keyid], threshold: 1 },
      targets: { keyids: [keys.targets!.keyid], threshold: 1 },
      snapshot: { keyids: [keys.snapshot!.keyid], threshold: 1 },
      timestamp: { keyids: [keys.timestamp!.keyid], threshold: 1 },
    },
  };
  const bytes = serializeEnvelope(signEnvelope(root, [keys.root!]));
  await put(ctx.store, '1.root.json', bytes);
  await put(ctx.store, 'root.json', bytes);
  await writeTopLevel(ctx, root, { targets: {}, version: 1 }, { snapshot: 1, timestamp: 1 });
  return { keys, root: bytes };
}

/** Reads and verifies the repository's current metadata, as a publisher (expiry ignored). */
export async function readRepository(store: RepoStore, clock: Clock = systemClock): Promise<TrustedMetadata> {
  const first = await store.get('1.root.json', { maxBytes: 512 * 1024 });
  if (!first)
    throw new NotFoundError(
      `${store.location} is not a Tandem repository (no 1.root.json); create one with \`tandem repo init\`.`,
    );
  const client = new RepositoryClient({
    store,
    trust: new MemoryTrustStore(),
    initialRoot: first,
    clock,
    ignoreExpiry: true,
  });
  return client.refresh();
}

/** Checks that `keys` holds a key the root lists for `role`. */
function keyFor(ctx: Ctx, root: RootMetadata, role: RoleName): SigningKey {
  const key = requireKey(ctx.keys, role);
  if (!root.roles[role].keyids.includes(key.keyid)) {
    throw new InvalidInputError(
      `The ${role} key given (${key.keyid.slice(0, 16)}...) is not one the repository's root lists for ${role}; was it rotated?`,
    );
  }
  return key;
}

async function writeTopLevel(
  ctx: Ctx,
  root: RootMetadata,
  targets: { targets: Record<string, TargetFile>; version: number },
  versions: { snapshot: number; timestamp: number },
): Promise<void> {
  const targetsBytes = serializeEnvelope(
    signEnvelope(
      {
        _type: 'targets' as const,
        spec_version: SPEC_VERSION,
        version: targets.version,
        expires: expires(ctx, 'targets'),
        targets: targets.targets,
      },
      [keyFor(ctx, root, 'targets')],
    ),
  );
  await put(ctx.store, `${targets.version}.targets.json`, targetsBytes);
  const snapshotBytes = serializeEnvelope(
    signEnvelope(
      {
        _type: 'snapshot' as const,
        spec_version: SPEC_VERSION,
        version: versions.snapshot,
        expires: expires(ctx, 'snapshot'),
        meta: {
          'targets.json': {
            version: targets.version,
            length: targetsBytes.length,
            hashes: { sha256: sha256Hex(targetsBytes) },
          },
        },
      },
      [keyFor(ctx, root, 'snapshot')],
    ),
  );
  await put(ctx.store, `${versions.snapshot}.snapshot.json`, snapshotBytes);
  // timestamp.json last: readers see the new versions only once everything they point at exists.
  const timestampBytes = serializeEnvelope(
    signEnvelope(
      {
        _type: 'timestamp' as const,
        spec_version: SPEC_VERSION,
        version: versions.timestamp,
        expires: expires(ctx, 'timestamp'),
        issued: new Date(ctx.clock.now()).toISOString().replace(/\.\d{3}Z$/, 'Z'),
        meta: {
          'snapshot.json': {
            version: versions.snapshot,
            length: snapshotBytes.length,
            hashes: { sha256: sha256Hex(snapshotBytes) },
          },
        },
      },
      [keyFor(ctx, root, 'timestamp')],
    ),
  );
  await put(ctx.store, 'timestamp.json', timestampBytes);
}

/**
 * Publishes new targets metadata made by `change` from the current targets, with new snapshot
 * and timestamp metadata. Used by push and by channel changes.
 */
export async function updateTargets(
  options: RepoAdminOptions,
  change: (targets: Readonly<Record<string, TargetFile>>, trusted: TrustedMetadata) => Record<string, TargetFile>,
): Promise<TrustedMetadata> {
  const ctx = ctxOf(options);
  const trusted = await readRepository(ctx.store, ctx.clock);
  const targets = change(trusted.targets.targets, trusted);
  await writeTopLevel(
    ctx,
    trusted.root,
    { targets, version: trusted.targets.version + 1 },
    {
      snapshot: trusted.snapshot.version + 1,
      timestamp: trusted.timestamp.version + 1,
    },
  );
  return readRepository(ctx.store, ctx.clock);
}

/**
 * Points `channel` of `workspace` at `version` (and away from any other version).
 *
 * @example
 * ```ts
 * await setChannel({ store, keys }, 'legacy-erp', 'stable', '3.2.0');
 * ```
 */
export async function setChannel(
  options: RepoAdminOptions,
  workspace: string,
  channel: string,
  version: string,
): Promise<void> {
  if (!/^[a-z0-9][a-z0-9._-]{0,62}$/.test(channel))
    throw new InvalidInputError(
      `Channel name ${JSON.stringify(channel)}: expected lower-case letters, digits, dots, dashes.`,
    );
  await updateTargets(options, (targets) => {
    const out: Record<string, TargetFile> = {};
    let found = false;
    for (const [path, file] of Object.entries(targets)) {
      if (file.custom.workspace !== workspace) {
        out[path] = file;
        continue;
      }
      const channels = file.custom.channels.filter((c) => c !== channel);
      if (file.custom.version === version) {
        channels.push(channel);
        found = true;
      }
      out[path] = { ...file, custom: { ...file.custom, channels } };
    }
    if (!found)
      throw new NotFoundError(`${workspace} ${version} is not published, so channel ${channel} cannot point at it.`);
    return out;
  });
}

/**
 * Re-signs targets, snapshot and timestamp with new versions and expiry dates (and the root too
 * when its key is given and it expires within 30 days). Run it regularly (a daily cron job):
 * clients refuse expired metadata.
 */
export async function refreshRepository(options: RepoAdminOptions): Promise<TrustedMetadata> {
  const ctx = ctxOf(options);
  const trusted = await readRepository(ctx.store, ctx.clock);
  if (ctx.keys.root && Date.parse(trusted.root.expires) - ctx.clock.now() < 30 * DAY) {
    await writeRoot(ctx, { ...trusted.root, version: trusted.root.version + 1, expires: expires(ctx, 'root') }, [
      keyFor(ctx, trusted.root, 'root'),
    ]);
  }
  return updateTargets(options, (targets) => ({ ...targets }));
}

async function writeRoot(ctx: Ctx, root: RootMetadata, signers: SigningKey[]): Promise<void> {
  const bytes = serializeEnvelope(signEnvelope(root, signers));
  await put(ctx.store, `${root.version}.root.json`, bytes);
  await put(ctx.store, 'root.json', bytes);
}

/**
 * Replaces the key of `role` with a new one: writes the next root version, signed by the old
 * root key and (for the root role) the new one, then re-signs targets, snapshot and timestamp.
 * Clients follow the chain of root versions, so they trust the new key and stop trusting the
 * old. Returns the new key set (save it; the old key is revoked).
 *
 * @example
 * ```ts
 * const keys2 = await rotateKey({ store, keys }, 'targets');
 * ```
 */
export async function rotateKey(
  options: RepoAdminOptions,
  role: RoleName,
  newKey: SigningKey = generateSigningKey(),
): Promise<KeySet> {
  const ctx = ctxOf(options);
  const trusted = await readRepository(ctx.store, ctx.clock);
  const oldRoot = trusted.root;
  const oldRootKey = keyFor(ctx, oldRoot, 'root');
  const roles = { ...oldRoot.roles, [role]: { keyids: [newKey.keyid], threshold: 1 } };
  const used = new Set(Object.values(roles).flatMap((r) => r.keyids));
  const keys: RootMetadata['keys'] = Object.fromEntries(
    Object.entries({ ...oldRoot.keys, [newKey.keyid]: newKey.entry }).filter(([id]) => used.has(id)),
  );
  const root: RootMetadata = { ...oldRoot, version: oldRoot.version + 1, expires: expires(ctx, 'root'), keys, roles };
  await writeRoot(ctx, root, role === 'root' ? [oldRootKey, newKey] : [oldRootKey]);
  const newKeys: KeySet = { ...ctx.keys, [role]: newKey };
  // Re-sign the rest with the new keys (the current targets may be signed by the replaced key,
  // so they cannot be read back through the new root first).
  await writeTopLevel(
    { ...ctx, keys: newKeys },
    root,
    { targets: { ...trusted.targets.targets }, version: trusted.targets.version + 1 },
    {
      snapshot: trusted.snapshot.version + 1,
      timestamp: trusted.timestamp.version + 1,
    },
  );
  return newKeys;
}
