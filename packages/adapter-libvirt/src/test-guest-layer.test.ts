// The agent layer of the real test guest (scripts/test-guest/build.mjs layer): a valid newc
// archive, gzipped, the same bytes for the same tree, holding /init, the agent and the test apps.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const BUILD = join(ROOT, 'scripts/test-guest/build.mjs');

interface Entry {
  name: string;
  mode: number;
  uid: number;
  mtime: number;
  data: Buffer;
}

/** Reads a newc archive the way the kernel does: 110-byte headers, name and data 4-byte aligned. */
function parseNewc(buf: Buffer): Entry[] {
  const entries: Entry[] = [];
  let off = 0;
  const align = (n: number): number => (n + 3) & ~3;
  for (;;) {
    expect(buf.subarray(off, off + 6).toString('latin1')).toBe('070701');
    const field = (i: number): number =>
      parseInt(buf.subarray(off + 6 + i * 8, off + 14 + i * 8).toString('latin1'), 16);
    const [mode, uid, mtime, size, nameSize] = [field(1), field(2), field(5), field(6), field(11)];
    const name = buf.subarray(off + 110, off + 110 + nameSize - 1).toString('utf8');
    expect(buf[off + 110 + nameSize - 1]).toBe(0);
    const dataStart = align(off + 110 + nameSize);
    if (name === 'TRAILER!!!') return entries;
    entries.push({ name, mode, uid, mtime, data: buf.subarray(dataStart, dataStart + size) });
    off = align(dataStart + size);
  }
}

describe('the test guest agent layer', () => {
  let dir: string;
  let entries: Entry[];
  const agentBuilt = existsSync(join(ROOT, 'packages/guest-agent/dist/main.js'));

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tandem-layer-'));
    await run(process.execPath, [BUILD, 'layer', '--out', join(dir, 'a.gz')]);
    entries = parseNewc(gunzipSync(await readFile(join(dir, 'a.gz'))));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('is a newc archive of root-owned entries at time 0, /init executable', () => {
    expect(entries.every((e) => e.uid === 0 && e.mtime === 0)).toBe(true);
    const init = entries.find((e) => e.name === 'init')!;
    expect(init.mode).toBe(0o100755);
    expect(init.data.toString('utf8')).toMatch(/^#!\/bin\/sh\n/);
    expect(init.data.toString('utf8')).toContain('virtio_console');
    // Parents come before their children, as the kernel needs to create them.
    const seen = new Set<string>();
    for (const e of entries) {
      const parent = e.name.split('/').slice(0, -1).join('/');
      if (parent) expect(seen.has(parent), e.name).toBe(true);
      seen.add(e.name);
    }
  });

  it('holds the test apps with valid PNG icons, one in the hicolor theme and one by path', () => {
    const file = (name: string): Buffer => entries.find((e) => e.name === name)!.data;
    const notes = file('usr/share/applications/tandem-notes.desktop').toString('utf8');
    expect(notes).toMatch(/^\[Desktop Entry\]\n/);
    expect(notes).toContain('Icon=tandem-notes\n');
    expect(file('usr/share/applications/tandem-clock.desktop').toString('utf8')).toContain(
      'Icon=/usr/share/icons/hicolor/48x48/apps/tandem-clock.png\n',
    );
    expect(file('usr/share/applications/tandem-hidden.desktop').toString('utf8')).toContain('NoDisplay=true');
    for (const id of ['tandem-notes', 'tandem-clock']) {
      const png = file(`usr/share/icons/hicolor/48x48/apps/${id}.png`);
      expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
      expect(png.readUInt32BE(16)).toBe(48); // IHDR width
    }
  });

  it.skipIf(!agentBuilt)('holds the built agent, the core and zod under /opt/tandem, without type declarations', () => {
    const names = new Set(entries.map((e) => e.name));
    for (const f of [
      'opt/tandem/node_modules/@tandem/guest-agent/package.json',
      'opt/tandem/node_modules/@tandem/guest-agent/dist/main.js',
      'opt/tandem/node_modules/@tandem/core/package.json',
      'opt/tandem/node_modules/@tandem/core/dist/guest/index.js',
      'opt/tandem/node_modules/zod/package.json',
    ]) {
      expect(names.has(f), f).toBe(true);
    }
    expect([...names].some((n) => n.endsWith('.d.ts') || n.endsWith('.map'))).toBe(false);
  });

  it('is the same bytes when built again from the same tree', async () => {
    await run(process.execPath, [BUILD, 'layer', '--out', join(dir, 'b.gz')]);
    expect((await readFile(join(dir, 'b.gz'))).equals(await readFile(join(dir, 'a.gz')))).toBe(true);
  });
});
