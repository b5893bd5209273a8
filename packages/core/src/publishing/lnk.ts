import { InvalidInputError } from '../errors.js';

/**
 * A writer of Windows shortcuts (.lnk) by the public Shell Link Binary File Format
 * ([MS-SHLLINK]): a ShellLinkHeader, a LinkInfo with the target's local path, the
 * description, working directory, arguments and icon location as Unicode StringData, and the
 * terminal block. No VBScript, PowerShell or COM is needed to make one.
 */

/** What a shortcut points at. */
export interface ShellLink {
  /** The program's absolute local path, `C:\...`. */
  readonly target: string;
  /** The command line after the program (already quoted for Windows). */
  readonly arguments?: string;
  /** The description (tooltip). */
  readonly description?: string;
  readonly workingDirectory?: string;
  /** An .ico (or .exe/.dll) and the icon's index in it. */
  readonly iconLocation?: string;
  readonly iconIndex?: number;
  /** Creation, access and write times (default zero: no time recorded). */
  readonly time?: Date;
}

const CLSID = Uint8Array.from([
  0x01, 0x14, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x46,
]);

/** LinkFlags ([MS-SHLLINK] 2.1.1). */
export const LINK_FLAGS = {
  HasLinkTargetIDList: 1 << 0,
  HasLinkInfo: 1 << 1,
  HasName: 1 << 2,
  HasRelativePath: 1 << 3,
  HasWorkingDir: 1 << 4,
  HasArguments: 1 << 5,
  HasIconLocation: 1 << 6,
  IsUnicode: 1 << 7,
} as const;

const FILE_ATTRIBUTE_NORMAL = 0x80;
const SW_SHOWNORMAL = 1;
const DRIVE_FIXED = 3;

function filetime(date: Date | undefined): bigint {
  if (!date) return 0n;
  return (BigInt(date.getTime()) + 11_644_473_600_000n) * 10_000n;
}

function utf16(s: string): Uint8Array {
  const out = new Uint8Array(s.length * 2);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    out[i * 2] = c & 0xff;
    out[i * 2 + 1] = c >> 8;
  }
  return out;
}

/** The system code page is unknown here: non-ASCII becomes `?`; the Unicode copy carries the truth. */
function ansi(s: string): Uint8Array {
  return Uint8Array.from([...s].map((c) => (c.charCodeAt(0) < 0x80 ? c.charCodeAt(0) : 0x3f)));
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n >>> 0, true);
  return b;
}

function stringData(s: string, what: string): Uint8Array {
  if (s.length > 0xffff) {
    throw new InvalidInputError(`The shortcut's ${what} is longer than 65535 characters.`, { details: { what } });
  }
  const count = new Uint8Array(2);
  new DataView(count.buffer).setUint16(0, s.length, true);
  return concat([count, utf16(s)]);
}

function linkInfo(path: string): Uint8Array {
  const headerSize = 0x24;
  const volume = concat([u32(0x11), u32(DRIVE_FIXED), u32(0), u32(0x10), Uint8Array.of(0)]);
  const local = concat([ansi(path), Uint8Array.of(0)]);
  const suffix = Uint8Array.of(0);
  const localU = concat([utf16(path), Uint8Array.of(0, 0)]);
  const suffixU = Uint8Array.of(0, 0);
  const volumeOffset = headerSize;
  const localOffset = volumeOffset + volume.length;
  const suffixOffset = localOffset + local.length;
  const localUOffset = suffixOffset + suffix.length;
  const suffixUOffset = localUOffset + localU.length;
  const size = suffixUOffset + suffixU.length;
  return concat([
    u32(size),
    u32(headerSize),
    u32(1), // VolumeIDAndLocalBasePath
    u32(volumeOffset),
    u32(localOffset),
    u32(0),
    u32(suffixOffset),
    u32(localUOffset),
    u32(suffixUOffset),
    volume,
    local,
    suffix,
    localU,
    suffixU,
  ]);
}

/**
 * The bytes of a .lnk file. Text containing NUL is refused (it would end the string early in
 * some readers).
 *
 * @example
 * ```ts
 * const bytes = writeShellLink({
 *   target: 'C:\\Program Files\\Tandem\\tandem.exe',
 *   arguments: 'apps launch --workspace legacy-erp erp',
 *   description: 'Legacy ERP',
 * });
 * ```
 */
export function writeShellLink(link: ShellLink): Uint8Array {
  const fields: [string, string | undefined][] = [
    ['target', link.target],
    ['arguments', link.arguments],
    ['description', link.description],
    ['working directory', link.workingDirectory],
    ['icon location', link.iconLocation],
  ];
  for (const [what, v] of fields) {
    if (v?.includes('\0')) {
      throw new InvalidInputError(`The shortcut's ${what} contains NUL.`, { details: { what } });
    }
  }
  if (!/^[A-Za-z]:\\/.test(link.target)) {
    throw new InvalidInputError(`The shortcut's target "${link.target}" is not an absolute local path (C:\\...).`, {
      details: { target: link.target },
    });
  }
  let flags = LINK_FLAGS.HasLinkInfo | LINK_FLAGS.IsUnicode;
  const strings: Uint8Array[] = [];
  if (link.description !== undefined) {
    flags |= LINK_FLAGS.HasName;
    strings.push(stringData(link.description, 'description'));
  }
  if (link.workingDirectory !== undefined) {
    flags |= LINK_FLAGS.HasWorkingDir;
    strings.push(stringData(link.workingDirectory, 'working directory'));
  }
  if (link.arguments !== undefined) {
    flags |= LINK_FLAGS.HasArguments;
    strings.push(stringData(link.arguments, 'arguments'));
  }
  if (link.iconLocation !== undefined) {
    flags |= LINK_FLAGS.HasIconLocation;
    strings.push(stringData(link.iconLocation, 'icon location'));
  }
  const header = new Uint8Array(0x4c);
  const h = new DataView(header.buffer);
  h.setUint32(0, 0x4c, true);
  header.set(CLSID, 4);
  h.setUint32(20, flags, true);
  h.setUint32(24, FILE_ATTRIBUTE_NORMAL, true);
  const t = filetime(link.time);
  h.setBigUint64(28, t, true);
  h.setBigUint64(36, t, true);
  h.setBigUint64(44, t, true);
  h.setUint32(52, 0, true); // FileSize
  h.setInt32(56, link.iconIndex ?? 0, true);
  h.setUint32(60, SW_SHOWNORMAL, true);
  // HotKey, Reserved1..3 stay zero.
  return concat([header, linkInfo(link.target), ...strings, u32(0)]);
}
