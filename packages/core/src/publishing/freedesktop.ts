import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { InvalidInputError } from '../errors.js';
import { execLine, escapeDesktopValue, formatDesktopFile, type DesktopGroup } from './desktop-entry.js';
import { placeIcon, type LauncherIcon } from './icons.js';
import {
  installFiles,
  readManifest,
  removeInstalled,
  type InstallReport,
  type LauncherManifest,
  type PlannedFile,
} from './installed-files.js';
import { GnomeAppFolders, type GSettingsRunner } from './gnome-app-folders.js';
import { displayText, safeSegment } from './names.js';

/** A published app as a launcher shows it. Every field may come from the guest: untrusted. */
export interface LauncherApp {
  /** The app's id in its workspace (passed to `tandem apps launch`). */
  readonly id: string;
  readonly name: string;
  readonly comment?: string;
  /** A menu folder to put the launcher in (one level). */
  readonly startMenuFolder?: string;
  /** Extensions such as `.erp` that the app opens from the host's file manager. */
  readonly fileTypes?: readonly string[];
  readonly icon?: LauncherIcon;
  /**
   * The class of the app's windows as the transport shows them (Xpra forwards the guest
   * window's own class). Default: the class Tandem gives RDP windows, {@link launcherWmClass}.
   */
  readonly wmClass?: string;
}

/** A workspace's launchers to install. */
export interface LauncherSet {
  readonly workspace: string;
  readonly version?: string;
  readonly apps: readonly LauncherApp[];
}

/** Where freedesktop launchers go. */
export interface FreedesktopOptions {
  /** `$XDG_DATA_HOME` (default `~/.local/share`). */
  readonly dataHome?: string;
  /** `$XDG_CONFIG_HOME` (default `~/.config`). */
  readonly configHome?: string;
  /** The program a launcher runs, before `apps launch` (default `['tandem']`). */
  readonly command?: readonly string[];
  /** How GNOME's settings are reached for app folders (default: the real `gsettings`). */
  readonly gsettings?: GSettingsRunner;
}

/** The window class Tandem sets on an app's RDP windows, and a launcher's default StartupWMClass.
 *
 * @example
 * ```ts
 * launcherWmClass('legacy-erp', 'erp'); // 'tandem-legacy-erp-erp'
 * ```
 */
export function launcherWmClass(workspace: string, appId: string): string {
  return `tandem-${safeSegment(workspace)}-${safeSegment(appId)}`;
}

/** The MIME type Tandem registers for an app's file extension. */
export function launcherMimeType(workspace: string, extension: string): string {
  return `application/x-tandem-${safeSegment(workspace)}-${safeSegment(extension.replace(/^\./, '').toLowerCase())}`;
}

const xml = (s: string): string =>
  s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);

/**
 * The host's launchers for published apps on a freedesktop desktop (GNOME, KDE, Xfce, ...): one
 * desktop entry per app in `$XDG_DATA_HOME/applications`, its icon in the hicolor theme, a MIME
 * type per file extension (shared-mime-info), and a submenu per `startMenuFolder` (menu spec
 * `applications-merged` plus a `.directory` entry). A manifest records what was installed, so
 * {@link FreedesktopLaunchers.remove} and a reinstall for a new version remove exactly that.
 *
 * @example
 * ```ts
 * const launchers = new FreedesktopLaunchers({ dataHome: '/tmp/xdg/data', configHome: '/tmp/xdg/config' });
 * launchers.install({ workspace: 'legacy-erp', version: '3.2.0', apps: [{ id: 'erp', name: 'Legacy ERP' }] });
 * launchers.remove('legacy-erp');
 * ```
 */
export class FreedesktopLaunchers {
  readonly dataHome: string;
  readonly configHome: string;
  readonly command: readonly string[];
  readonly #gsettings: GSettingsRunner | undefined;

  constructor(options: FreedesktopOptions = {}) {
    this.#gsettings = options.gsettings;
    this.dataHome = resolve(options.dataHome ?? process.env['XDG_DATA_HOME'] ?? join(homedir(), '.local', 'share'));
    this.configHome = resolve(options.configHome ?? process.env['XDG_CONFIG_HOME'] ?? join(homedir(), '.config'));
    this.command = options.command ?? ['tandem'];
  }

  /** The directories Tandem writes into; nothing is ever written elsewhere. */
  get roots(): string[] {
    return [
      join(this.dataHome, 'applications'),
      join(this.dataHome, 'icons', 'hicolor'),
      join(this.dataHome, 'desktop-directories'),
      join(this.dataHome, 'mime', 'packages'),
      join(this.configHome, 'menus', 'applications-merged'),
    ];
  }

  /** Where the manifest of a workspace's launchers is kept. */
  manifestFile(workspace: string): string {
    return join(this.dataHome, 'tandem', 'launchers', `${safeSegment(workspace)}.json`);
  }

  /** The files {@link install} would write, with their content. Pure: writes nothing. */
  plan(set: LauncherSet): PlannedFile[] {
    const ws = safeSegment(set.workspace);
    const files: PlannedFile[] = [];
    const folders = new Map<string, { name: string; entries: string[] }>();
    const mime: { type: string; ext: string }[] = [];
    const seen = new Set<string>();
    for (const app of set.apps) {
      const base = `tandem-${ws}-${safeSegment(app.id)}`;
      if (seen.has(base)) {
        throw new InvalidInputError(`Two published apps of "${set.workspace}" have the id "${app.id}".`, {
          details: { workspace: set.workspace, id: app.id },
        });
      }
      seen.add(base);
      const name = displayText(app.name, displayText(app.id, 'Application'));
      const entries: [string, string][] = [
        ['Type', 'Application'],
        ['Version', '1.4'],
        ['Name', escapeDesktopValue(name)],
      ];
      const comment = displayText(
        app.comment ??
          `${displayText(name, app.id, 100)} in the workspace ${displayText(set.workspace, ws, 60)} (Tandem)`,
        '',
      );
      // desktop-file-validate warns when Comment repeats Name.
      if (comment !== '' && comment !== name) entries.push(['Comment', escapeDesktopValue(comment)]);
      const exts = [...new Set((app.fileTypes ?? []).filter((e) => /^\.[A-Za-z0-9]{1,16}$/.test(e)))];
      entries.push([
        'Exec',
        execLine([...this.command, 'apps', 'launch', '--workspace', set.workspace, app.id], exts.length ? ['%F'] : []),
      ]);
      if (app.icon) {
        const place = placeIcon(app.icon, `app "${app.id}"`);
        files.push({
          path: join(this.dataHome, 'icons', 'hicolor', ...place.directory.split('/'), `${base}.${place.extension}`),
          content: app.icon.bytes,
        });
        entries.push(['Icon', base]);
      }
      entries.push(['Terminal', 'false']);
      const wmClass = displayText(app.wmClass ?? launcherWmClass(set.workspace, app.id), base, 100);
      entries.push(['StartupWMClass', escapeDesktopValue(wmClass)]);
      if (exts.length > 0) {
        const types = exts.map((e) => launcherMimeType(set.workspace, e));
        exts.forEach((e, i) => mime.push({ type: types[i]!, ext: e.toLowerCase() }));
        entries.push(['MimeType', `${types.join(';')};`]);
      }
      entries.push(['Categories', 'X-Tandem;']);
      entries.push(['X-Tandem-Workspace', escapeDesktopValue(displayText(set.workspace, ws))]);
      entries.push(['X-Tandem-App', escapeDesktopValue(displayText(app.id, base))]);
      const groups: DesktopGroup[] = [{ name: 'Desktop Entry', entries }];
      files.push({ path: join(this.dataHome, 'applications', `${base}.desktop`), content: formatDesktopFile(groups) });
      if (app.startMenuFolder !== undefined && app.startMenuFolder.trim() !== '') {
        const folderName = displayText(app.startMenuFolder, 'Tandem', 100);
        const key = `tandem-${ws}-${safeSegment(folderName)}`;
        const f = folders.get(key) ?? { name: folderName, entries: [] };
        f.entries.push(`${base}.desktop`);
        folders.set(key, f);
      }
    }
    if (folders.size > 0) {
      const menus: string[] = [];
      for (const [key, f] of folders) {
        files.push({
          path: join(this.dataHome, 'desktop-directories', `${key}.directory`),
          content: formatDesktopFile([
            {
              name: 'Desktop Entry',
              entries: [
                ['Type', 'Directory'],
                ['Version', '1.4'],
                ['Name', escapeDesktopValue(f.name)],
                ['Icon', 'folder'],
              ],
            },
          ]),
        });
        menus.push(
          [
            '  <Menu>',
            `    <Name>${xml(key)}</Name>`,
            `    <Directory>${xml(key)}.directory</Directory>`,
            '    <Include>',
            ...f.entries.map((e) => `      <Filename>${xml(e)}</Filename>`),
            '    </Include>',
            '  </Menu>',
          ].join('\n'),
        );
      }
      files.push({
        path: join(this.configHome, 'menus', 'applications-merged', `tandem-${ws}.menu`),
        content: [
          '<!DOCTYPE Menu PUBLIC "-//freedesktop//DTD Menu 1.0//EN"',
          ' "http://www.freedesktop.org/standards/menu-spec/1.0/menu.dtd">',
          `<!-- Tandem: published apps of ${xml(displayText(set.workspace, ws).replace(/--/g, '- -'))} -->`,
          '<Menu>',
          '  <Name>Applications</Name>',
          ...menus,
          '</Menu>',
          '',
        ].join('\n'),
      });
    }
    if (mime.length > 0) {
      files.push({
        path: join(this.dataHome, 'mime', 'packages', `tandem-${ws}.xml`),
        content: [
          '<?xml version="1.0" encoding="UTF-8"?>',
          '<mime-info xmlns="http://www.freedesktop.org/standards/shared-mime-info">',
          ...mime.map(
            (m) =>
              `  <mime-type type="${xml(m.type)}">\n    <comment>${xml(m.ext)} file (${xml(displayText(set.workspace, ws))})</comment>\n    <glob pattern="*${xml(m.ext)}"/>\n  </mime-type>`,
          ),
          '</mime-info>',
          '',
        ].join('\n'),
      });
    }
    return files;
  }

  /**
   * Installs the launchers of a workspace (replacing those of its earlier version): writes each
   * file atomically and removes the files of the earlier install that are no longer wanted.
   * Run `update-desktop-database` and `update-mime-database` on the data directory afterwards
   * where the desktop does not watch it.
   */
  install(set: LauncherSet): InstallReport {
    return installFiles(
      this.manifestFile(set.workspace),
      this.roots,
      set.workspace,
      set.version ?? null,
      this.plan(set),
    );
  }

  /**
   * Removes every file installed for the workspace, and nothing else; also the GNOME Shell app
   * folders {@link GnomeAppFolders} recorded for it beside the manifest (deprovisioning takes
   * them away with the launchers).
   */
  remove(workspace: string): InstallReport {
    const report = removeInstalled(this.manifestFile(workspace), this.roots);
    const folders = new GnomeAppFolders({
      recordDir: dirname(this.manifestFile(workspace)),
      ...(this.#gsettings ? { gsettings: this.#gsettings } : {}),
    });
    if (existsSync(folders.recordFile(workspace))) folders.remove(workspace);
    return report;
  }

  /** GNOME Shell app folders recorded beside this host's launcher manifests. */
  gnomeAppFolders(): GnomeAppFolders {
    return new GnomeAppFolders({
      recordDir: dirname(this.manifestFile('x')),
      ...(this.#gsettings ? { gsettings: this.#gsettings } : {}),
    });
  }

  /** What is installed for the workspace, or undefined. */
  installed(workspace: string): LauncherManifest | undefined {
    return readManifest(this.manifestFile(workspace));
  }

  /**
   * A desktop entry that makes `tandem open` the handler of http and https URLs
   * (x-scheme-handler); make it the default with
   * `xdg-mime default tandem-open.desktop x-scheme-handler/http x-scheme-handler/https`.
   */
  urlHandler(): PlannedFile {
    return {
      path: join(this.dataHome, 'applications', 'tandem-open.desktop'),
      content: formatDesktopFile([
        {
          name: 'Desktop Entry',
          entries: [
            ['Type', 'Application'],
            ['Version', '1.4'],
            ['Name', 'Tandem web redirection'],
            ['Comment', 'Opens each link on the side of the workspace boundary its policy says'],
            ['Exec', execLine([...this.command, 'open'], ['%u'])],
            ['Terminal', 'false'],
            ['NoDisplay', 'true'],
            ['MimeType', 'x-scheme-handler/http;x-scheme-handler/https;'],
            ['Categories', 'Network;WebBrowser;'],
          ],
        },
      ]),
    };
  }

  /** Installs {@link urlHandler}, with a manifest of its own. */
  installUrlHandler(): InstallReport {
    return installFiles(this.#urlHandlerManifest, this.roots, '(url handler)', null, [this.urlHandler()]);
  }

  /** Removes what {@link installUrlHandler} installed. */
  removeUrlHandler(): InstallReport {
    return removeInstalled(this.#urlHandlerManifest, this.roots);
  }

  get #urlHandlerManifest(): string {
    return join(this.dataHome, 'tandem', 'url-handler.json');
  }
}
