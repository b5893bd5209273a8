import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { findChannel, parseTcpTarget } from './channel.js';

describe('finding the channel', () => {
  it('says why when the port is not there: no virtio-ports class, or no port of that name', async () => {
    const root = mkdtempSync(join(tmpdir(), 'tandem-sys-'));
    expect(await findChannel({ port: 'org.tandem.agent.0', platform: 'linux', sysDir: root })).toMatchObject({
      reason: expect.stringMatching(/virtio-ports does not exist: is the virtio_console module loaded/) as unknown,
    });
    mkdirSync(join(root, 'class', 'virtio-ports', 'vport0p1'), { recursive: true });
    writeFileSync(join(root, 'class', 'virtio-ports', 'vport0p1', 'name'), 'org.qemu.guest_agent.0\n');
    expect(await findChannel({ port: 'org.tandem.agent.0', platform: 'linux', sysDir: root })).toMatchObject({
      reason: expect.stringMatching(/found: vport0p1=org\.qemu\.guest_agent\.0/) as unknown,
    });
    mkdirSync(join(root, 'class', 'virtio-ports', 'vport0p2'));
    writeFileSync(join(root, 'class', 'virtio-ports', 'vport0p2', 'name'), 'org.tandem.agent.0\n');
    const dev = join(root, 'dev');
    mkdirSync(dev);
    expect(
      await findChannel({ port: 'org.tandem.agent.0', platform: 'linux', sysDir: root, devDir: dev }),
    ).toMatchObject({
      reason: expect.stringMatching(/vport0p2, but .* does not exist yet/) as unknown,
    });
    writeFileSync(join(dev, 'vport0p2'), '');
    expect(await findChannel({ port: 'org.tandem.agent.0', platform: 'linux', sysDir: root, devDir: dev })).toEqual({
      kind: 'device',
      path: join(dev, 'vport0p2'),
    });
  });

  it("on Windows it is vioser's device under \\\\.\\Global", async () => {
    expect(await findChannel({ port: 'org.tandem.agent.0', platform: 'win32' })).toEqual({
      kind: 'device',
      path: '\\\\.\\Global\\org.tandem.agent.0',
    });
  });

  it('parses --tcp HOST:PORT', () => {
    expect(parseTcpTarget('127.0.0.1:7000')).toEqual({ kind: 'tcp', host: '127.0.0.1', port: 7000 });
    expect(parseTcpTarget('[::1]:7000')).toEqual({ kind: 'tcp', host: '::1', port: 7000 });
    expect(() => parseTcpTarget('nope')).toThrow(/HOST:PORT/);
  });
});
