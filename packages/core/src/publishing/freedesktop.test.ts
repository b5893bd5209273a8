import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseDesktopFile, parseExecLine, unescapeDesktopValue } from './desktop-entry.js';
import { FreedesktopLaunchers, launcherMimeType, launcherWmClass } from './freedesktop.js';
import { isInside } from './installed-files.js';
import { safeSegment } from './names.js';
import { hostileString, solidPng, walk } from './test-helpers.test-helper.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tandem-launchers-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const launchers = (): FreedesktopLaunchers =>
  new FreedesktopLaunchers({
    dataHome: join(dir, 'data'),
    configHome: join(dir, 'config'),
    command: ['/usr/bin/tandem'],
  });

const erp = {
  workspace: 'legacy-erp',
  version: '3.2.0',
  apps: [
    {
      id: 'erp',
      name: 'Legacy ERP',
      startMenuFolder: 'Legacy',
      fileTypes: ['.erp', '.ERQ'],
      icon: { bytes: solidPng(40) },
    },
    { id: 'notes', name: 'Notes' },
  ],
};

describe('freedesktop launchers', () => {
  it('writes one desktop entry per app with its icon, MIME types, submenu and workspace key', () => {
    const l = launchers();
    const report = l.install(erp);
    const entryFile = join(dir, 'data', 'applications', 'tandem-legacy-erp-erp.desktop');
    const entry = parseDesktopFile(readFileSync(entryFile, 'utf8')).get('Desktop Entry')!;
    expect(entry.get('Name')).toBe('Legacy ERP');
    expect(parseExecLine(entry.get('Exec')!)).toEqual([
      '/usr/bin/tandem',
      'apps',
      'launch',
      '--workspace',
      'legacy-erp',
      'erp',
      '%F',
    ]);
    expect(entry.get('StartupWMClass')).toBe(launcherWmClass('legacy-erp', 'erp'));
    expect(entry.get('X-Tandem-Workspace')).toBe('legacy-erp');
    expect(entry.get('Icon')).toBe('tandem-legacy-erp-erp');
    expect(entry.get('MimeType')).toBe(
      `${launcherMimeType('legacy-erp', '.erp')};${launcherMimeType('legacy-erp', '.erq')};`,
    );
    // A 40x40 PNG goes to the smallest standard size that holds it.
    expect(existsSync(join(dir, 'data', 'icons', 'hicolor', '48x48', 'apps', 'tandem-legacy-erp-erp.png'))).toBe(true);
    const menu = readFileSync(join(dir, 'config', 'menus', 'applications-merged', 'tandem-legacy-erp.menu'), 'utf8');
    expect(menu).toContain('<Filename>tandem-legacy-erp-erp.desktop</Filename>');
    expect(menu).toContain(`<Directory>tandem-legacy-erp-${safeSegment('Legacy')}.directory</Directory>`);
    expect(menu).not.toContain('notes');
    const directory = parseDesktopFile(
      readFileSync(
        join(dir, 'data', 'desktop-directories', `tandem-legacy-erp-${safeSegment('Legacy')}.directory`),
        'utf8',
      ),
    );
    expect(directory.get('Desktop Entry')?.get('Name')).toBe('Legacy');
    const mime = readFileSync(join(dir, 'data', 'mime', 'packages', 'tandem-legacy-erp.xml'), 'utf8');
    expect(mime).toContain('<glob pattern="*.erp"/>');
    // The notes app has no file types: no %F on its Exec line, and no MimeType.
    const notes = parseDesktopFile(
      readFileSync(join(dir, 'data', 'applications', 'tandem-legacy-erp-notes.desktop'), 'utf8'),
    ).get('Desktop Entry')!;
    expect(parseExecLine(notes.get('Exec')!).at(-1)).toBe('notes');
    expect(notes.has('MimeType')).toBe(false);
    expect(report.written).toHaveLength(6);
    expect(
      l
        .installed('legacy-erp')
        ?.files.map((f) => f.path)
        .sort(),
    ).toEqual([...report.written].sort());
  });

  it('a new version removes exactly the files it no longer has; unpublishing removes the rest and nothing else', () => {
    const l = launchers();
    l.install(erp);
    // Files of the user and of other programs in the same directories.
    const foreign = [
      join(dir, 'data', 'applications', 'firefox.desktop'),
      join(dir, 'data', 'icons', 'hicolor', '48x48', 'apps', 'firefox.png'),
      join(dir, 'config', 'menus', 'applications-merged', 'user.menu'),
      join(dir, 'data', 'applications', 'tandem-other-erp.desktop'),
    ];
    for (const f of foreign) {
      mkdirSync(join(f, '..'), { recursive: true });
      writeFileSync(f, 'not Tandem');
    }
    const v2 = l.install({ workspace: 'legacy-erp', version: '3.3.0', apps: [{ id: 'erp', name: 'Legacy ERP 3.3' }] });
    expect([...v2.removed].sort()).toEqual(
      [
        join(dir, 'data', 'applications', 'tandem-legacy-erp-notes.desktop'),
        join(dir, 'data', 'icons', 'hicolor', '48x48', 'apps', 'tandem-legacy-erp-erp.png'),
        join(dir, 'data', 'desktop-directories', `tandem-legacy-erp-${safeSegment('Legacy')}.directory`),
        join(dir, 'config', 'menus', 'applications-merged', 'tandem-legacy-erp.menu'),
        join(dir, 'data', 'mime', 'packages', 'tandem-legacy-erp.xml'),
      ].sort(),
    );
    expect(l.installed('legacy-erp')?.version).toBe('3.3.0');
    const gone = l.remove('legacy-erp');
    expect(gone.removed).toEqual([join(dir, 'data', 'applications', 'tandem-legacy-erp-erp.desktop')]);
    expect(l.installed('legacy-erp')).toBeUndefined();
    for (const f of foreign) expect(readFileSync(f, 'utf8')).toBe('not Tandem');
    expect(walk(dir).sort()).toEqual([...foreign].sort());
  });

  it('a file someone changed after install is kept and reported, not deleted', () => {
    const l = launchers();
    l.install(erp);
    const f = join(dir, 'data', 'applications', 'tandem-legacy-erp-notes.desktop');
    writeFileSync(f, '[Desktop Entry]\nName=mine\n');
    const r = l.remove('legacy-erp');
    expect(r.kept).toEqual([f]);
    expect(readFileSync(f, 'utf8')).toContain('mine');
  });

  it('a manifest edited to point elsewhere cannot make removal delete outside the launcher directories', () => {
    const l = launchers();
    l.install(erp);
    const victim = join(dir, 'victim.txt');
    writeFileSync(victim, 'keep');
    const m = JSON.parse(readFileSync(l.manifestFile('legacy-erp'), 'utf8')) as {
      files: { path: string; sha256: string }[];
    };
    m.files.push({ path: victim, sha256: '0'.repeat(64) });
    m.files.push({ path: join(dir, 'data', 'applications', '..', '..', 'victim.txt'), sha256: '0'.repeat(64) });
    writeFileSync(l.manifestFile('legacy-erp'), JSON.stringify(m));
    l.remove('legacy-erp');
    expect(readFileSync(victim, 'utf8')).toBe('keep');
  });

  it('refuses an icon that is neither PNG nor SVG', () => {
    expect(() =>
      launchers().install({
        workspace: 'w',
        apps: [{ id: 'a', name: 'A', icon: { bytes: Buffer.from('#!/bin/sh\n') } }],
      }),
    ).toThrow(/neither a PNG nor an SVG/);
  });

  it('hostile names, ids, folders and file types write only inside the launcher directories and cannot inject into Exec', () => {
    fc.assert(
      fc.property(
        hostileString(),
        fc.array(
          fc.record({
            id: hostileString().filter((s) => !s.includes('\0')),
            name: hostileString(),
            folder: fc.option(hostileString(), { nil: undefined }),
            ext: fc.array(hostileString(), { maxLength: 2 }),
            wmClass: fc.option(hostileString(), { nil: undefined }),
          }),
          { minLength: 1, maxLength: 3 },
        ),
        (workspace, raw) => {
          fc.pre(!workspace.includes('\0'));
          const ids = new Set(raw.map((r) => r.id));
          fc.pre(ids.size === raw.length);
          const root = mkdtempSync(join(dir, 'p-'));
          const l = new FreedesktopLaunchers({ dataHome: join(root, 'data'), configHome: join(root, 'config') });
          const report = l.install({
            workspace,
            apps: raw.map((r) => ({
              id: r.id,
              name: r.name,
              ...(r.folder !== undefined ? { startMenuFolder: r.folder } : {}),
              fileTypes: [...r.ext, '.erp'],
              ...(r.wmClass !== undefined ? { wmClass: r.wmClass } : {}),
            })),
          });
          const files = walk(root);
          for (const f of files) {
            expect(l.roots.some((r) => isInside(r, f)) || f === l.manifestFile(workspace)).toBe(true);
          }
          const entries = report.written.filter((f) => f.endsWith('.desktop'));
          expect(entries).toHaveLength(raw.length);
          for (const [i, f] of entries.entries()) {
            const text = readFileSync(f, 'utf8');
            const groups = parseDesktopFile(text);
            expect([...groups.keys()]).toEqual(['Desktop Entry']);
            const e = groups.get('Desktop Entry')!;
            expect(e.get('Type')).toBe('Application');
            expect(parseExecLine(e.get('Exec')!)).toEqual([
              'tandem',
              'apps',
              'launch',
              '--workspace',
              workspace,
              raw[i]!.id,
              '%F',
            ]);
            expect(unescapeDesktopValue(e.get('Name')!)).not.toMatch(/[\n\r\0]/);
            // Every line is a key=value of ours or the group header: nothing smuggled in. (A value
            // may hold U+2028 or U+2029, which desktop files do not break lines at: `.` would not
            // match them, so the value is any run without CR or LF.)
            for (const line of text.split('\n').filter(Boolean)) {
              expect(line).toMatch(
                /^(\[Desktop Entry\]|(Type|Version|Name|Comment|Exec|Icon|Terminal|StartupWMClass|MimeType|Categories|X-Tandem-Workspace|X-Tandem-App)=[^\r\n]*)$/,
              );
            }
          }
          l.remove(workspace);
          expect(walk(root)).toEqual([]);
        },
      ),
      { numRuns: 150 },
    );
  });
});

describe('apps the guest discovered', () => {
  it('become launchers whose Exec names them by id, with the PNG the agent sent', async () => {
    const { discoveredApps } = await import('./discovered.js');
    const found = discoveredApps([
      {
        id: 'org.gnome.gedit.desktop',
        name: 'Text Editor',
        command: '/usr/bin/gedit',
        args: ['--new-window'],
        source: '/usr/share/applications/org.gnome.gedit.desktop',
        icon: { mediaType: 'image/png', data: solidPng(64).toString('base64') },
      },
    ]);
    const l = launchers();
    const r = l.install({ workspace: 'legacy-erp', apps: found.map((f) => f.launcher) });
    const entry = r.written.find((f) => f.endsWith('.desktop'))!;
    const e = parseDesktopFile(readFileSync(entry, 'utf8')).get('Desktop Entry')!;
    expect(parseExecLine(e.get('Exec')!).slice(-1)).toEqual(['org.gnome.gedit.desktop']);
    expect(r.written.some((f) => f.includes(join('hicolor', '64x64', 'apps')))).toBe(true);
    expect(found[0]!.app).toEqual({
      id: 'org.gnome.gedit.desktop',
      name: 'Text Editor',
      command: '/usr/bin/gedit',
      args: ['--new-window'],
      fileTypes: [],
    });
  });
});
