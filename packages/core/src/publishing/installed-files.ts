import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { IntegrityError } from '../errors.js';

/** One file a set of launchers installed. */
export interface InstalledFile {
  /** Absolute path. */
  readonly path: string;
  /** SHA-256 of the content written, hex. */
  readonly sha256: string;
}

/** What is installed for one workspace, kept beside the launchers. */
export interface LauncherManifest {
  readonly workspace: string;
  readonly version: string | null;
  readonly files: readonly InstalledFile[];
}

/** A file to install. */
export interface PlannedFile {
  readonly path: string;
  readonly content: string | Uint8Array;
}

/** What an install or removal did. */
export interface InstallReport {
  readonly written: readonly string[];
  readonly removed: readonly string[];
  /** Files Tandem had installed that someone changed since: left in place. */
  readonly kept: readonly string[];
}

const sha256 = (data: string | Uint8Array): string => createHash('sha256').update(data).digest('hex');

/** True when `path` is `root` or inside it (both absolute). */
export function isInside(root: string, path: string): boolean {
  const rel = relative(resolve(root), resolve(path));
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

/** Writes `content` to `path` atomically: a crash leaves the old file or the new one. */
export function writeFileAtomic(path: string, content: string | Uint8Array, mode = 0o644): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  try {
    writeFileSync(tmp, content, { mode });
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

/**
 * Installs exactly `files` for a workspace and removes what an earlier install of it left that
 * is no longer wanted, recording everything in `manifestFile`. Every path must lie inside one of
 * `roots`, or nothing is written. The manifest lists a file before it is written, so a crash
 * never leaves a file that a later removal would not know about.
 *
 * @example
 * ```ts
 * installFiles('/x/manifest.json', ['/x/applications'], 'erp', '1.0', [{ path: '/x/applications/a.desktop', content: text }]);
 * ```
 */
export function installFiles(
  manifestFile: string,
  roots: readonly string[],
  workspace: string,
  version: string | null,
  files: readonly PlannedFile[],
): InstallReport {
  for (const f of files) {
    if (!roots.some((r) => isInside(r, f.path)) || !isAbsolute(f.path)) {
      throw new IntegrityError(
        `Refusing to write ${f.path}: it is outside the launcher directories (${roots.join(', ')}). This is a bug in the launcher writer; report it.`,
        { details: { path: f.path, roots } },
      );
    }
  }
  const before = readManifest(manifestFile);
  const planned = files.map((f) => ({ path: resolve(f.path), sha256: sha256(f.content), content: f.content }));
  const wanted = new Set(planned.map((f) => f.path));
  const union = [...(before?.files ?? []).filter((f) => !wanted.has(f.path)), ...planned.map(strip)];
  writeManifest(manifestFile, { workspace, version, files: union });
  for (const f of planned) writeFileAtomic(f.path, f.content);
  const stale = (before?.files ?? []).filter((f) => !wanted.has(f.path));
  const { removed, kept } = removeListed(stale, roots);
  writeManifest(manifestFile, { workspace, version, files: [...planned.map(strip), ...keptEntries(stale, kept)] });
  return { written: planned.map((f) => f.path), removed, kept };
}

/** Removes every file the manifest lists (and the manifest), nothing else.
 *
 * @example
 * ```ts
 * removeInstalled('/x/manifest.json', ['/x/applications']).removed; // exactly what installFiles wrote
 * ```
 */
export function removeInstalled(manifestFile: string, roots: readonly string[]): InstallReport {
  const before = readManifest(manifestFile);
  if (!before) return { written: [], removed: [], kept: [] };
  const { removed, kept } = removeListed(before.files, roots);
  rmSync(manifestFile, { force: true });
  return { written: [], removed, kept };
}

/** The manifest at `file`, or undefined when there is none. */
export function readManifest(file: string): LauncherManifest | undefined {
  if (!existsSync(file)) return undefined;
  return JSON.parse(readFileSync(file, 'utf8')) as LauncherManifest;
}

function strip(f: InstalledFile): InstalledFile {
  return { path: f.path, sha256: f.sha256 };
}

function keptEntries(stale: readonly InstalledFile[], kept: readonly string[]): InstalledFile[] {
  return stale.filter((f) => kept.includes(f.path)).map(strip);
}

function writeManifest(file: string, manifest: LauncherManifest): void {
  writeFileAtomic(file, JSON.stringify(manifest, null, 2) + '\n', 0o600);
}

function removeListed(
  files: readonly InstalledFile[],
  roots: readonly string[],
): { removed: string[]; kept: string[] } {
  const removed: string[] = [];
  const kept: string[] = [];
  for (const f of files) {
    // A manifest edited by someone else cannot make Tandem delete outside its directories.
    if (!roots.some((r) => isInside(r, f.path))) continue;
    if (!existsSync(f.path)) continue;
    if (sha256(readFileSync(f.path)) !== f.sha256) {
      kept.push(f.path);
      continue;
    }
    rmSync(f.path, { force: true });
    removed.push(f.path);
  }
  return { removed, kept };
}
