// @tandem/core/testing: the mock adapter, the adapter conformance suite and test helpers.
export { MockAdapter, mockAdapterModule, MOCK_GUEST_LABEL } from './mock-adapter.js';
export type { MockAdapterOptions } from './mock-adapter.js';
export { mockConformanceSubject, mockVmSpec } from './mock-conformance.js';
export { MockFaults } from './mock-faults.js';
export type { MockCall, MockOperation } from './mock-faults.js';
export type { MockHypervisorState, MockVmRecord } from './mock-state.js';
export { adapterConformanceSuite } from './conformance.js';
export type {
  ConformanceGuest,
  ConformanceHooks,
  ConformanceIt,
  ConformanceOptions,
  ConformanceSubject,
  ConformanceTestApi,
  ConformanceTestBody,
} from './conformance.js';
export { integrationGate } from './integration.js';
export { loopbackSshd } from './loopback-sshd.js';
export type { LoopbackSshd } from './loopback-sshd.js';
export type { IntegrationGate } from './integration.js';
export { VirtualClock } from '../clock.js';
