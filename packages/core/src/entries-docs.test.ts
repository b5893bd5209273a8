import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Application } from 'typedoc';
import { describe, expect, it } from 'vitest';

// `npm run docs` documents every entry of every package's exports map: the check reads the maps
// (never a list of its own) and the entry points TypeDoc resolves for each package from the
// repository's typedoc.json, the way `typedoc` itself reads them.
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/** Every package under packages/ with its exported TypeScript sources. */
function packages(): { dir: string; name: string; sources: string[] }[] {
  return readdirSync(join(root, 'packages'))
    .map((d) => join(root, 'packages', d))
    .filter((dir) => existsSync(join(dir, 'package.json')))
    .map((dir) => {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
        name: string;
        exports?: Record<string, unknown>;
      };
      const sources = Object.entries(pkg.exports ?? {}).flatMap(([key, v]) => {
        const source = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)['@tandem/source'] : v;
        if (typeof source !== 'string' || !source.endsWith('.ts')) return [];
        return [`${key} -> ${resolve(dir, source)}`];
      });
      return { dir, name: pkg.name, sources };
    });
}

/** TypeDoc with the repository's typedoc.json and its plugins, as `npm run docs` starts it. */
function typedoc(): Promise<Application> {
  return Application.bootstrapWithPlugins({ options: join(root, 'typedoc.json'), logLevel: 'Error' });
}

describe('API reference entry points', () => {
  it('typedoc.json covers every package under packages/', async () => {
    const { options } = await typedoc();
    const covered = (options.getValue('entryPoints') as string[]).map((p) => resolve(root, p));
    // Globs such as packages/* count as covering what they match.
    const matches = (dir: string): boolean =>
      covered.some((c) => c === dir || (c.endsWith('/*') && dirname(dir) === c.slice(0, -2)));
    expect(
      packages()
        .filter((p) => !matches(p.dir))
        .map((p) => p.name),
    ).toEqual([]);
  });

  it.each(packages().map((p) => [p.name, p] as const))(
    '%s: every entry of its exports map is a documentation entry point',
    async (_name, pkg) => {
      // What TypeDoc does for each package: the root's packageOptions, then the package's own.
      const app = await typedoc();
      const own = app.options.copyForPackage(pkg.dir);
      await own.read(app.logger, pkg.dir);
      const entries = new Set((own.getValue('entryPoints') as string[]).map((p) => resolve(pkg.dir, p)));
      const missing = pkg.sources.filter((s) => !entries.has(s.split(' -> ')[1]!));
      expect(missing, `add these to the API reference (typedoc.json, scripts/typedoc-exports.mjs)`).toEqual([]);
      expect(pkg.sources.length).toBeGreaterThan(0);
    },
  );

  it("an entry added to a package's exports map becomes an entry point with nothing else to edit", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tandem-docs-entries-'));
    try {
      mkdirSync(join(dir, 'src', 'later'), { recursive: true });
      writeFileSync(join(dir, 'src', 'index.ts'), 'export const a = 1;\n');
      writeFileSync(join(dir, 'src', 'later', 'index.ts'), 'export const b = 2;\n');
      const entry = (p: string) => ({
        types: `./dist/${p}.d.ts`,
        '@tandem/source': `./src/${p}.ts`,
        default: `./dist/${p}.js`,
      });
      writeFileSync(
        join(dir, 'package.json'),
        JSON.stringify({ name: '@tandem/example', exports: { '.': entry('index'), './later': entry('later/index') } }),
      );
      const app = await typedoc();
      const own = app.options.copyForPackage(dir);
      await own.read(app.logger, dir);
      expect((own.getValue('entryPoints') as string[]).map((p) => resolve(dir, p)).sort()).toEqual(
        [join(dir, 'src', 'index.ts'), join(dir, 'src', 'later', 'index.ts')].sort(),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
