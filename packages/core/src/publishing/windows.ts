import { join, resolve } from 'node:path';
import { quoteWindowsArg } from '../host/remote-command.js';
import { pngToIco, placeIcon } from './icons.js';
import {
  installFiles,
  readManifest,
  removeInstalled,
  type InstallReport,
  type LauncherManifest,
  type PlannedFile,
} from './installed-files.js';
import { displayText, safeSegment } from './names.js';
import type { LauncherSet } from './freedesktop.js';
import { writeShellLink } from './lnk.js';

/** Where Windows shortcuts go and what they run. */
export interface WindowsLauncherOptions {
  /**
   * The Start Menu's Programs folder as this process sees it (on Windows
   * `%APPDATA%\Microsoft\Windows\Start Menu\Programs`; any directory in tests).
   */
  readonly programsDir: string;
  /** Where icons (.ico) and the manifest are kept (a directory of Tandem's own, outside the Start Menu). */
  readonly stateDir: string;
  /** The Windows path of tandem.exe (or node.exe) as the shortcut's target. */
  readonly target: string;
  /** Arguments before `apps launch` (for example the script when the target is node.exe). */
  readonly targetArgs?: readonly string[];
  /** The Windows path of `stateDir`, for the shortcut's icon location. */
  readonly stateDirWindowsPath: string;
  /** Recorded in each shortcut as its times (default none). */
  readonly time?: Date;
}

const RESERVED = /^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?$/i;

/**
 * A Windows file name for untrusted text: no `<>:"/\|?*` or control characters, no trailing dot
 * or space, no device name (CON, NUL, COM1, ...), at most 100 characters.
 *
 * @example
 * ```ts
 * windowsFileName('NUL', 'app'); // '_NUL'
 * ```
 */
export function windowsFileName(value: string, fallback: string): string {
  let name = displayText(value, fallback, 100)
    .replace(/[<>:"/\\|?*]/g, '_')
    .replace(/[. ]+$/, '')
    .replace(/^[. ]+/, '');
  if (name === '') name = fallback;
  if (RESERVED.test(name)) name = `_${name}`;
  return name;
}

/**
 * Start Menu shortcuts for published apps on a Windows host: one .lnk per app (in a subfolder
 * for `startMenuFolder`) that runs `tandem apps launch`, its icon as an .ico beside the
 * manifest. Removal and reinstall take away exactly what was installed.
 *
 * @example
 * ```ts
 * const start = new WindowsLaunchers({
 *   programsDir: 'C:\\Users\\ada\\AppData\\Roaming\\Microsoft\\Windows\\Start Menu\\Programs',
 *   stateDir: 'C:\\Users\\ada\\AppData\\Local\\Tandem\\launchers',
 *   stateDirWindowsPath: 'C:\\Users\\ada\\AppData\\Local\\Tandem\\launchers',
 *   target: 'C:\\Program Files\\Tandem\\tandem.exe',
 * });
 * start.install({ workspace: 'legacy-erp', apps: [{ id: 'erp', name: 'Legacy ERP', startMenuFolder: 'Legacy' }] });
 * ```
 */
export class WindowsLaunchers {
  constructor(readonly options: WindowsLauncherOptions) {}

  get roots(): string[] {
    return [resolve(this.options.programsDir), resolve(this.options.stateDir)];
  }

  manifestFile(workspace: string): string {
    return join(this.options.stateDir, `${safeSegment(workspace)}.json`);
  }

  /** The files {@link install} would write. Pure. */
  plan(set: LauncherSet): PlannedFile[] {
    const ws = safeSegment(set.workspace);
    const files: PlannedFile[] = [];
    const names = new Set<string>();
    for (const app of set.apps) {
      const base = `tandem-${ws}-${safeSegment(app.id)}`;
      const folder =
        app.startMenuFolder !== undefined && app.startMenuFolder.trim() !== ''
          ? windowsFileName(app.startMenuFolder, 'Tandem')
          : undefined;
      let file = windowsFileName(app.name, app.id.length > 0 ? safeSegment(app.id) : base);
      const key = `${folder ?? ''}\\${file}`.toLowerCase();
      // Two apps with one display name: the second gets its id, so neither overwrites the other.
      if (names.has(key)) file = `${file} (${safeSegment(app.id)})`;
      names.add(`${folder ?? ''}\\${file}`.toLowerCase());
      let iconLocation: string | undefined;
      if (app.icon && placeIcon(app.icon, `app "${app.id}"`).extension === 'png') {
        files.push({ path: join(this.options.stateDir, `${base}.ico`), content: pngToIco(app.icon.bytes) });
        iconLocation = `${this.options.stateDirWindowsPath.replace(/\\+$/, '')}\\${base}.ico`;
      }
      const args = [...(this.options.targetArgs ?? []), 'apps', 'launch', '--workspace', set.workspace, app.id];
      const lnk = writeShellLink({
        target: this.options.target,
        arguments: args.map(quoteWindowsArg).join(' '),
        description: displayText(app.comment ?? app.name, app.id),
        ...(iconLocation !== undefined ? { iconLocation, iconIndex: 0 } : {}),
        ...(this.options.time ? { time: this.options.time } : {}),
      });
      const dir = folder ? join(this.options.programsDir, folder) : this.options.programsDir;
      files.push({ path: join(dir, `${file}.lnk`), content: lnk });
    }
    return files;
  }

  install(set: LauncherSet): InstallReport {
    return installFiles(
      this.manifestFile(set.workspace),
      this.roots,
      set.workspace,
      set.version ?? null,
      this.plan(set),
    );
  }

  remove(workspace: string): InstallReport {
    return removeInstalled(this.manifestFile(workspace), this.roots);
  }

  installed(workspace: string): LauncherManifest | undefined {
    return readManifest(this.manifestFile(workspace));
  }
}
