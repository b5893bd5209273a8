// @tandem/adapter-libvirt/testing: what tests of other packages (the CLI's, the agent's) share
// with this adapter's own: a private libvirtd to stop and start without touching the shared one.
export { alive, privateLibvirtd, privateLibvirtdProblem } from './private-libvirtd.js';
export type { PrivateLibvirtd } from './private-libvirtd.js';
