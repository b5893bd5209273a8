/**
 * TypeDoc plugin (typedoc.json `plugin`): with `entryPointStrategy: packages`, each package's
 * entry points are the TypeScript sources of its `exports` map (the `@tandem/source`
 * condition). Every subpath entry (`@tandem/core/policy`, ...) is documented, and an entry added
 * to a package's exports needs no second list. Runs after the package.json reader, so it also
 * wins over a hand-written `typedocOptions.entryPoints`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** The source files a package's exports map points at, absolute, in the map's order. */
export function exportedSources(packageDir) {
  const file = join(packageDir, 'package.json');
  if (!existsSync(file)) return [];
  const pkg = JSON.parse(readFileSync(file, 'utf8'));
  const out = [];
  for (const value of Object.values(pkg.exports ?? {})) {
    const source = value !== null && typeof value === 'object' ? value['@tandem/source'] : undefined;
    if (typeof source === 'string' && source.endsWith('.ts')) out.push(resolve(packageDir, source));
  }
  return out;
}

/** @param {import('typedoc').Application} app */
export function load(app) {
  app.options.addReader({
    name: 'tandem-exports-map',
    // After the package.json reader (150), before the tsconfig reader (200).
    order: 175,
    supportsPackages: true,
    read(container, _logger, cwd) {
      // Only inside a package: the root's entry points are the packages themselves.
      if (container.packageDir === undefined) return;
      const entries = exportedSources(cwd);
      if (entries.length > 0) container.setValue('entryPoints', entries, cwd);
    },
  });
}
