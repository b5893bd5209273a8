// @tandem/core/crypto: data keys, device keys, key release (envelopes and offline leases),
// trusted time and chunk encryption. Named exports only.

export { SecretKey, wipe } from './secret.js';
export { DataKey, DATA_KEY_BYTES, dataKeyIdOf, deriveKey } from './data-key.js';
export type { DataKeyPurpose } from './data-key.js';
export {
  DeviceKeys,
  DEVICE_KEY_FILE,
  devicePublicKeyOf,
  formatDevicePublicKey,
  parseDevicePublicKey,
} from './device-key.js';
export type { DevicePublicKey } from './device-key.js';
export { parseVersionRange, versionInRange, compareVersions } from './versions.js';
export type { VersionRange } from './versions.js';
export { ENVELOPE_SUITE, MAX_ENVELOPE_BYTES, parseEnvelope, readGrant, serializeEnvelope } from './envelope.js';
export type { KeyEnvelope, KeyGrant, Lease } from './envelope.js';
export { KeyReleaseAuthority, timeOf } from './authority.js';
export type { SealRequest, TimeInput } from './authority.js';
export { openEnvelope, openEndpointKeys, requireDataKey, keysDirOf } from './release.js';
export type { OpenEnvelopeOptions, ReleasedKey } from './release.js';
export { TrustedTime, TRUSTED_TIME_FILE, DEFAULT_CLOCK_TOLERANCE_MS } from './trusted-time.js';
export type { TrustedTimeSource } from './trusted-time.js';
export { ChunkCipher, CHUNK_TAG_BYTES, DELTA_OVERHEAD_BYTES } from './chunk-cipher.js';
export {
  ensurePrivateDir,
  makePrivateDir,
  writePrivateFile,
  readPrivateFile,
  PRIVATE_DIR_MODE,
  PRIVATE_FILE_MODE,
} from './private-files.js';
export { XtsCipher, XTS_SECTOR_BYTES } from './xts.js';
export { afMerge, parseLuks1Header, recoverLuks1MasterKey, LUKS1_PHDR_BYTES } from './luks1.js';
export type { Luks1Header, Luks1KeySlot } from './luks1.js';
