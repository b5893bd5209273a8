// @tandem/core/mock: the mock adapter alone (an in-memory hypervisor with a virtual clock and
// fault injection), for demos and an integrator's own tests. The conformance suite and the test
// SSH server stay in @tandem/core/testing.
export { MockAdapter, mockAdapterModule } from '../testing/mock-adapter.js';
export type { MockAdapterOptions } from '../testing/mock-adapter.js';
export { MockFaults } from '../testing/mock-faults.js';
export type { MockCall, MockOperation } from '../testing/mock-faults.js';
export type { MockHypervisorState, MockVmRecord } from '../testing/mock-state.js';
export { VirtualClock } from '../clock.js';
