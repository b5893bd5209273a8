// A test adapter (not shipped) for the real Xpra test of `tandem apps launch`: the mock
// hypervisor (its state in a file, so it lasts between tandem invocations) whose seamless
// transport is the real Xpra client attached to the server at the `url` option.
import type { AdapterModule, LaunchRequest } from '@tandem/core';
import { MockAdapter } from '@tandem/core/mock';
import { launchXpraAttach } from '@tandem/adapter-libvirt';

export const tandemAdapter: AdapterModule<{ stateFile?: string; url?: string }> = {
  name: 'xpra-attach-test',
  create(options = {}) {
    const mock = new MockAdapter({
      hostMemoryMiB: 4096,
      ...(options.stateFile ? { stateFile: options.stateFile } : {}),
    });
    const seamless = { launch: (_vm: string, req: LaunchRequest) => launchXpraAttach(options.url ?? '', req) };
    return new Proxy(mock, {
      get: (t, p) => {
        if (p === 'seamless') return seamless;
        if (p === 'name') return 'xpra-attach-test';
        const v = Reflect.get(t, p, t) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
      },
    });
  },
};
