/**
 * Parsers for what VBoxManage prints (6.1, 7.0 and 7.1). Pure functions; each tolerates the
 * quirks of the real tool: lines that are not key=value, values with raw newlines, names that are
 * printed unescaped, and `<inaccessible>` machines.
 */
import type { VmState } from '@tandem/core';

/** A VirtualBox version as `--version` prints it (`7.0.14r161095`). */
export interface VBoxVersion {
  readonly major: number;
  readonly minor: number;
  readonly patch: number;
  /** The full string, revision included. */
  readonly raw: string;
}

/**
 * Parses `VBoxManage --version`. The tool may print warnings first (a missing kernel module on
 * Linux); they are returned so the probe can report them.
 */
export function parseVersion(stdout: string): { version: VBoxVersion | null; warnings: string[] } {
  const lines = stdout.split(/\r?\n/);
  let version: VBoxVersion | null = null;
  const rest: string[] = [];
  for (const line of lines) {
    const m = /^(\d+)\.(\d+)\.(\d+)(?:_\w+)?(?:r\d+)?\s*$/.exec(line.trim());
    if (m && !version) version = { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]), raw: line.trim() };
    else if (line.trim()) rest.push(line);
  }
  const warnings = rest.length ? [rest.join('\n').replace(/\s+/g, ' ').trim()] : [];
  return { version, warnings };
}

/** A machine as `list vms` prints it. */
export interface ListedVm {
  readonly name: string;
  readonly uuid: string;
  /** `<inaccessible>` machines (settings file missing or unreadable). */
  readonly inaccessible: boolean;
}

const UUID = '[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}';

/**
 * Parses `list vms`: `"name" {uuid}` per machine. Names are printed raw, so one can hold quotes
 * or newlines; a record ends only at `" {uuid}` at the end of a line.
 */
export function parseListVms(stdout: string): ListedVm[] {
  const out: ListedVm[] = [];
  const text = normalizeNewlines(stdout);
  const re = new RegExp(`^"([\\s\\S]*?)" \\{(${UUID})\\}$`, 'gm');
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const name = m[1]!;
    out.push({ name, uuid: m[2]!.toLowerCase(), inaccessible: name === '<inaccessible>' });
  }
  return out;
}

/** `showvminfo --machinereadable` as a map, plus the lines that were not key=value. */
export interface MachineReadable {
  /** First occurrence of each key wins, so later text can never override earlier values. */
  readonly values: ReadonlyMap<string, string>;
  /** Lines that are not key=value (7.0 prints `Encryption:     disabled`), and trailing text. */
  readonly extra: readonly string[];
}

/**
 * VBoxManage on Windows writes text-mode output: every `\n` becomes `\r\n`. Undo that only when
 * every line ends that way, so a raw name holding `\r\n` in Linux output stays intact.
 */
export function normalizeNewlines(s: string): string {
  return s.includes('\n') && !/(^|[^\r])\n/.test(s) ? s.replace(/\r\n/g, '\n') : s;
}

function unescape(s: string): string {
  return s.replace(/\\(["\\])/g, '$1');
}

/**
 * Parses `showvminfo --machinereadable`. Keys are bare (`memory`) or quoted (`"SATA-0-0"`); values
 * are numbers, bare words or double-quoted strings in which `"` and `\` are escaped with `\`
 * (newlines are not, so a description spans lines). Anything else is kept in `extra`.
 */
export function parseMachineReadable(stdout: string): MachineReadable {
  const values = new Map<string, string>();
  const extra: string[] = [];
  const text = normalizeNewlines(stdout);
  let i = 0;
  const set = (k: string, v: string): void => {
    if (!values.has(k)) values.set(k, v);
  };
  while (i < text.length) {
    const eol = text.indexOf('\n', i);
    const lineEnd = eol === -1 ? text.length : eol;
    let key: string | undefined;
    let j = i;
    if (text[j] === '"') {
      // quoted key, escaped like values
      let k = j + 1;
      let raw = '';
      while (k < lineEnd && text[k] !== '"') {
        if (text[k] === '\\' && k + 1 < lineEnd) {
          raw += text.slice(k, k + 2);
          k += 2;
        } else raw += text[k++];
      }
      if (text[k] === '"' && text[k + 1] === '=') {
        key = unescape(raw);
        j = k + 2;
      }
    } else {
      const m = /^([A-Za-z0-9_][^=\n"]*)=/.exec(text.slice(j, lineEnd));
      if (m) {
        key = m[1]!;
        j += m[0].length;
      }
    }
    if (key === undefined) {
      const line = text.slice(i, lineEnd);
      if (line.trim()) extra.push(line);
      i = lineEnd + 1;
      continue;
    }
    if (text[j] === '"') {
      // quoted value: up to the first unescaped quote, across newlines
      let k = j + 1;
      let raw = '';
      while (k < text.length && text[k] !== '"') {
        if (text[k] === '\\' && k + 1 < text.length) {
          raw += text.slice(k, k + 2);
          k += 2;
        } else raw += text[k++];
      }
      set(key, unescape(raw));
      const end = text.indexOf('\n', k);
      const trailing = text.slice(k + 1, end === -1 ? text.length : end);
      if (trailing.trim()) extra.push(`${key}: ${trailing}`);
      i = end === -1 ? text.length : end + 1;
    } else {
      set(key, text.slice(j, lineEnd));
      i = lineEnd + 1;
    }
  }
  return { values, extra };
}

/** The normalized state for a VirtualBox machine state (`VMState=` in showvminfo). */
export function mapVmState(vboxState: string | undefined): VmState {
  switch (vboxState) {
    case 'poweroff':
    case 'teleported':
    case 'snapshotting':
    case 'restoringsnapshot':
    case 'deletingsnapshot':
      return 'stopped';
    case 'saved':
      return 'saved';
    case 'aborted':
    case 'aborted-saved':
    case 'gurumeditation':
      return 'crashed';
    case 'running':
    case 'livesnapshotting':
    case 'onlinesnapshotting':
    case 'deletingsnapshotlive':
    case 'teleporting':
      return 'running';
    case 'paused':
    case 'deletingsnapshotlivepaused':
    case 'teleportingpausedvm':
      return 'paused';
    case 'starting':
    case 'restoring':
    case 'teleportingin':
    case 'settingup':
      return 'starting';
    case 'stopping':
    case 'saving':
      return 'stopping';
    default:
      return 'unknown';
  }
}

/** One snapshot from `snapshot list --machinereadable`, before metadata is added. */
export interface ListedSnapshot {
  readonly uuid: string;
  readonly name: string;
  readonly description?: string;
  readonly parentUuid: string | null;
  readonly current: boolean;
  /** The hierarchical key suffix (`-1-2`), which also gives the creation order among siblings. */
  readonly path: string;
}

function successors(path: string): string[] {
  // The next record is this one's first child, or the next sibling of it or of an ancestor.
  const parts = path.split('-').slice(1).map(Number);
  const out = [`${path}-1`];
  for (let n = parts.length; n >= 1; n--) {
    const prefix = parts.slice(0, n - 1);
    out.push(['', ...prefix, parts[n - 1]! + 1].join('-'));
  }
  return out;
}

/**
 * Parses `snapshot <vm> list --machinereadable`. VBoxManage prints snapshot names and
 * descriptions raw (no escaping), so values are cut at the structure that must follow them: a
 * name ends at `"\nSnapshotUUID<same suffix>="<uuid>"`, a description at the next record.
 */
export function parseSnapshotList(stdout: string): ListedSnapshot[] {
  const text = normalizeNewlines(stdout);
  if (/^This machine does not have any snapshots/m.test(text) && !text.includes('SnapshotName=')) return [];
  const out: ListedSnapshot[] = [];
  let pos = text.indexOf('SnapshotName="');
  let path = '';
  let currentUuid: string | null = null;
  const byPath = new Map<string, string>();
  while (pos !== -1 && pos < text.length) {
    const head = `SnapshotName${path}="`;
    if (!text.startsWith(head, pos)) break;
    const nameStart = pos + head.length;
    const uuidRe = new RegExp(`"\\nSnapshotUUID${path.replace(/-/g, '\\-')}="(${UUID})"\\n?`, 'g');
    uuidRe.lastIndex = nameStart;
    const um = uuidRe.exec(text);
    if (!um) break;
    const name = text.slice(nameStart, um.index);
    const uuid = um[1]!.toLowerCase();
    pos = um.index + um[0].length;
    let description: string | undefined;
    const descHead = `SnapshotDescription${path}="`;
    const nexts = successors(path);
    if (text.startsWith(descHead, pos)) {
      const start = pos + descHead.length;
      const ends = [
        text.indexOf(`"\nCurrentSnapshotName="${name}"\nCurrentSnapshotUUID="`, start),
        ...nexts.map((p) => text.indexOf(`"\nSnapshotName${p}="`, start)),
      ].filter((n) => n !== -1);
      const trimmed = text.replace(/\n+$/, '');
      const end = ends.length ? Math.min(...ends) : trimmed.endsWith('"') ? trimmed.length - 1 : trimmed.length;
      description = text.slice(start, end);
      pos = end + 2;
    }
    const currentBlock = `CurrentSnapshotName="${name}"\nCurrentSnapshotUUID="${uuid}"\nCurrentSnapshotNode="SnapshotName${path}"`;
    if (text.startsWith(currentBlock, pos)) {
      currentUuid = uuid;
      pos += currentBlock.length + 1;
    }
    const parentUuid = path === '' ? null : (byPath.get(path.replace(/-\d+$/, '')) ?? null);
    out.push({ uuid, name, ...(description !== undefined ? { description } : {}), parentUuid, current: false, path });
    byPath.set(path, uuid);
    const next = nexts.find((p) => text.startsWith(`SnapshotName${p}="`, pos));
    if (next === undefined) break;
    path = next;
  }
  // a current block printed for the root record has an empty suffix; also accept CurrentSnapshotUUID anywhere
  if (!currentUuid) {
    const m = new RegExp(`^CurrentSnapshotUUID="(${UUID})"$`, 'm').exec(text);
    if (m) currentUuid = m[1]!.toLowerCase();
  }
  return out.map((s) => (s.uuid === currentUuid ? { ...s, current: true } : s));
}

/** Parses `getextradata <vm> enumerate`: `Key: <key>, Value: <value>` per line. */
export function parseExtraData(stdout: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of stdout.split(/\r?\n/)) {
    const m = /^Key: (.*?), Value: (.*)$/.exec(line);
    if (m) out.set(m[1]!, m[2]!);
  }
  return out;
}

/** Parses `guestproperty get`: `Value: <value>`, or null for `No value set!`. */
export function parseGuestProperty(stdout: string): string | null {
  const m = /^Value: (.*)$/m.exec(stdout);
  return m ? m[1]!.trim() : null;
}

/** Host facts from `list hostinfo`. */
export function parseHostInfo(stdout: string): { cpus: number; memoryMiB: number; os?: string } {
  const num = (re: RegExp): number => Number(re.exec(stdout)?.[1] ?? 0);
  const os = /^Operating system: (.*)$/m.exec(stdout)?.[1]?.trim();
  return {
    cpus: num(/^Processor (?:online )?count: (\d+)/m),
    memoryMiB: num(/^Memory size: (\d+) MByte/m),
    ...(os ? { os } : {}),
  };
}

/** The UUID in `createvm` output (`UUID: <uuid>`). */
export function parseCreatedUuid(stdout: string): string | null {
  return new RegExp(`^UUID: (${UUID})`, 'm').exec(stdout)?.[1]?.toLowerCase() ?? null;
}

/** The UUID in `snapshot take` output (`Snapshot taken. UUID: <uuid>`). */
export function parseSnapshotTaken(stdout: string): string | null {
  return new RegExp(`Snapshot taken\\. UUID: (${UUID})`).exec(stdout)?.[1]?.toLowerCase() ?? null;
}
