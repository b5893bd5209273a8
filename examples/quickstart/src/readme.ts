// The README's quick start, verbatim: a test checks that the README shows exactly this file.
import { EventBus, SessionManager, loadWorkspaceFile } from '@tandem/core';
import { MockAdapter } from '@tandem/core/mock';

const events = new EventBus();
events.on('session.transition', (e) => console.log(`${e.data.from} -> ${e.data.to}`));
const manager = new SessionManager({
  adapter: new MockAdapter(),
  events,
  // A machine policy layer wins over the workspace file's own usage policy.
  layers: [{ layer: 'machine-policy', policy: { usage: { onSessionEnd: 'shutdown' } } }],
});
await using session = await manager.open(await loadWorkspaceFile('examples/quickstart/tandem.workspace.yaml'));
await session.start(); // a PolicyDeniedError once the workspace has expired
console.log(`ended: ${await session.end()}`);
