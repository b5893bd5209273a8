import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { HostError } from '../errors.js';
import { displayText, safeSegment } from './names.js';

const SCHEMA = 'org.gnome.desktop.app-folders';
const FOLDER_SCHEMA = 'org.gnome.desktop.app-folders.folder';
const folderPath = (id: string): string => `${FOLDER_SCHEMA}:/org/gnome/desktop/app-folders/folders/${id}/`;

/** Runs `gsettings` with these arguments and returns its stdout (throws when it fails). */
export type GSettingsRunner = (args: readonly string[]) => string;

/**
 * The real `gsettings` (GLib's, which writes through dconf in a GNOME session, or the keyfile
 * backend with `GSETTINGS_BACKEND=keyfile`), with `env` added to the process's environment.
 */
export function gsettingsRunner(env: Record<string, string> = {}): GSettingsRunner {
  return (args) => {
    try {
      return execFileSync('gsettings', [...args], { encoding: 'utf8', env: { ...process.env, ...env } });
    } catch (err) {
      throw new HostError(`gsettings ${args.slice(0, 2).join(' ')} failed: is GNOME's gsettings installed?`, {
        cause: err,
        details: { args: [...args] },
      });
    }
  };
}

/** GVariant text of a string: single-quoted, `\` and `'` escaped. */
export function gvariantString(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** GVariant text of a string array (`['a', 'b']`, or `@as []` when empty). */
export function gvariantStrings(list: readonly string[]): string {
  return list.length === 0 ? '@as []' : `[${list.map(gvariantString).join(', ')}]`;
}

/** Parses the strings of a GVariant `as` as gsettings prints it (`['a', "b's"]`, `@as []`). */
export function parseGvariantStrings(text: string): string[] {
  const out: string[] = [];
  const re = /'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)"/g;
  for (const m of text.matchAll(re)) {
    const raw = m[1] ?? m[2] ?? '';
    out.push(raw.replace(/\\(.)/g, '$1'));
  }
  return out;
}

/** One GNOME Shell app folder Tandem added. */
export interface GnomeAppFolder {
  /** The folder id in `folder-children` (`tandem-<ws>-<folder>`). */
  readonly id: string;
  readonly name: string;
  /** Desktop file ids (`tandem-<ws>-<app>.desktop`). */
  readonly apps: readonly string[];
}

/** What {@link GnomeAppFolders.apply} and {@link GnomeAppFolders.remove} did. */
export interface GnomeAppFoldersReport {
  readonly added: readonly string[];
  readonly removed: readonly string[];
}

/**
 * GNOME Shell app folders for `startMenuFolder` (the `org.gnome.desktop.app-folders` GSettings
 * schema): a folder per menu folder, named as the workspace says, holding the workspace's
 * launchers, and its id appended to `folder-children`. What was added is recorded beside the
 * launchers' manifest, so that a new version, unpublishing and deprovisioning take away exactly
 * those folders and ids, and leave the user's own folders and their order alone.
 *
 * @example
 * ```ts
 * const folders = new GnomeAppFolders({ recordDir: '/home/ada/.local/share/tandem/launchers' });
 * folders.apply('legacy-erp', [{ id: 'tandem-legacy-erp-legacy', name: 'Legacy', apps: ['tandem-legacy-erp-erp.desktop'] }]);
 * folders.remove('legacy-erp'); // the folder and its id in folder-children are gone again
 * ```
 */
export class GnomeAppFolders {
  readonly #run: GSettingsRunner;
  readonly #recordDir: string;

  constructor(options: { recordDir: string; gsettings?: GSettingsRunner }) {
    this.#recordDir = options.recordDir;
    this.#run = options.gsettings ?? gsettingsRunner();
  }

  /** Where the folders added for a workspace are recorded. */
  recordFile(workspace: string): string {
    return join(this.#recordDir, `${safeSegment(workspace)}.gnome-app-folders.json`);
  }

  /** The folders recorded for a workspace. */
  recorded(workspace: string): GnomeAppFolder[] {
    const file = this.recordFile(workspace);
    if (!existsSync(file)) return [];
    const data = JSON.parse(readFileSync(file, 'utf8')) as { folders?: unknown };
    if (!Array.isArray(data.folders)) return [];
    // Only ids Tandem makes are ever touched, whatever the file says.
    return (data.folders as GnomeAppFolder[]).filter(
      (f) => typeof f.id === 'string' && /^tandem-[A-Za-z0-9._-]+$/.test(f.id),
    );
  }

  /** Makes the workspace's folders exactly `folders`: adds the new, removes those no longer wanted. */
  apply(workspace: string, folders: readonly GnomeAppFolder[]): GnomeAppFoldersReport {
    const before = this.recorded(workspace);
    const wanted = new Set(folders.map((f) => f.id));
    const gone = before.filter((f) => !wanted.has(f.id)).map((f) => f.id);
    // Recorded first: an interrupted apply still knows what it may have added.
    this.#record(workspace, [...before.filter((f) => !wanted.has(f.id)), ...folders]);
    for (const f of folders) {
      this.#run(['set', folderPath(f.id), 'name', gvariantString(displayText(f.name, f.id, 100))]);
      this.#run(['set', folderPath(f.id), 'apps', gvariantStrings(f.apps)]);
    }
    const children = this.#children();
    const added = folders.map((f) => f.id).filter((id) => !children.includes(id));
    const next = [...children.filter((id) => !gone.includes(id)), ...added];
    if (added.length > 0 || gone.length > 0) this.#setChildren(next);
    for (const id of gone) this.#reset(id);
    this.#record(workspace, folders);
    return { added, removed: gone };
  }

  /** Removes every folder recorded for the workspace, and nothing else. */
  remove(workspace: string): GnomeAppFoldersReport {
    const ids = this.recorded(workspace).map((f) => f.id);
    if (ids.length > 0) {
      const children = this.#children();
      if (children.some((id) => ids.includes(id))) this.#setChildren(children.filter((id) => !ids.includes(id)));
      for (const id of ids) this.#reset(id);
    }
    rmSync(this.recordFile(workspace), { force: true });
    return { added: [], removed: ids };
  }

  #children(): string[] {
    return parseGvariantStrings(this.#run(['get', SCHEMA, 'folder-children']));
  }

  #setChildren(ids: readonly string[]): void {
    this.#run(['set', SCHEMA, 'folder-children', gvariantStrings(ids)]);
  }

  #reset(id: string): void {
    for (const key of ['name', 'apps']) this.#run(['reset', folderPath(id), key]);
  }

  #record(workspace: string, folders: readonly GnomeAppFolder[]): void {
    const file = this.recordFile(workspace);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(`${file}.tmp`, JSON.stringify({ workspace, folders }, null, 2) + '\n');
    renameSync(`${file}.tmp`, file);
  }
}

/** The GNOME app folders a set of launchers asks for (one per `startMenuFolder`). */
export function gnomeFoldersFor(
  workspace: string,
  apps: readonly { id: string; startMenuFolder?: string }[],
): GnomeAppFolder[] {
  const ws = safeSegment(workspace);
  const folders = new Map<string, { name: string; apps: string[] }>();
  for (const app of apps) {
    if (app.startMenuFolder === undefined || app.startMenuFolder.trim() === '') continue;
    const name = displayText(app.startMenuFolder, 'Tandem', 100);
    const id = `tandem-${ws}-${safeSegment(name)}`;
    const f = folders.get(id) ?? { name, apps: [] };
    f.apps.push(`tandem-${ws}-${safeSegment(app.id)}.desktop`);
    folders.set(id, f);
  }
  return [...folders].map(([id, f]) => ({ id, name: f.name, apps: f.apps }));
}
