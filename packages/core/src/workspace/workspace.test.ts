import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { TandemError, type InvalidInputError } from '../errors.js';
import { workspaceJsonSchema } from './json-schema.js';
import { loadWorkspaceFile, parseWorkspace, type WorkspaceIssue } from './load.js';
import { buildVmSpec, computeMemoryMiB } from './vm-spec.js';

const here = dirname(fileURLToPath(import.meta.url));
const example = readFileSync(join(here, 'fixtures/legacy-erp.yaml'), 'utf8');

function issuesOf(text: string): WorkspaceIssue[] {
  try {
    parseWorkspace(text, { file: 'ws.yaml' });
  } catch (err) {
    expect(TandemError.is(err, 'TANDEM_INVALID_INPUT')).toBe(true);
    return (err as InvalidInputError).details['issues'] as WorkspaceIssue[];
  }
  throw new Error('expected the workspace to be rejected');
}

/** The example with one line replaced. */
function variant(find: string, replace: string): string {
  expect(example).toContain(find);
  return example.replace(find, replace);
}

describe('workspace schema', () => {
  it('accepts the full DESIGN.md example and applies defaults', () => {
    const ws = parseWorkspace(example);
    expect(ws.metadata).toEqual({ name: 'legacy-erp', version: '3.2.0' });
    expect(ws.spec.publishedApps[0]).toMatchObject({ id: 'erp', command: 'C:\\Program Files\\ERP\\erp.exe', args: [] });
    expect(ws.spec.webRedirection?.rules).toHaveLength(4);
    expect(ws.spec.usage.offline).toEqual({ allowed: true, maxDuration: 'P14D' });
    expect(ws.spec.guestOs).toBe('windows');
    expect(ws.spec.hardware.guestChannel).toBe(true);
  });

  it('accepts the same workspace as JSON', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tandem-ws-'));
    const file = join(dir, 'ws.json');
    writeFileSync(file, JSON.stringify(parseWorkspace(example)));
    const loaded = await loadWorkspaceFile(file);
    expect(loaded.workspace.metadata.name).toBe('legacy-erp');
    expect(loaded.baseDir).toBe(dir);
  });

  it.each([
    ['wrong type', variant('cpus: 1', 'cpus: one'), 'spec.hardware.cpus', /expected number/],
    ['unknown key (a typo)', variant('cpus: 1', 'cpu: 1'), 'spec.hardware.cpu', /unknown key "cpu"/],
    ['unknown top-level key', example + 'extra: true\n', 'extra', /unknown key "extra"/],
    ['bad duration', variant('idleLock: PT15M', 'idleLock: 15 minutes'), 'spec.usage.idleLock', /ISO 8601 duration/],
    [
      'bad offline duration',
      variant('maxDuration: P14D', 'maxDuration: P1M'),
      'spec.usage.offline.maxDuration',
      /ISO 8601 duration/,
    ],
    ['bad CIDR', variant('10.20.0.0/16', '10.20.0.0/33'), 'spec.webRedirection.rules[1].match', /CIDR/],
    ['bad colour', variant("frameColor: '#d9534f'", 'frameColor: red'), 'spec.display.frameColor', /#rrggbb/],
    ['bad enum', variant('mode: nat }', 'mode: wifi }'), 'spec.network.mode', /"nat", "bridged", "host-only", "none"/],
    ['bad version', variant('version: 3.2.0', 'version: three'), 'metadata.version', /semantic version/],
    [
      'bad expiry',
      variant('expiresAt: 2027-06-30T00:00:00Z', 'expiresAt: next summer'),
      'spec.usage.expiresAt',
      /datetime/i,
    ],
    [
      'min above max',
      variant('minMiB: 512, maxMiB: 2048', 'minMiB: 4096, maxMiB: 2048'),
      'spec.hardware.memory',
      /minMiB <= maxMiB/,
    ],
    [
      'bad file type',
      variant('fileTypes: [.erp]', 'fileTypes: [erp]'),
      'spec.publishedApps[0].fileTypes[0]',
      /extension/,
    ],
    [
      'missing image',
      variant('image: { source: ./images/winxp.qcow2, format: qcow2 }', 'image: { format: qcow2 }'),
      'spec.image.source',
      /expected string/,
    ],
    ['wrong apiVersion', variant('apiVersion: tandem/v1', 'apiVersion: tandem/v2'), 'apiVersion', /"tandem\/v1"/],
  ])('rejects %s, naming the path', (_name, text, path, message) => {
    const issues = issuesOf(text);
    const issue = issues.find((i) => i.path === path || i.path.startsWith(path));
    expect(issue, JSON.stringify(issues)).toBeDefined();
    expect(issue!.message).toMatch(message);
  });

  it('names the file, the line and the column in the message', () => {
    try {
      parseWorkspace(variant('cpus: 1', 'cpus: -1'), { file: '/etc/tandem/erp.yaml' });
      throw new Error('not rejected');
    } catch (err) {
      expect((err as Error).message).toMatch(/^\/etc\/tandem\/erp\.yaml is not a valid workspace:/);
      expect((err as Error).message).toMatch(/\/etc\/tandem\/erp\.yaml:9:11: spec\.hardware\.cpus: /);
    }
  });

  it('reports YAML syntax errors with their position, and duplicate keys', () => {
    expect(issuesOf('apiVersion: [unclosed\n')[0]?.line).toBeGreaterThanOrEqual(1);
    expect(issuesOf('apiVersion: tandem/v1\napiVersion: tandem/v1\n')[0]?.message).toMatch(/unique|duplicate/i);
  });

  it('reports a missing file as NotFoundError', async () => {
    await expect(loadWorkspaceFile('/nonexistent/ws.yaml')).rejects.toMatchObject({ code: 'TANDEM_NOT_FOUND' });
  });

  it('sizes memory by host RAM within bounds, in 4 MiB steps', () => {
    const rule = { minMiB: 512, maxMiB: 2048, hostFraction: 0.25 };
    expect(computeMemoryMiB(rule, 1024)).toBe(512);
    expect(computeMemoryMiB(rule, 6002)).toBe(1500);
    expect(computeMemoryMiB(rule, 32768)).toBe(2048);
    expect(computeMemoryMiB({ fixedMiB: 768 }, 32768)).toBe(768);
  });

  it('builds the VM spec with the image resolved against the workspace file', () => {
    const spec = buildVmSpec(parseWorkspace(example), { hostMemoryMiB: 8192, baseDir: '/srv/ws' });
    expect(spec).toMatchObject({
      name: 'tandem-legacy-erp',
      memoryMiB: 2048,
      cpus: 1,
      disks: [{ path: '/srv/ws/images/winxp.qcow2', format: 'qcow2' }],
      network: { mode: 'nat' },
      osFamily: 'windows',
    });
  });

  it('exports a JSON Schema that matches the committed docs/workspace.schema.json', () => {
    const schema = workspaceJsonSchema();
    expect(schema['$schema']).toMatch(/json-schema/);
    const committed = JSON.parse(readFileSync(join(here, '../../../../docs/workspace.schema.json'), 'utf8')) as unknown;
    expect(committed, 'run `npm run docs:schema` to regenerate docs/workspace.schema.json').toEqual(schema);
    const shipped = JSON.parse(readFileSync(join(here, '../../workspace.schema.json'), 'utf8')) as unknown;
    expect(shipped, 'run `npm run docs:schema` to regenerate packages/core/workspace.schema.json').toEqual(schema);
  });
});
