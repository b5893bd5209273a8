// @tandem/core/delivery: packing, pushing and pulling workspace images (chunker, manifests,
// stores, signed repository metadata).

export { GEAR_TABLE_NAME, gearTableDigest } from './gear.js';
export { chunkingParams, checkChunkingParams, chunkBuffer, chunkFile, DEFAULT_CHUNKING } from './fastcdc.js';
export type { ChunkingParams, ChunkingOptions, ChunkSpan, FileChunk } from './fastcdc.js';
export { parseManifest, serializeManifest, distinctChunks, PACKAGE_SELF, ENCRYPTION_SCHEME } from './manifest.js';
export type { ImageManifest, ChunkRef, ChunkLocation, ManifestEncryption } from './manifest.js';
export { openPackage } from './package-file.js';
export type { WorkspacePackage, PackageFormat } from './package-file.js';
export { DEFAULT_VOLUME_SIZE, PACKAGE_MANIFEST_FILE } from './package-directory.js';
export { packWorkspace } from './pack.js';
export type { PackOptions, PackProgress, PackResult } from './pack.js';
export { pushPackage, manifestPathFor } from './push.js';
export type { PushOptions, PushProgress, PushResult } from './push.js';
export { pullWorkspace } from './pull.js';
export type { PullOptions, PullResult, EncryptedImageNeed } from './pull.js';
export type { EncryptedImageStore, EncryptedImage } from './at-rest.js';
export { diskKeyFor } from './pull-encrypted.js';
export { releaseDiskKeys } from './start-keys.js';
export type { DiskKeyRelease } from './start-keys.js';
export type { SyncProgress, SyncPhase } from './progress.js';
export { InstallDir } from './install-dir.js';
export type { InstalledPointer } from './install-dir.js';
export { planRanges } from './fetch-plan.js';
export type { ChunkToFetch, RangeRequest, RangePlanOptions } from './fetch-plan.js';
export { DirectoryStore } from './store/directory.js';
export { HttpStore } from './store/http.js';
export type { HttpStoreOptions } from './store/http.js';
export type { HttpTransportOptions } from './store/http-client.js';
export { S3Store } from './store/s3.js';
export type { S3StoreOptions } from './store/s3.js';
export { signV4 } from './store/sigv4.js';
export type { S3Credentials, SigningInput } from './store/sigv4.js';
export { openStore } from './store/open.js';
export type { OpenStoreOptions } from './store/open.js';
export type { RepoStore, StoreStats, ReadOptions } from './store/types.js';
export { generateSigningKey, loadKeys, saveKey, saveKeys, signingKeyFrom, keyIdOf, ROLES } from './trust/keys.js';
export type { KeySet, RoleName, SigningKey, PublicKeyEntry } from './trust/keys.js';
export type {
  RootMetadata,
  TargetsMetadata,
  SnapshotMetadata,
  TimestampMetadata,
  TargetFile,
  WorkspaceTargetInfo,
  Envelope,
} from './trust/metadata.js';
export { consistentTargetPath } from './trust/metadata.js';
export { RepositoryClient } from './trust/client.js';
export type { RepositoryClientOptions, TrustedMetadata, ResolvedTarget } from './trust/client.js';
export { DirectoryTrustStore, MemoryTrustStore } from './trust/trust-store.js';
export type { TrustStore } from './trust/trust-store.js';
export {
  initRepository,
  readRepository,
  updateTargets,
  setChannel,
  refreshRepository,
  rotateKey,
  DEFAULT_EXPIRY,
} from './trust/publisher.js';
export type { RepoAdminOptions, ExpiryPolicy } from './trust/publisher.js';
