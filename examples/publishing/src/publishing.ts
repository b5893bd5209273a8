import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freeRdpArgs, xpraArgs } from '@tandem/adapter-libvirt';
import { PolicyEngine, SessionManager, parseWorkspace, type LaunchRequest } from '@tandem/core';
import { MockAdapter } from '@tandem/core/mock';
import { FreedesktopLaunchers, launchApp } from '@tandem/core/publishing';

const here = dirname(fileURLToPath(import.meta.url));

/** What the demo did, for its test. */
export interface PublishingDemoResult {
  readonly desktopEntry: string;
  readonly files: readonly string[];
  readonly freerdp: readonly string[];
  readonly xpra: readonly string[];
  readonly removed: readonly string[];
}

/**
 * Publishes the quickstart workspace's app as a freedesktop launcher under `xdgDir`, launches it
 * on the mock adapter with a machine policy that lets the clipboard into the guest, and prints
 * the FreeRDP and Xpra commands a real guest would get, with their policy flags.
 */
export async function runPublishingDemo(options: {
  xdgDir: string;
  log: (line: string) => void;
}): Promise<PublishingDemoResult> {
  const { xdgDir, log } = options;
  const text = readFileSync(join(here, '..', '..', 'quickstart', 'tandem.workspace.yaml'), 'utf8');
  const workspace = parseWorkspace(text, { file: 'examples/quickstart/tandem.workspace.yaml' });

  const launchers = new FreedesktopLaunchers({ dataHome: join(xdgDir, 'data'), configHome: join(xdgDir, 'config') });
  const installed = launchers.install({
    workspace: workspace.metadata.name,
    version: workspace.metadata.version,
    apps: workspace.spec.publishedApps.map((a) => ({
      id: a.id,
      name: a.name,
      ...(a.startMenuFolder !== undefined ? { startMenuFolder: a.startMenuFolder } : {}),
      fileTypes: a.fileTypes,
    })),
  });
  log(`installed ${installed.written.length} files under ${xdgDir}:`);
  for (const f of installed.written) log(`  ${f.slice(xdgDir.length + 1)}`);
  const entryFile = installed.written.find((f) => f.endsWith('.desktop'))!;
  const desktopEntry = readFileSync(entryFile, 'utf8');
  log('');
  log(desktopEntry.trimEnd());

  // The machine policy above the package: the clipboard may go into the guest, nothing else.
  const engine = new PolicyEngine({
    workspace,
    layers: [
      {
        layer: 'machine-policy',
        source: 'machine.policy.yaml',
        policy: { dataTransfer: [{ channel: 'clipboard', direction: 'host-to-guest', action: 'allow' }] },
      },
    ],
  });
  const adapter = new MockAdapter({ hostMemoryMiB: 8192 });
  const session = await new SessionManager({ adapter }).open({
    workspace,
    file: 'tandem.workspace.yaml',
    baseDir: here,
  });
  const launch = await launchApp({ session, appId: 'erp', policy: engine.forSubject({ user: 'ada' }) });
  log('');
  log(`session ${launch.sessionAction}; frame: ${launch.frame.drawn ? 'drawn' : launch.frame.note}`);
  const request: LaunchRequest = { ...launch.request, credentials: { username: 'ada', password: 'never on argv' } };
  const freerdp = [
    'xfreerdp',
    ...freeRdpArgs({ host: '192.168.122.35', port: 3389, syntax: 'v2', certificate: 'tofu' }, request),
  ];
  const xpra = [
    'xpra',
    ...xpraArgs({ host: '192.168.122.36', sshPort: 22 }, { ...request, command: '/usr/bin/gedit' }),
  ];
  log('');
  log('FreeRDP RemoteApp (Windows guest; the password goes to stdin):');
  log(`  ${freerdp.join(' ')}`);
  log('Xpra (a Linux guest, for comparison):');
  log(`  ${xpra.join(' ')}`);
  await launch.handle.close();
  await session.close();

  const removed = launchers.remove(workspace.metadata.name).removed;
  log('');
  log(`unpublished: ${removed.length} files removed, nothing else touched`);
  return { desktopEntry, files: installed.written, freerdp, xpra, removed };
}
