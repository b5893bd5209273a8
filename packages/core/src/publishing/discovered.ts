import type { GuestApp } from '../guest/protocol.js';
import type { PublishedApp } from '../workspace/schema.js';
import type { LauncherApp } from './freedesktop.js';

/**
 * Apps the guest agent discovered (`GuestConnection.apps()`), as launchers and as published apps
 * that `launchApp({ extraApps })` can start. Everything in them came from the guest and is
 * treated as untrusted by the launcher writers; the icon is kept only as the PNG bytes the agent
 * sent (the writers check it is one).
 *
 * @example
 * ```ts
 * const found = discoveredApps(await guest.apps());
 * launchers.install({ workspace: 'legacy-erp', apps: found.map((f) => f.launcher) });
 * ```
 */
export function discoveredApps(apps: readonly GuestApp[]): { launcher: LauncherApp; app: PublishedApp }[] {
  return apps.map((g) => ({
    launcher: {
      id: g.id,
      name: g.name,
      ...(g.icon ? { icon: { bytes: Buffer.from(g.icon.data, 'base64') } } : {}),
    },
    app: { id: g.id, name: g.name, command: g.command, args: [...g.args], fileTypes: [] },
  }));
}
