import { readFileSync } from 'node:fs';

/** The agent's own version, from its package.json (next to dist/ in every layout it runs from). */
export const AGENT_VERSION: string = (() => {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  } catch {
    return '0.0.0';
  }
})();

/** The name the agent says hello with. */
export const AGENT_SOFTWARE = '@tandem/guest-agent';
