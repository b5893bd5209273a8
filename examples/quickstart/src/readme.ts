// The README's quick start, verbatim: a test checks that the README shows exactly this file.
import { EventBus, SessionManager, loadWorkspaceFile } from '@tandem/core';
import { MockAdapter } from '@tandem/core/testing';

const events = new EventBus();
events.on('session.transition', (e) => console.log(`${e.data.from} -> ${e.data.to}`));
const manager = new SessionManager({ adapter: new MockAdapter(), events });
const session = await manager.open(await loadWorkspaceFile('examples/quickstart/tandem.workspace.yaml'));
await session.start();
await session.stop();
