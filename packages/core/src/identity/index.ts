// @tandem/core/identity: the directory contract and its two implementations (LDAP / Active
// Directory, built-in), the shared directory suite, sign-in throttling and the endpoint's
// credential cache. Named exports only.

export type {
  AccountState,
  Directory,
  DirectoryGroup,
  DirectoryUser,
  SignInContext,
  SignInRefusal,
  SignInResult,
} from './directory.js';
export { SignInError, BAD_CREDENTIALS_MESSAGE } from './sign-in-error.js';
export type { SignInErrorOptions } from './sign-in-error.js';
export { hashPassword, verifyPassword, parsePasswordHash, DEFAULT_SCRYPT_PARAMS } from './password-hash.js';
export type { ScryptParams } from './password-hash.js';
export { MemoryDirectoryRecords } from './records.js';
export type {
  BuiltinGroupRecord,
  BuiltinUserRecord,
  DirectoryRecords,
  ThrottleRecord,
  ThrottleRecords,
} from './records.js';
export { BuiltinDirectory, builtinGroupDn, builtinUserDn, DEFAULT_PASSWORD_WARNING_MS } from './builtin.js';
export type { BuiltinDirectoryOptions, LockoutPolicy, NewBuiltinUser } from './builtin.js';
export { SignInThrottle, MemoryThrottleRecords, DEFAULT_THROTTLE_POLICY, throttleKeysOf } from './throttle.js';
export type { ThrottlePolicy } from './throttle.js';
export { LdapDirectory, LDAP_MATCHING_RULE_IN_CHAIN } from './ldap.js';
export type { LdapClient, LdapDirectoryOptions } from './ldap.js';
export {
  adAccount,
  adBindRefusal,
  openLdapAccount,
  parseAdInterval,
  parseFileTime,
  parseGeneralizedTime,
  formatGeneralizedTime,
  PPOLICY_PERMANENT_LOCK,
  UAC,
} from './ldap-values.js';
export type { AdDomainPolicy, LdapEntry, ParsedAccount, PpolicySettings } from './ldap-values.js';
export {
  CredentialCache,
  credentialFileOf,
  envelopeFileOf,
  DEFAULT_MAX_OFFLINE_MS,
  DEFAULT_OFFLINE_DELAY,
} from './credential-cache.js';
export type { CachedSignIn, CredentialCacheOptions, OfflineDelayPolicy } from './credential-cache.js';
export { directoryConformanceSuite, DIRECTORY_FIXTURE } from './conformance.js';
export type {
  DirectoryConformanceOptions,
  DirectoryFixture,
  DirectoryIt,
  DirectorySubject,
  FixtureGroup,
  FixtureUser,
} from './conformance.js';
