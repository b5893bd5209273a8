// tandem apps publish --gnome-folders and unpublish through the real gsettings (keyfile backend:
// no GNOME session needed), as a GNOME user's publish and tandem down would run it.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { integrationGate } from '@tandem/core/testing';
import { cliHarness } from '../cli-harness.test-helper.js';

const gate = await integrationGate(
  'gsettings with the org.gnome.desktop.app-folders schema',
  () => {
    try {
      return execFileSync('gsettings', ['list-schemas'], { encoding: 'utf8' })
        .split('\n')
        .includes('org.gnome.desktop.app-folders')
        ? null
        : 'the org.gnome.desktop.app-folders schema is not installed';
    } catch {
      return 'gsettings is not installed';
    }
  },
  'apt-get install libglib2.0-bin gsettings-desktop-schemas (bash .ci/run does)',
);

describe.skipIf(!gate.enabled)('tandem apps publish --gnome-folders', () => {
  let dir: string;
  const saved = ['GSETTINGS_BACKEND', 'XDG_CONFIG_HOME'].map((k) => process.env[k]);
  const tandem = cliHarness(() => join(dir, 'state'));
  const children = (): string =>
    execFileSync('gsettings', ['get', 'org.gnome.desktop.app-folders', 'folder-children'], { encoding: 'utf8' });
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'tandem-apps-gnome-'));
    process.env['GSETTINGS_BACKEND'] = 'keyfile';
    process.env['XDG_CONFIG_HOME'] = join(dir, 'config');
  });
  afterEach(() => {
    ['GSETTINGS_BACKEND', 'XDG_CONFIG_HOME'].forEach((k, i) => {
      if (saved[i] === undefined) delete process.env[k];
      else process.env[k] = saved[i];
    });
    rmSync(dir, { recursive: true, force: true });
  });

  it('adds a folder for startMenuFolder after the user own ones; unpublish takes exactly it away', async () => {
    execFileSync('gsettings', ['set', 'org.gnome.desktop.app-folders', 'folder-children', "['Utilities']"]);
    writeFileSync(
      join(dir, 'erp.yaml'),
      `apiVersion: tandem/v1\nkind: Workspace\nmetadata: { name: legacy-erp, version: 1.0.0 }\nspec:\n  image: { source: ./erp.qcow2, format: qcow2 }\n  hardware: { memory: { fixedMiB: 512 } }\n  publishedApps: [{ id: erp, name: Legacy ERP, command: /opt/erp, startMenuFolder: Legacy }]\n`,
    );
    expect((await tandem('up', join(dir, 'erp.yaml'), '--adapter', 'mock', '--no-start')).code).toBe(0);
    const where = ['--data-home', join(dir, 'data'), '--config-home', join(dir, 'config')];
    const pub = await tandem('--json', 'apps', 'publish', ...where, '--gnome-folders');
    expect(pub.code, pub.stderr).toBe(0);
    const [id] = pub.json.gnomeAppFolders.added as string[];
    expect(id).toMatch(/^tandem-legacy-erp-legacy-/);
    expect(children()).toBe(`['Utilities', '${id}']\n`);
    const un = await tandem('--json', 'apps', 'unpublish', ...where);
    expect(un.code, un.stderr).toBe(0);
    expect(children()).toBe("['Utilities']\n");
  });
});
