import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { runPublishingDemo } from './publishing.js';

it("publishes the quickstart's app and prints the transport commands with their policy flags", async () => {
  const xdgDir = mkdtempSync(join(tmpdir(), 'tandem-publishing-demo-'));
  try {
    const lines: string[] = [];
    const r = await runPublishingDemo({ xdgDir, log: (l) => lines.push(l) });
    expect(r.desktopEntry).toContain('Exec=tandem apps launch --workspace quickstart erp');
    expect(r.desktopEntry).toContain('X-Tandem-Workspace=quickstart');
    expect(r.freerdp).toEqual(
      expect.arrayContaining(['-clipboard', '-drives', '/audio-mode:2', '/wm-class:tandem-quickstart-erp']),
    );
    expect(r.freerdp.join(' ')).not.toContain('never on argv');
    expect(r.xpra).toEqual(expect.arrayContaining(['--clipboard-direction=to-server', '--border=#d9534f,2']));
    expect([...r.removed].sort()).toEqual([...r.files].sort());
    expect(lines.join('\n')).toMatch(/frame: .*draws no coloured frame/);
  } finally {
    rmSync(xdgDir, { recursive: true, force: true });
  }
});
