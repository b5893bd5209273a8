import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

// What `npm publish` would upload, package by package: packed with `npm pack --dry-run` from the
// built packages (tsc -b), so the check sees the tarball's own file list.
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const PACKAGES = [
  'core',
  'adapter-libvirt',
  'adapter-virtualbox',
  'adapter-hyperv',
  'cli',
  'guest-agent',
  'agent',
  'server',
];
const built = PACKAGES.every((p) => existsSync(join(root, 'packages', p, 'dist', 'index.js')));

interface PackedFile {
  path: string;
}

async function packedFiles(dir: string): Promise<string[]> {
  const { stdout } = await promisify(execFile)('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
    cwd: dir,
    timeout: 120_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  const [info] = JSON.parse(stdout) as [{ files: PackedFile[] }];
  return info.files.map((f) => f.path).sort();
}

/** Every file an exports map points at, for the conditions a consumer resolves. */
function exportTargets(exports: unknown): string[] {
  if (typeof exports === 'string') return [exports];
  if (exports === null || typeof exports !== 'object') return [];
  return Object.entries(exports).flatMap(([key, value]) => (key === '@tandem/source' ? [] : exportTargets(value)));
}

describe.skipIf(!built)('packed packages (after tsc -b)', () => {
  it.each(PACKAGES)(
    '%s ships its README, the license, every entry it exports, no build cache or tests, and maps with their sources',
    async (name) => {
      const dir = join(root, 'packages', name);
      const files = await packedFiles(dir);
      const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
        exports: unknown;
        bin?: Record<string, string>;
      };

      expect(files).toContain('README.md');
      expect(files).toContain('LICENSE');
      expect(readFileSync(join(dir, 'LICENSE'), 'utf8')).toBe(readFileSync(join(root, 'LICENSE'), 'utf8'));
      expect(files.filter((f) => f.includes('tsbuildinfo'))).toEqual([]);
      expect(files.filter((f) => /\.test[.-]|\.test\.(util|helpers?)\.|\.integ\./.test(f))).toEqual([]);
      expect(files.filter((f) => f.startsWith('src/'))).toEqual([]);

      const wanted = [...exportTargets(manifest.exports), ...Object.values(manifest.bin ?? {})].map((t) =>
        t.replace(/^\.\//, ''),
      );
      expect(wanted.filter((t) => !files.includes(t))).toEqual([]);

      // A source map either embeds the sources it maps (they are not shipped) or is left out.
      const maps = files.filter((f) => f.endsWith('.map'));
      const withoutSources = maps.filter((f) => {
        const map = JSON.parse(readFileSync(join(dir, f), 'utf8')) as { sources: string[]; sourcesContent?: unknown[] };
        return (
          map.sourcesContent?.length !== map.sources.length || !map.sourcesContent.every((s) => typeof s === 'string')
        );
      });
      expect(withoutSources).toEqual([]);
      if (name === 'core') expect(files).toContain('workspace.schema.json');
    },
  );
});
