import type { Machine, VBoxContext } from './machine.js';
import { readMachine } from './machine.js';
import { mapVBoxError, parseErrorLines } from './errors.js';
import { parseSnapshotList, type ListedSnapshot } from './parse.js';

/** Children before their parents, so every snapshot has no child left when it is deleted. */
function leavesFirst(list: readonly ListedSnapshot[]): ListedSnapshot[] {
  const out: ListedSnapshot[] = [];
  const walk = (parent: string | null): void => {
    for (const s of list.filter((x) => x.parentUuid === parent)) {
      walk(s.uuid);
      out.push(s);
    }
  };
  walk(null);
  return out;
}

/** The hard disk and DVD attachments of the VM's current state: `{ controller, port, device }`. */
export function attachments(m: Machine): { controller: string; port: string; device: string; medium: string }[] {
  const out: { controller: string; port: string; device: string; medium: string }[] = [];
  const controllers = [...m.info.values.entries()]
    .filter(([k]) => /^storagecontrollername\d+$/.test(k))
    .map(([, v]) => v);
  for (const controller of controllers) {
    for (const [key, medium] of m.info.values) {
      if (!key.startsWith(`${controller}-`)) continue;
      const rest = /^(\d+)-(\d+)$/.exec(key.slice(controller.length + 1));
      if (!rest || medium === 'none') continue;
      out.push({ controller, port: rest[1]!, device: rest[2]!, medium });
    }
  }
  return out;
}

/**
 * Removes a VM's definition and keeps its disks, holding the VM's current state.
 *
 * Plain `unregistervm` leaves the VM's folder and settings file behind, and the next `createvm`
 * of that name then fails with "Machine settings file ... already exists" (VBOX_E_FILE_ERROR).
 * `unregistervm --delete` removes them, but also every hard disk the machine or any of its
 * snapshots refers to, base images included. So: delete the snapshots first, children before
 * parents (VirtualBox merges each one's differencing image, so the disks end up holding the
 * current state), detach every medium, and only then `unregistervm --delete`, which is left
 * with nothing but the settings file, logs, saved states and the folder to delete.
 */
export async function unregisterKeepingDisks(ctx: VBoxContext, m: Machine): Promise<{ snapshotsDeleted: string[] }> {
  const { cli } = ctx;
  const r = await cli.exec(['snapshot', m.uuid, 'list', '--machinereadable']);
  let snapshots: ListedSnapshot[] = [];
  if (!(r.exitCode !== 0 && /does not have any snapshots/.test(r.stdout + r.stderr))) {
    const report = parseErrorLines(`${r.stderr}\n${r.stdout}`);
    if (r.exitCode !== 0 || report) throw mapVBoxError(r, `List snapshots of "${m.name}"`, report);
    snapshots = parseSnapshotList(r.stdout);
  }
  const deleted: string[] = [];
  for (const s of leavesFirst(snapshots)) {
    await cli.run(['snapshot', m.uuid, 'delete', s.uuid], `Delete snapshot "${s.name}" of "${m.name}"`);
    deleted.push(s.name);
  }
  const current = await readMachine(ctx, m.name, m.uuid);
  for (const a of attachments(current)) {
    await cli.run(
      [
        'storageattach',
        m.uuid,
        `--storagectl=${a.controller}`,
        `--port=${a.port}`,
        `--device=${a.device}`,
        '--medium=none',
      ],
      `Detach ${a.medium} from "${m.name}"`,
    );
  }
  await cli.run(['unregistervm', m.uuid, '--delete'], `Unregister "${m.name}"`);
  return { snapshotsDeleted: deleted };
}
