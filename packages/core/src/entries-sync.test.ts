import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// Every name the root entry exports from a product area's folder is also exported by that
// area's own entry, so `@tandem/core/<area>` is never a smaller API than the root.
const src = dirname(fileURLToPath(import.meta.url));
const AREAS = ['policy', 'delivery', 'host', 'session', 'events', 'workspace', 'publishing', 'guest'];

/** Exported names by the folder of the module they come from. */
function exportsByFolder(file: string, base: string): Map<string, Set<string>> {
  const text = readFileSync(file, 'utf8');
  const out = new Map<string, Set<string>>();
  for (const m of text.matchAll(/export (?:type )?\{([^}]*)\} from '([^']+)'/g)) {
    const path = join(base, m[2]!);
    const folder = path.slice(src.length + 1).split('/')[0]!;
    const names = m[1]!
      .split(',')
      .map((n) => n.trim().replace(/^type /, ''))
      .filter(Boolean);
    const set = out.get(folder) ?? new Set<string>();
    names.forEach((n) => set.add(n));
    out.set(folder, set);
  }
  return out;
}

describe('subpath entries', () => {
  const root = exportsByFolder(join(src, 'index.ts'), src);
  it.each(AREAS)('@tandem/core/%s exports every name the root exports from that folder', (area) => {
    const own = exportsByFolder(join(src, area, 'index.ts'), join(src, area)).get(area) ?? new Set<string>();
    const missing = [...(root.get(area) ?? [])].filter((n) => !own.has(n));
    expect(missing, `add these to src/${area}/index.ts as well as src/index.ts`).toEqual([]);
  });
});
