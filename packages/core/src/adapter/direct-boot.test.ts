import { describe, expect, it } from 'vitest';
import { TandemError } from '../errors.js';
import { MockAdapter } from '../testing/mock-adapter.js';
import type { VmSpec } from './types.js';

const spec: VmSpec = {
  name: 'kernel-boot',
  memoryMiB: 512,
  cpus: 1,
  disks: [{ path: '/images/state.qcow2', format: 'qcow2' }],
  network: { mode: 'none' },
  graphics: { kind: 'none' },
  osFamily: 'linux',
  boot: { kernel: '/boot/vmlinuz', initrd: '/boot/initrd.gz', cmdline: 'console=ttyS0' },
};

describe('direct kernel boot on an adapter without it', () => {
  it('define refuses a spec with boot (TANDEM_UNSUPPORTED naming the capability) and defines nothing', async () => {
    const adapter = new MockAdapter();
    const err: unknown = await adapter.define(spec).catch((e: unknown) => e);
    expect(TandemError.is(err, 'TANDEM_UNSUPPORTED')).toBe(true);
    expect((err as TandemError).details).toMatchObject({ capability: 'directKernelBoot', vm: 'kernel-boot' });
    expect((err as TandemError).message).toMatch(/libvirt adapter/);
    expect(await adapter.list()).toEqual([]);
  });

  it('redefine refuses it too, leaving the old definition', async () => {
    const adapter = new MockAdapter();
    const { boot: _boot, ...plain } = spec;
    await adapter.define(plain);
    const err: unknown = await adapter.redefine!(spec).catch((e: unknown) => e);
    expect(TandemError.is(err, 'TANDEM_UNSUPPORTED')).toBe(true);
    expect(await adapter.state('kernel-boot')).toBe('stopped');
  });

  it('an adapter that declares directKernelBoot takes the spec', async () => {
    const adapter = new MockAdapter({ capabilities: { directKernelBoot: true } });
    await adapter.define(spec);
    expect((await adapter.list()).map((v) => v.name)).toEqual(['kernel-boot']);
  });
});
