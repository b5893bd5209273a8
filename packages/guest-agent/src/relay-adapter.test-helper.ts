// A test adapter for the CLI tests: the mock hypervisor, with its guest channel wired to a
// ChannelRelay's host socket (adapter option `socket`), where a real agent process listens.
import { connect } from 'node:net';
import type { Duplex } from 'node:stream';
import type { AdapterModule, GuestChannelOps } from '@tandem/core';
import { MockAdapter } from '@tandem/core/testing';

class RelayMockAdapter extends MockAdapter {
  override readonly guestChannel: GuestChannelOps;
  constructor(options: { stateFile?: string; socket?: string }) {
    super(options.stateFile ? { stateFile: options.stateFile } : {});
    const socket = options.socket ?? '';
    this.guestChannel = {
      open: () =>
        new Promise<Duplex>((resolve, reject) => {
          const s = connect(socket);
          s.once('connect', () => resolve(s));
          s.once('error', reject);
        }),
    };
  }
}

export const tandemAdapter: AdapterModule = {
  name: 'relay-mock',
  create: (options) => new RelayMockAdapter(options ?? {}),
};
