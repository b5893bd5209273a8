// GNOME Shell app folders written through the real gsettings (GLib's, from Debian's
// libglib2.0-bin, with gsettings-desktop-schemas' org.gnome.desktop.app-folders) on its keyfile
// backend: no GNOME session or D-Bus is needed, and the keyfile is parsed back as dconf's data.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { integrationGate } from '../testing/integration.js';
import { FreedesktopLaunchers } from './freedesktop.js';
import { GnomeAppFolders, gnomeFoldersFor, gsettingsRunner, parseGvariantStrings } from './gnome-app-folders.js';

const gate = await integrationGate(
  'gsettings with the org.gnome.desktop.app-folders schema',
  async () => {
    try {
      const schemas = execFileSync('gsettings', ['list-schemas'], { encoding: 'utf8' });
      return schemas.split('\n').includes('org.gnome.desktop.app-folders')
        ? null
        : 'the org.gnome.desktop.app-folders schema is not installed';
    } catch {
      return 'gsettings is not installed';
    }
  },
  'apt-get install libglib2.0-bin gsettings-desktop-schemas (bash .ci/run does)',
);

describe.skipIf(!gate.enabled)('GNOME app folders through the real gsettings', () => {
  let dir: string;
  let gsettings: ReturnType<typeof gsettingsRunner>;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'tandem-gnome-'));
    gsettings = gsettingsRunner({ GSETTINGS_BACKEND: 'keyfile', XDG_CONFIG_HOME: join(dir, 'config') });
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const keyfile = (): string => readFileSync(join(dir, 'config', 'glib-2.0', 'settings', 'keyfile'), 'utf8');

  it('adds a folder per startMenuFolder after the user own ones; a new version and removal take away exactly what was added', () => {
    // The user's own folders, in their order.
    gsettings(['set', 'org.gnome.desktop.app-folders', 'folder-children', "['Utilities', 'Mine\\'s']"]);
    const launchers = new FreedesktopLaunchers({
      dataHome: join(dir, 'data'),
      configHome: join(dir, 'config'),
      gsettings,
    });
    const apps = [
      { id: 'erp', name: 'Legacy ERP', startMenuFolder: 'Legacy' },
      { id: 'ledger', name: 'Ledger', startMenuFolder: 'Legacy' },
      { id: 'notes', name: 'Notes', startMenuFolder: "Tools 'n' more" },
    ];
    launchers.install({ workspace: 'legacy-erp', apps });
    const folders = launchers.gnomeAppFolders();
    const r = folders.apply('legacy-erp', gnomeFoldersFor('legacy-erp', apps));
    expect(r.added).toHaveLength(2);
    const children = parseGvariantStrings(gsettings(['get', 'org.gnome.desktop.app-folders', 'folder-children']));
    const legacy = r.added[0]!;
    expect(legacy).toMatch(/^tandem-legacy-erp-legacy-/);
    expect(children).toEqual(['Utilities', "Mine's", ...r.added]);
    const path = `org.gnome.desktop.app-folders.folder:/org/gnome/desktop/app-folders/folders/${legacy}/`;
    expect(parseGvariantStrings(gsettings(['get', path, 'apps']))).toEqual([
      'tandem-legacy-erp-erp.desktop',
      'tandem-legacy-erp-ledger.desktop',
    ]);
    expect(parseGvariantStrings(gsettings(['get', path, 'name']))).toEqual(['Legacy']);
    // What dconf would hold: the keyfile has the folder under its path.
    expect(keyfile()).toContain(`[org/gnome/desktop/app-folders/folders/${legacy}]`);

    // Version 2 drops the tools folder: only that one goes.
    const v2 = folders.apply('legacy-erp', gnomeFoldersFor('legacy-erp', apps.slice(0, 2)));
    expect(v2).toEqual({ added: [], removed: [r.added[1]] });
    expect(parseGvariantStrings(gsettings(['get', 'org.gnome.desktop.app-folders', 'folder-children']))).toEqual([
      'Utilities',
      "Mine's",
      legacy,
    ]);

    // Deprovisioning (FreedesktopLaunchers.remove, as tandem down and apps unpublish run it).
    launchers.remove('legacy-erp');
    expect(parseGvariantStrings(gsettings(['get', 'org.gnome.desktop.app-folders', 'folder-children']))).toEqual([
      'Utilities',
      "Mine's",
    ]);
    // Reset keys leave at most an empty group header behind in the keyfile: no value names Tandem's.
    expect(
      keyfile()
        .split('\n')
        .filter((l) => !l.startsWith('[') && l.includes('tandem-legacy-erp')),
    ).toEqual([]);
    expect(parseGvariantStrings(gsettings(['get', path, 'apps']))).toEqual([]);
    expect(gsettings(['get', path, 'name']).trim()).toBe("''");
    expect(folders.recorded('legacy-erp')).toEqual([]);
  });

  it('a record edited to name a folder that is not Tandem-made touches nothing', () => {
    gsettings(['set', 'org.gnome.desktop.app-folders', 'folder-children', "['Utilities']"]);
    const folders = new GnomeAppFolders({ recordDir: join(dir, 'records'), gsettings });
    folders.apply('ws', [{ id: 'tandem-ws-a', name: 'A', apps: ['tandem-ws-x.desktop'] }]);
    const file = folders.recordFile('ws');
    writeFileSync(file, JSON.stringify({ workspace: 'ws', folders: [{ id: 'Utilities', name: 'U', apps: [] }] }));
    expect(folders.remove('ws').removed).toEqual([]);
    expect(parseGvariantStrings(gsettings(['get', 'org.gnome.desktop.app-folders', 'folder-children']))).toContain(
      'Utilities',
    );
  });
});
