import { readdir, readFile, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { MAX_ICON_BYTES, type GuestApp } from '@tandem/core/guest';
import { parseDesktopEntry, splitExec } from './desktop-entry.js';

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const SIZES = ['48x48', '64x64', '32x32', '128x128', '96x96', '256x256', '24x24', '22x22', '16x16', '512x512'];

/** The XDG data directories: $XDG_DATA_HOME (default ~/.local/share) and $XDG_DATA_DIRS (default /usr/local/share:/usr/share). */
export function xdgDataDirs(env: NodeJS.ProcessEnv = process.env): string[] {
  const home = env['XDG_DATA_HOME'] || join(env['HOME'] || homedir(), '.local', 'share');
  const dirs = (env['XDG_DATA_DIRS'] || '/usr/local/share:/usr/share').split(':').filter((d) => d !== '');
  return [home, ...dirs];
}

/** True when `bytes` start with the PNG signature. */
export function isPng(bytes: Uint8Array): boolean {
  return bytes.length > PNG_SIGNATURE.length && Buffer.from(bytes.subarray(0, 8)).equals(PNG_SIGNATURE);
}

/**
 * The applications in .desktop files: every `applications/` directory of the XDG data dirs, plus
 * each `--apps-dir` (a directory of .desktop files, icons beside them or under icons/). Entries
 * hidden from menus or not of Type=Application are left out; the first file of an id wins, as
 * the spec says. Icons are PNG only (a named icon looked up in the hicolor theme and pixmaps).
 */
export async function discoverLinuxApps(options: {
  dataDirs: readonly string[];
  appsDirs: readonly string[];
}): Promise<GuestApp[]> {
  const roots: Array<{ dir: string; iconRoots: string[] }> = [
    ...options.appsDirs.map((d) => ({
      dir: d,
      iconRoots: [d, join(d, 'icons'), ...options.dataDirs.map((x) => join(x, 'icons'))],
    })),
    ...options.dataDirs.map((d) => ({
      dir: join(d, 'applications'),
      iconRoots: [...options.dataDirs.map((x) => join(x, 'icons')), ...options.dataDirs.map((x) => join(x, 'pixmaps'))],
    })),
  ];
  const seen = new Set<string>();
  const apps: GuestApp[] = [];
  for (const root of roots) {
    for (const file of await desktopFiles(root.dir)) {
      const id = relative(root.dir, file).split(sep).join('-');
      if (seen.has(id)) continue;
      seen.add(id);
      const text = await readFile(file, 'utf8').catch(() => undefined);
      const entry = text === undefined ? undefined : parseDesktopEntry(text);
      if (!entry || entry.type !== 'Application' || entry.hidden || entry.exec === '') continue;
      const argv = splitExec(entry.exec);
      const [command, ...args] = argv;
      if (!command) continue;
      const icon = entry.icon ? await findPngIcon(entry.icon, root.iconRoots) : undefined;
      apps.push({
        id: id.slice(0, 512),
        name: entry.name.slice(0, 256),
        command: command.slice(0, 4096),
        args: args.slice(0, 64).map((a) => a.slice(0, 4096)),
        source: file.slice(0, 1024),
        ...(entry.categories.length > 0
          ? { categories: entry.categories.slice(0, 32).map((c) => c.slice(0, 64)) }
          : {}),
        ...(icon ? { icon: { mediaType: 'image/png' as const, data: icon.toString('base64') } } : {}),
      });
      if (apps.length >= 2000) return apps;
    }
  }
  return apps;
}

async function desktopFiles(dir: string, depth = 0): Promise<string[]> {
  if (depth > 4) return [];
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  const out: string[] = [];
  for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    const path = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await desktopFiles(path, depth + 1)));
    else if (e.name.endsWith('.desktop')) out.push(path);
  }
  return out;
}

async function findPngIcon(icon: string, iconRoots: readonly string[]): Promise<Buffer | undefined> {
  const candidates: string[] = [];
  if (icon.startsWith('/')) candidates.push(icon);
  else {
    const base = icon.endsWith('.png') ? icon.slice(0, -4) : icon;
    for (const r of iconRoots) {
      candidates.push(join(r, `${base}.png`));
      for (const size of SIZES) candidates.push(join(r, 'hicolor', size, 'apps', `${base}.png`));
    }
  }
  for (const c of candidates) {
    const s = await stat(c).catch(() => undefined);
    if (!s?.isFile() || s.size > MAX_ICON_BYTES) continue;
    const bytes = await readFile(c).catch(() => undefined);
    if (bytes && isPng(bytes)) return bytes;
  }
  return undefined;
}
