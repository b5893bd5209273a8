// An independent reader of [MS-SHLLINK] shortcuts for the tests (not exported), written from the
// specification's structure tables rather than from the writer: it walks every section by the
// sizes the file itself declares.

/** What the reader found in a shortcut. */
export interface ReadShellLink {
  flags: number;
  fileAttributes: number;
  showCommand: number;
  iconIndex: number;
  localBasePath?: string;
  localBasePathUnicode?: string;
  name?: string;
  relativePath?: string;
  workingDir?: string;
  arguments?: string;
  iconLocation?: string;
  /** Bytes after the terminal block: must be none. */
  trailing: number;
}

function cstr(b: Buffer, at: number): string {
  const end = b.indexOf(0, at);
  return b.subarray(at, end).toString('latin1');
}

function wstr(b: Buffer, at: number): string {
  let end = at;
  while (b.readUInt16LE(end) !== 0) end += 2;
  return b.subarray(at, end).toString('utf16le');
}

/** Parses a .lnk file; throws on anything the specification does not allow. */
export function readShellLink(b: Buffer): ReadShellLink {
  if (b.readUInt32LE(0) !== 0x4c) throw new Error('HeaderSize is not 0x4C');
  if (b.subarray(4, 20).toString('hex') !== '0114020000000000c000000000000046') throw new Error('bad LinkCLSID');
  const flags = b.readUInt32LE(20);
  const out: ReadShellLink = {
    flags,
    fileAttributes: b.readUInt32LE(24),
    iconIndex: b.readInt32LE(56),
    showCommand: b.readUInt32LE(60),
    trailing: 0,
  };
  if (b.readUInt16LE(66) !== 0 || b.readUInt32LE(68) !== 0 || b.readUInt32LE(72) !== 0)
    throw new Error('reserved not zero');
  let o = 0x4c;
  if (flags & 1) o += 2 + b.readUInt16LE(o);
  if (flags & 2) {
    const size = b.readUInt32LE(o);
    const headerSize = b.readUInt32LE(o + 4);
    const liFlags = b.readUInt32LE(o + 8);
    if (liFlags & 1) {
      const volOff = b.readUInt32LE(o + 12);
      const volSize = b.readUInt32LE(o + volOff);
      if (volSize <= 0x10) throw new Error('VolumeIDSize too small');
      out.localBasePath = cstr(b, o + b.readUInt32LE(o + 16));
      if (headerSize >= 0x24) out.localBasePathUnicode = wstr(b, o + b.readUInt32LE(o + 28));
    }
    o += size;
  }
  const read = (): string => {
    const n = b.readUInt16LE(o);
    const s = b.subarray(o + 2, o + 2 + n * 2).toString('utf16le');
    o += 2 + n * 2;
    return s;
  };
  if (!(flags & 0x80)) throw new Error('not IsUnicode');
  if (flags & 0x04) out.name = read();
  if (flags & 0x08) out.relativePath = read();
  if (flags & 0x10) out.workingDir = read();
  if (flags & 0x20) out.arguments = read();
  if (flags & 0x40) out.iconLocation = read();
  // ExtraData: blocks of BlockSize >= 4, ended by a TerminalBlock (BlockSize < 4).
  for (;;) {
    const size = b.readUInt32LE(o);
    if (size < 4) {
      o += 4;
      break;
    }
    o += size;
  }
  out.trailing = b.length - o;
  return out;
}
