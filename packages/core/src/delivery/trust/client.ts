import { systemClock, type Clock } from '../../clock.js';
import { IntegrityError, InvalidInputError, NotFoundError, TandemError } from '../../errors.js';
import { compareVersions } from '../paths.js';
import { sha256Hex } from '../manifest.js';
import type { RepoStore } from '../store/types.js';
import type { RoleName } from './keys.js';
import {
  consistentTargetPath,
  parseEnvelope,
  verifyRole,
  type Envelope,
  type MetaFile,
  type RoleMetadata,
  type RootMetadata,
  type TargetFile,
} from './metadata.js';
import type { TrustStore } from './trust-store.js';

/** Size limits for metadata whose length nothing announces. */
const MAX_ROOT = 512 * 1024;
const MAX_TIMESTAMP = 64 * 1024;
const MAX_OTHER = 64 * 1024 * 1024;
const MAX_ROOT_ROTATIONS = 1024;

/** Options for {@link RepositoryClient}. */
export interface RepositoryClientOptions {
  store: RepoStore;
  /** The last verified metadata; kept across runs so rollbacks are caught. */
  trust: TrustStore;
  /** The repository's root metadata, obtained out of band; needed when `trust` has none yet. */
  initialRoot?: Uint8Array;
  clock?: Clock;
  /** Accept expired timestamp, snapshot and targets (publishers replacing them); never for clients. */
  ignoreExpiry?: boolean;
  /** Told about every integrity failure before it is thrown. */
  onIntegrityFailure?: (error: IntegrityError) => void;
}

/** Verified metadata of every role. */
export interface TrustedMetadata {
  readonly root: RootMetadata;
  readonly timestamp: RoleMetadata['timestamp'];
  readonly snapshot: RoleMetadata['snapshot'];
  readonly targets: RoleMetadata['targets'];
}

/** A version chosen from verified targets metadata. */
export interface ResolvedTarget {
  /** Path of the version's manifest in the repository. */
  readonly path: string;
  readonly file: TargetFile;
}

/**
 * Reads a repository's signed metadata the way The Update Framework's client workflow does:
 * walks the root chain (key rotation), then timestamp, snapshot and targets, checking
 * signatures against the trusted root, version numbers against the last trusted ones (no
 * rollback) and expiry dates against the clock (no freeze).
 *
 * @example
 * ```ts
 * const client = new RepositoryClient({ store, trust: new DirectoryTrustStore(dir), initialRoot });
 * await client.refresh();
 * const target = client.resolve('legacy-erp', { channel: 'stable' });
 * ```
 */
export class RepositoryClient {
  readonly #store: RepoStore;
  readonly #trust: TrustStore;
  readonly #clock: Clock;
  readonly #options: RepositoryClientOptions;
  #trusted: TrustedMetadata | undefined;

  constructor(options: RepositoryClientOptions) {
    this.#store = options.store;
    this.#trust = options.trust;
    this.#clock = options.clock ?? systemClock;
    this.#options = options;
  }

  /** The metadata verified by the last {@link RepositoryClient.refresh}. */
  get trusted(): TrustedMetadata {
    if (!this.#trusted) throw new InvalidInputError('Call refresh() before reading trusted metadata.');
    return this.#trusted;
  }

  /** Runs the update workflow and returns the verified metadata. */
  async refresh(): Promise<TrustedMetadata> {
    try {
      const root = await this.#updateRoot();
      const timestamp = await this.#updateTimestamp(root);
      const snapshot = await this.#updateSnapshot(root, timestamp.meta['snapshot.json']);
      const targets = await this.#updateTargets(root, snapshot.meta['targets.json']);
      this.#trusted = { root, timestamp, snapshot, targets };
      return this.#trusted;
    } catch (err) {
      if (err instanceof IntegrityError) this.#options.onIntegrityFailure?.(err);
      throw err;
    }
  }

  async #updateRoot(): Promise<RootMetadata> {
    let bytes = await this.#trust.load('root');
    const fromTrust = bytes !== null;
    bytes ??= this.#options.initialRoot ? Buffer.from(this.#options.initialRoot) : null;
    if (!bytes) {
      throw new InvalidInputError(
        `No trusted root metadata for ${this.#store.location}: give the repository's root.json, obtained out of band (for example shipped with the endpoint's configuration), on the first pull.`,
      );
    }
    let env = parseEnvelope(bytes, 'root', fromTrust ? 'trusted root.json' : 'the given root.json');
    verifyRole(env, env.signed, 'root', fromTrust ? 'trusted root.json' : 'the given root.json');
    if (!fromTrust) await this.#trust.save('root', bytes);
    for (let i = 0; i < MAX_ROOT_ROTATIONS; i++) {
      const next = env.signed.version + 1;
      const path = `${next}.root.json`;
      const data = await this.#store.get(path, { maxBytes: MAX_ROOT });
      if (!data) break;
      const candidate = parseEnvelope(data, 'root', path);
      // A new root must be signed by the old root's keys and by its own.
      verifyRole(candidate, env.signed, 'root', `${path} (by the previous root's keys)`);
      verifyRole(candidate, candidate.signed, 'root', `${path} (by its own keys)`);
      if (candidate.signed.version !== next)
        throw integrity(`${path} says it is version ${candidate.signed.version}`, 'rollback', path);
      const rotated = (role: RoleName): boolean =>
        candidate.signed.roles[role].keyids.join() !== env.signed.roles[role].keyids.join();
      if (rotated('timestamp') || rotated('snapshot')) {
        // Lets the repository recover from a fast-forward attack after rotating those keys.
        await this.#trust.remove('timestamp');
        await this.#trust.remove('snapshot');
      }
      env = candidate;
      await this.#trust.save('root', data);
    }
    this.#checkExpiry(env.signed, 'root.json', true);
    return env.signed;
  }

  async #updateTimestamp(root: RootMetadata): Promise<RoleMetadata['timestamp']> {
    const data = await this.#store.get('timestamp.json', { maxBytes: MAX_TIMESTAMP });
    if (!data)
      throw new NotFoundError(
        `${this.#store.location} has no timestamp.json; it is not a Tandem repository, or nothing was pushed to it yet.`,
      );
    const env = parseEnvelope(data, 'timestamp', 'timestamp.json');
    verifyRole(env, root, 'timestamp', 'timestamp.json');
    const trusted = await this.#loadTrusted('timestamp', root);
    if (trusted) {
      if (env.signed.version < trusted.signed.version) {
        throw integrity(
          `timestamp.json is version ${env.signed.version}, older than the trusted ${trusted.signed.version}: a rollback attempt`,
          'rollback',
          'timestamp.json',
        );
      }
      if (env.signed.meta['snapshot.json'].version < trusted.signed.meta['snapshot.json'].version) {
        throw integrity(
          'timestamp.json points at an older snapshot than the trusted one: a rollback attempt',
          'rollback',
          'timestamp.json',
        );
      }
    }
    this.#checkExpiry(env.signed, 'timestamp.json');
    if (!trusted || env.signed.version > trusted.signed.version) await this.#trust.save('timestamp', data);
    return env.signed;
  }

  async #updateSnapshot(root: RootMetadata, meta: MetaFile): Promise<RoleMetadata['snapshot']> {
    const path = root.consistent_snapshot ? `${meta.version}.snapshot.json` : 'snapshot.json';
    const data = await this.#fetchMeta(path, meta);
    const env = parseEnvelope(data, 'snapshot', path);
    verifyRole(env, root, 'snapshot', path);
    if (env.signed.version !== meta.version)
      throw integrity(
        `${path} is version ${env.signed.version}, timestamp.json says ${meta.version}`,
        'mismatch',
        path,
      );
    const trusted = await this.#loadTrusted('snapshot', root);
    if (trusted && env.signed.meta['targets.json'].version < trusted.signed.meta['targets.json'].version) {
      throw integrity(
        `${path} points at targets version ${env.signed.meta['targets.json'].version}, older than the trusted ${trusted.signed.meta['targets.json'].version}: a rollback attempt`,
        'rollback',
        path,
      );
    }
    this.#checkExpiry(env.signed, path);
    await this.#trust.save('snapshot', data);
    return env.signed;
  }

  async #updateTargets(root: RootMetadata, meta: MetaFile): Promise<RoleMetadata['targets']> {
    const path = root.consistent_snapshot ? `${meta.version}.targets.json` : 'targets.json';
    const data = await this.#fetchMeta(path, meta);
    const env = parseEnvelope(data, 'targets', path);
    verifyRole(env, root, 'targets', path);
    if (env.signed.version !== meta.version)
      throw integrity(`${path} is version ${env.signed.version}, snapshot says ${meta.version}`, 'mismatch', path);
    this.#checkExpiry(env.signed, path);
    await this.#trust.save('targets', data);
    return env.signed;
  }

  async #fetchMeta(path: string, meta: MetaFile): Promise<Buffer> {
    let data: Buffer | null;
    try {
      data = await this.#store.get(path, { maxBytes: meta.length ?? MAX_OTHER });
    } catch (err) {
      if (TandemError.is(err) && err.details['tooLarge'] === true)
        throw integrity(`${path} is longer than its signed length`, 'digest', path);
      throw err;
    }
    if (!data)
      throw new NotFoundError(
        `${path} is missing from ${this.#store.location}; the repository is incomplete (a push may be in progress).`,
      );
    if (meta.length !== undefined && data.length !== meta.length)
      throw integrity(`${path} is ${data.length} bytes, its signed length is ${meta.length}`, 'digest', path);
    if (meta.hashes && sha256Hex(data) !== meta.hashes.sha256)
      throw integrity(`${path} does not match its signed SHA-256`, 'digest', path);
    return data;
  }

  async #loadTrusted<R extends 'timestamp' | 'snapshot'>(
    role: R,
    root: RootMetadata,
  ): Promise<Envelope<RoleMetadata[R]> | null> {
    const bytes = await this.#trust.load(role);
    if (!bytes) return null;
    try {
      const env = parseEnvelope(bytes, role, `trusted ${role}.json`);
      verifyRole(env, root, role, `trusted ${role}.json`);
      return env;
    } catch {
      // Signed by keys the current root no longer lists: forget it.
      await this.#trust.remove(role);
      return null;
    }
  }

  #checkExpiry(signed: { expires: string }, source: string, always = false): void {
    if (this.#options.ignoreExpiry && !always) return;
    if (Date.parse(signed.expires) <= this.#clock.now()) {
      throw integrity(
        `${source} expired at ${signed.expires}: the repository is not being maintained, or someone is replaying old metadata (a freeze attack). Its publisher must refresh it (\`tandem repo refresh\`)`,
        'expired',
        source,
      );
    }
  }

  /**
   * Picks a workspace version from verified targets: `version` exactly, or the version a
   * `channel` points at, or (neither) the `stable` channel, else the highest version.
   */
  resolve(workspace: string, options: { version?: string; channel?: string } = {}): ResolvedTarget {
    const all = Object.entries(this.trusted.targets.targets)
      .filter(([, f]) => f.custom.workspace === workspace)
      .map(([path, file]) => ({ path, file }));
    if (all.length === 0)
      throw new NotFoundError(`${this.#store.location} has no workspace ${workspace}.`, { details: { workspace } });
    const versions = all.map((t) => t.file.custom.version).sort(compareVersions);
    if (options.version !== undefined) {
      const hit = all.find((t) => t.file.custom.version === options.version);
      if (!hit)
        throw new NotFoundError(`${workspace} has no version ${options.version}; published: ${versions.join(', ')}.`, {
          details: { workspace, versions },
        });
      return hit;
    }
    const channel = options.channel ?? 'stable';
    const hit = all.find((t) => t.file.custom.channels.includes(channel));
    if (hit) return hit;
    if (options.channel !== undefined) {
      throw new NotFoundError(`${workspace} has no channel ${channel}.`, { details: { workspace, channel } });
    }
    return all.find((t) => t.file.custom.version === versions[versions.length - 1])!;
  }

  /**
   * Fetches a target (a manifest) and checks its length and SHA-256 against targets metadata.
   * With consistent snapshots it is read from its hash-prefixed path (see
   * {@link consistentTargetPath}); a repository pushed before Tandem wrote that copy has only the
   * plain path, which is read instead.
   */
  async fetchTarget(target: ResolvedTarget): Promise<Buffer> {
    const options = { maxBytes: target.file.length };
    let data = this.trusted.root.consistent_snapshot
      ? await this.#store.get(consistentTargetPath(target.path, target.file.hashes.sha256), options)
      : null;
    data ??= await this.#store.get(target.path, options);
    if (!data)
      throw new NotFoundError(`${target.path} is listed in targets metadata but missing from ${this.#store.location}.`);
    if (data.length !== target.file.length || sha256Hex(data) !== target.file.hashes.sha256) {
      const err = integrity(
        `${target.path} does not match the SHA-256 signed in targets metadata`,
        'digest',
        target.path,
      );
      this.#options.onIntegrityFailure?.(err);
      throw err;
    }
    return data;
  }
}

function integrity(what: string, kind: 'rollback' | 'expired' | 'digest' | 'mismatch', source: string): IntegrityError {
  const advice = kind === 'expired' ? '.' : '; nothing was installed. Check the repository or the network path to it.';
  return new IntegrityError(`${what}${advice}`, { details: { kind, source } });
}
