import { fileURLToPath } from 'node:url';
import {
  EventBus,
  SessionManager,
  buildSnapshotTree,
  formatSnapshotTree,
  loadWorkspaceFile,
  type AnyTandemEvent,
} from '@tandem/core';
import { MockAdapter } from '@tandem/core/mock';

/** The workspace file beside this example. */
export const WORKSPACE_FILE = fileURLToPath(new URL('../tandem.workspace.yaml', import.meta.url));

/**
 * Loads the workspace, starts a session on the mock adapter, takes a snapshot, suspends,
 * resumes, reverts and stops, printing each event as it happens.
 */
export async function runQuickstart(log: (line: string) => void = console.log): Promise<AnyTandemEvent[]> {
  const events = new EventBus();
  const seen: AnyTandemEvent[] = [];
  events.on('*', (e) => {
    seen.push(e);
    log(`  [event] ${e.at} ${e.type} ${JSON.stringify(e.data)}`);
  });

  const loaded = await loadWorkspaceFile(WORKSPACE_FILE);
  log(`workspace ${loaded.workspace.metadata.name} ${loaded.workspace.metadata.version} from ${loaded.file}`);

  const adapter = new MockAdapter({ hostMemoryMiB: 8192 });
  const probe = await adapter.probe();
  if (probe.usable) log(`adapter ${adapter.name}: ${probe.hypervisorVersion}, host ${probe.host.memoryMiB} MiB`);

  const manager = new SessionManager({ adapter, events });
  const session = await manager.open(loaded);
  const vm = (await adapter.list()).find((v) => v.name === session.vm);
  log(`session ${session.id}: VM ${session.vm} with ${vm?.memoryMiB} MiB (a quarter of the host, within 512..2048)`);

  log('start');
  await session.start();
  log('snapshot "clean"');
  const clean = await session.snapshot('clean', 'right after first start');
  log('suspend');
  await session.suspend();
  log('resume');
  await session.resume();
  log('snapshot "work"');
  await session.snapshot('work');
  log(`revert to "${clean.name}"`);
  await session.revert(clean.id);
  log('snapshot tree:');
  for (const line of formatSnapshotTree(buildSnapshotTree(await session.snapshots()))) log(`  ${line}`);
  log('stop');
  await session.stop({ timeoutMs: 5_000 });
  log(`session ${session.id} is ${session.state}`);
  await session.close();
  return seen;
}
