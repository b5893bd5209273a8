import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isInside } from './installed-files.js';
import { readShellLink } from './lnk.test-helper.js';
import { hostileString, walk } from './test-helpers.test-helper.js';
import { WindowsLaunchers, windowsFileName } from './windows.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tandem-win-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** CommandLineToArgvW's rules, independently (the reference parser of the host tests would do too). */
function splitWindows(line: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < line.length) {
    while (line[i] === ' ' || line[i] === '\t') i++;
    if (i >= line.length) break;
    let arg = '';
    let quoted = false;
    while (i < line.length && (quoted || (line[i] !== ' ' && line[i] !== '\t'))) {
      let slashes = 0;
      while (line[i] === '\\') {
        slashes++;
        i++;
      }
      if (line[i] === '"') {
        arg += '\\'.repeat(Math.floor(slashes / 2));
        if (slashes % 2 === 1) arg += '"';
        else quoted = !quoted;
        i++;
      } else {
        arg += '\\'.repeat(slashes);
        if (i < line.length && (quoted || (line[i] !== ' ' && line[i] !== '\t'))) arg += line[i++];
      }
    }
    out.push(arg);
  }
  return out;
}

describe('Windows Start Menu shortcuts', () => {
  it('file names from untrusted text are never paths or device names', () => {
    expect(windowsFileName('..\\..\\evil', 'x')).toBe('_.._evil');
    expect(windowsFileName('NUL', 'x')).toBe('_NUL');
    expect(windowsFileName('com1.txt', 'x')).toBe('_com1.txt');
    expect(windowsFileName('a:b*c?', 'x')).toBe('a_b_c_');
    expect(windowsFileName(' . ', 'x')).toBe('x');
  });

  it('hostile apps write only under the Programs folder and the state directory, and their arguments stay arguments', () => {
    fc.assert(
      fc.property(
        hostileString(),
        fc.array(
          fc.record({
            id: hostileString(),
            name: hostileString(),
            folder: fc.option(hostileString(), { nil: undefined }),
          }),
          {
            minLength: 1,
            maxLength: 3,
          },
        ),
        (workspace, apps) => {
          fc.pre(![workspace, ...apps.map((a) => a.id)].some((s) => s.includes('\0')));
          fc.pre(new Set(apps.map((a) => a.id)).size === apps.length);
          const root = mkdtempSync(join(dir, 'p-'));
          const start = new WindowsLaunchers({
            programsDir: join(root, 'Programs'),
            stateDir: join(root, 'state'),
            stateDirWindowsPath: 'C:\\T',
            target: 'C:\\Program Files\\Tandem\\tandem.exe',
          });
          const r = start.install({
            workspace,
            apps: apps.map((a) => ({
              id: a.id,
              name: a.name,
              ...(a.folder !== undefined ? { startMenuFolder: a.folder } : {}),
            })),
          });
          for (const f of walk(root)) expect(start.roots.some((x) => isInside(x, f))).toBe(true);
          const links = r.written.filter((f) => f.endsWith('.lnk'));
          expect(links).toHaveLength(apps.length);
          for (const [i, f] of links.entries()) {
            const link = readShellLink(readFileSync(f));
            expect(splitWindows(link.arguments!)).toEqual(['apps', 'launch', '--workspace', workspace, apps[i]!.id]);
          }
          start.remove(workspace);
          expect(walk(root)).toEqual([]);
        },
      ),
      { numRuns: 150 },
    );
  });
});
