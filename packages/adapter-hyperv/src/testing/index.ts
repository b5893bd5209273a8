// @tandem/adapter-hyperv/testing: what tests of other packages (the CLI's, the agent's) share
// with this adapter's own: the fake PowerShell with its fake Hyper-V module and a home for it.
export { fakeHyperVHome, FAKE_PWSH } from './fake-hyperv.js';
export type { FakeHyperVHome, FakePwshCall } from './fake-hyperv.js';
