// @tandem/adapter-virtualbox/testing: what tests of other packages (the CLI's, the agent's) share
// with this adapter's own: the fake VBoxManage and a VBOX_USER_HOME for it.
export { fakeVBoxHome, FAKE_VBOXMANAGE } from './fake-vbox.js';
export type { FakeVBoxHome } from './fake-vbox.js';
