// @tandem/core/identity/testing: a real OpenLDAP slapd and the directory fixture, for other
// packages' integration tests (the server's LDAP sign-in). Not for production code.
export {
  DEFAULT_SLAPD_POLICY,
  SLAPADD,
  SLAPD,
  slapdProblem,
  sshaOf,
  startSlapd,
  type SlapdPolicy,
  type TestSlapd,
} from './slapd.test-helper.js';
export { DIRECTORY_FIXTURE, type DirectoryFixture } from './conformance.js';
