import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TandemError, type InvalidInputError } from '../errors.js';
import { workspaceJsonSchema } from './json-schema.js';
import { loadWorkspaceFile, parseWorkspace, type WorkspaceIssue } from './load.js';
import { buildVmSpec } from './vm-spec.js';

const workspace = (boot: string): string => `apiVersion: tandem/v1
kind: Workspace
metadata: { name: test-guest, version: 1.0.0 }
spec:
  image: { source: ./state.qcow2, format: qcow2 }
  guestOs: linux
  hardware: { memory: { fixedMiB: 512 } }
${boot}
`;

describe('workspace spec.boot (direct kernel boot)', () => {
  it('resolves the kernel and the initramfs against the workspace file and keeps the command line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tandem-boot-'));
    const file = join(dir, 'tandem.workspace.yaml');
    writeFileSync(
      file,
      workspace('  boot: { kernel: guest/vmlinuz, initrd: /srv/guest/initrd.gz, cmdline: "console=ttyS0 quiet" }'),
    );
    const { workspace: ws, baseDir } = await loadWorkspaceFile(file);
    const spec = buildVmSpec(ws, { hostMemoryMiB: 4096, baseDir });
    expect(spec.boot).toEqual({
      kernel: join(dir, 'guest/vmlinuz'),
      initrd: '/srv/guest/initrd.gz',
      cmdline: 'console=ttyS0 quiet',
    });
    expect(spec.disks[0]?.path).toBe(join(dir, 'state.qcow2'));
  });

  it('is absent from the VM spec when the workspace has none', () => {
    const spec = buildVmSpec(parseWorkspace(workspace('')), { hostMemoryMiB: 4096, baseDir: '/w' });
    expect(spec).not.toHaveProperty('boot');
  });

  it('rejects a boot without a kernel, unknown keys and a command line with a newline, naming the path', () => {
    const issues = (boot: string): WorkspaceIssue[] => {
      try {
        parseWorkspace(workspace(boot), { file: 'ws.yaml' });
      } catch (err) {
        expect(TandemError.is(err, 'TANDEM_INVALID_INPUT')).toBe(true);
        return (err as InvalidInputError).details['issues'] as WorkspaceIssue[];
      }
      throw new Error('expected the workspace to be rejected');
    };
    expect(issues('  boot: { initrd: ./initrd.gz }').map((i) => i.path)).toContain('spec.boot.kernel');
    expect(issues('  boot: { kernel: ./vmlinuz, append: x }').map((i) => i.path)).toContain('spec.boot.append');
    const newline = issues('  boot: { kernel: ./vmlinuz, cmdline: "a\\nb" }');
    expect(newline.map((i) => i.path)).toContain('spec.boot.cmdline');
    expect(newline.map((i) => i.message).join()).toMatch(/one line/);
  });

  it('is in the JSON Schema', () => {
    const schema = JSON.stringify(workspaceJsonSchema());
    expect(schema).toContain('direct kernel boot');
  });
});
