import { sign as edSign, verify as edVerify } from 'node:crypto';
import { z } from 'zod';
import { IntegrityError } from '../../errors.js';
import { canonicalJson } from './canonical.js';
import { keyIdOf, publicKeyOf, type PublicKeyEntry, type RoleName, type SigningKey } from './keys.js';

/** TUF specification version these files follow. */
export const SPEC_VERSION = '1.0.31';

/** Keys and threshold of a role. */
export interface RoleKeys {
  readonly keyids: readonly string[];
  readonly threshold: number;
}

/** Common fields of every role's metadata. */
interface Common<T extends RoleName> {
  readonly _type: T;
  readonly spec_version: string;
  readonly version: number;
  /** ISO 8601, UTC. Metadata past this is refused: no client can be frozen on stale data. */
  readonly expires: string;
}

/** A file's length and SHA-256, as snapshot and timestamp list them. */
export interface MetaFile {
  readonly version: number;
  readonly length?: number;
  readonly hashes?: { readonly sha256: string };
}

/** The root role: who may sign what. */
export interface RootMetadata extends Common<'root'> {
  readonly consistent_snapshot: boolean;
  readonly keys: Readonly<Record<string, PublicKeyEntry>>;
  readonly roles: Readonly<Record<RoleName, RoleKeys>>;
}

/** The custom data of a workspace version in targets metadata. */
export interface WorkspaceTargetInfo {
  readonly workspace: string;
  readonly version: string;
  /** Channels (stable, pilot, ...) that currently point at this version. */
  readonly channels: readonly string[];
  readonly imageSha256: string;
  readonly imageSize: number;
}

/** One target file: a version manifest. */
export interface TargetFile {
  readonly length: number;
  readonly hashes: { readonly sha256: string };
  readonly custom: WorkspaceTargetInfo;
}

/**
 * Where a target is stored under TUF's consistent snapshots (`consistent_snapshot: true`): the
 * same directory, the file name prefixed with its SHA-256 (`manifests/erp/<sha256>.3.2.0.manifest`
 * for `manifests/erp/3.2.0.manifest`), which is what standard TUF clients such as `tuf-js` ask for.
 */
export function consistentTargetPath(path: string, sha256: string): string {
  const slash = path.lastIndexOf('/');
  return `${path.slice(0, slash + 1)}${sha256}.${path.slice(slash + 1)}`;
}

/** The targets role: which manifests exist, with their digests and channels. */
export interface TargetsMetadata extends Common<'targets'> {
  readonly targets: Readonly<Record<string, TargetFile>>;
}

/** The snapshot role: which targets metadata is current. */
export interface SnapshotMetadata extends Common<'snapshot'> {
  readonly meta: { readonly 'targets.json': MetaFile };
}

/** The timestamp role: which snapshot is current; short-lived. */
export interface TimestampMetadata extends Common<'timestamp'> {
  readonly meta: { readonly 'snapshot.json': MetaFile };
  /**
   * When the timestamp was signed (Tandem's addition; other TUF clients ignore it): a trusted
   * time for endpoints, which refuse a clock set back before it (see `TrustedTime`).
   */
  readonly issued?: string;
}

/** Metadata of each role. */
export interface RoleMetadata {
  root: RootMetadata;
  targets: TargetsMetadata;
  snapshot: SnapshotMetadata;
  timestamp: TimestampMetadata;
}

/** A signature over the canonical JSON of `signed`. */
export interface Signature {
  readonly keyid: string;
  /** Ed25519 signature, hex. */
  readonly sig: string;
}

/** A metadata file: the signed body and its signatures. */
export interface Envelope<T> {
  readonly signed: T;
  readonly signatures: readonly Signature[];
}

const HEX64 = /^[0-9a-f]{64}$/;
const common = <T extends RoleName>(type: T) => ({
  _type: z.literal(type),
  spec_version: z.string(),
  version: z.number().int().positive(),
  expires: z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'expected an ISO 8601 date'),
});
const metaFile = z.object({
  version: z.number().int().positive(),
  length: z.number().int().nonnegative().optional(),
  hashes: z.object({ sha256: z.string().regex(HEX64) }).optional(),
});
const roleKeys = z.object({ keyids: z.array(z.string().regex(HEX64)).min(1), threshold: z.number().int().positive() });
const keyEntry = z.object({
  keytype: z.literal('ed25519'),
  scheme: z.literal('ed25519'),
  keyval: z.object({ public: z.string().regex(/^[0-9a-f]{64}$/) }),
});

const schemas = {
  root: z.object({
    ...common('root'),
    consistent_snapshot: z.boolean(),
    keys: z.record(z.string(), keyEntry),
    roles: z.object({ root: roleKeys, targets: roleKeys, snapshot: roleKeys, timestamp: roleKeys }),
  }),
  targets: z.object({
    ...common('targets'),
    targets: z.record(
      z.string(),
      z.object({
        length: z.number().int().nonnegative(),
        hashes: z.object({ sha256: z.string().regex(HEX64) }),
        custom: z.object({
          workspace: z.string(),
          version: z.string(),
          channels: z.array(z.string()),
          imageSha256: z.string().regex(HEX64),
          imageSize: z.number().int().nonnegative(),
        }),
      }),
    ),
  }),
  snapshot: z.object({ ...common('snapshot'), meta: z.object({ 'targets.json': metaFile }) }),
  timestamp: z.object({
    ...common('timestamp'),
    meta: z.object({ 'snapshot.json': metaFile }),
    issued: z
      .string()
      .refine((s) => !Number.isNaN(Date.parse(s)), 'expected an ISO 8601 date')
      .optional(),
  }),
};

const envelopeSchema = z.object({
  signed: z.unknown(),
  signatures: z.array(z.object({ keyid: z.string(), sig: z.string() })),
});

/**
 * Parses a metadata file of `role`. Anything malformed is an IntegrityError: metadata comes
 * from the repository, and a damaged file is as untrustworthy as a forged one.
 */
export function parseEnvelope<R extends RoleName>(
  bytes: Uint8Array,
  role: R,
  source: string,
): Envelope<RoleMetadata[R]> {
  let data: unknown;
  try {
    data = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (err) {
    throw new IntegrityError(`${source} is not valid JSON; the repository is damaged or was tampered with.`, {
      cause: err,
      details: { source },
    });
  }
  const env = envelopeSchema.safeParse(data);
  const body = env.success ? schemas[role].safeParse(env.data.signed) : undefined;
  if (!env.success || !body?.success) {
    const issue = (env.success ? body?.error?.issues[0] : env.error.issues[0]) ?? undefined;
    throw new IntegrityError(
      `${source} is not valid ${role} metadata (${issue ? `${issue.path.join('.')}: ${issue.message}` : 'bad shape'}).`,
      { details: { source } },
    );
  }
  return { signed: env.data.signed as RoleMetadata[R], signatures: env.data.signatures };
}

/** Signs `signed` with every key given. */
export function signEnvelope<T>(signed: T, keys: readonly SigningKey[]): Envelope<T> {
  const bytes = Buffer.from(canonicalJson(signed), 'utf8');
  const signatures = keys.map((k) => ({ keyid: k.keyid, sig: edSign(null, bytes, k.privateKey).toString('hex') }));
  return { signed, signatures };
}

/** Serializes an envelope for the repository (readable JSON; signatures cover the canonical form). */
export function serializeEnvelope(envelope: Envelope<unknown>): Buffer {
  return Buffer.from(JSON.stringify(envelope, null, 1) + '\n', 'utf8');
}

/**
 * Throws IntegrityError unless at least `threshold` distinct keys of `role` in `root` signed
 * the envelope. Key ids are recomputed from the keys, never taken on faith.
 */
export function verifyRole(envelope: Envelope<unknown>, root: RootMetadata, role: RoleName, source: string): void {
  const { keyids, threshold } = root.roles[role];
  const bytes = Buffer.from(canonicalJson(envelope.signed), 'utf8');
  const good = new Set<string>();
  for (const s of envelope.signatures) {
    if (!keyids.includes(s.keyid) || good.has(s.keyid)) continue;
    const entry = root.keys[s.keyid];
    if (!entry || keyIdOf(entry) !== s.keyid || !/^[0-9a-f]{128}$/.test(s.sig)) continue;
    try {
      if (edVerify(null, bytes, publicKeyOf(entry), Buffer.from(s.sig, 'hex'))) good.add(s.keyid);
    } catch {
      // A malformed key or signature counts as no signature.
    }
  }
  if (good.size < threshold) {
    // No signature by any key this root knows at all: most likely the root is another repository's.
    const strangers =
      envelope.signatures.length > 0 && envelope.signatures.every((s) => root.keys[s.keyid] === undefined);
    const why = strangers
      ? `none of its ${envelope.signatures.length} signature${envelope.signatures.length === 1 ? ' is' : 's are'} by a key the trusted root knows. The trusted root.json most likely belongs to another repository: check that --root (or the install directory's trust/) came from this one. Otherwise the metadata was tampered with`
      : 'it was tampered with, or signed with a revoked key';
    throw new IntegrityError(
      `${source} is not signed by enough ${role} keys (${good.size} valid of ${threshold} needed): ${why}.`,
      { details: { source, role, valid: good.size, threshold, unknownKeys: strangers } },
    );
  }
}
