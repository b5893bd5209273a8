// Generates docs/workspace.schema.json and docs/workspace-reference.md from the zod schema.
// Run after building @tandem/core: npm run docs:schema
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { workspaceJsonSchema } from '../packages/core/dist/index.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const schema = workspaceJsonSchema();
writeFileSync(join(root, 'docs/workspace.schema.json'), JSON.stringify(schema, null, 2) + '\n');
// The same schema ships in @tandem/core, so an editor can point at node_modules/@tandem/core/workspace.schema.json.
writeFileSync(join(root, 'packages/core/workspace.schema.json'), JSON.stringify(schema, null, 2) + '\n');

const lines = [
  '# Workspace file reference',
  '',
  'Generated from the schema by `npm run docs:schema`; do not edit by hand. The JSON Schema is',
  '[workspace.schema.json](workspace.schema.json): point your editor at it (for VS Code with the YAML',
  'extension: `# yaml-language-server: $schema=./workspace.schema.json` as the first line). It also',
  'ships in the `@tandem/core` package: `node_modules/@tandem/core/workspace.schema.json`.',
  '',
  'Unknown keys are errors. Durations are ISO 8601 (`PT15M`, `P14D`). Every error names the file,',
  'the line and column, the path inside the file and what was expected.',
  '',
  '| path | type | required | default | description |',
  '| --- | --- | --- | --- | --- |',
];

function typeOf(s) {
  if (!s || typeof s !== 'object') return 'any';
  if (s.const !== undefined) return `\`${JSON.stringify(s.const)}\``;
  if (s.enum) return s.enum.map((v) => `\`${v}\``).join(' \\| ');
  if (s.anyOf || s.oneOf) return (s.anyOf ?? s.oneOf).map(typeOf).join(' or ');
  if (s.type === 'array') return `array of ${typeOf(s.items)}`;
  if (s.pattern) return `${s.type} (\`${s.pattern.replaceAll('|', '\\|')}\`)`;
  if (s.format) return `${s.type} (${s.format})`;
  return s.type ?? 'object';
}

function walk(s, path, required) {
  const desc = (s.description ?? '').replaceAll('|', '\\|');
  const def = s.default !== undefined ? `\`${JSON.stringify(s.default)}\`` : '';
  if (path) lines.push(`| \`${path}\` | ${typeOf(s)} | ${required ? 'yes' : ''} | ${def} | ${desc} |`);
  const variants = s.anyOf ?? s.oneOf;
  if (variants) variants.forEach((v, i) => v.properties && walkProps(v, `${path}{${i + 1}}`));
  if (s.properties) walkProps(s, path);
  if (s.type === 'array' && s.items?.properties) walkProps(s.items, `${path}[]`);
  if (s.type === 'array' && (s.items?.anyOf || s.items?.oneOf)) walk(s.items, `${path}[]`, false);
}

function walkProps(s, path) {
  const req = new Set(s.required ?? []);
  for (const [k, v] of Object.entries(s.properties)) walk(v, path ? `${path}.${k}` : k, req.has(k));
}

walk(schema, '', true);
lines.push('', '`{n}` marks the n-th alternative form of a value that has several.', '');
writeFileSync(join(root, 'docs/workspace-reference.md'), lines.join('\n'));
console.log('wrote docs/workspace.schema.json and docs/workspace-reference.md');
