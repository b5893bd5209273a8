import { withTempFile } from './handover.js';
import type { AdapterInternals } from './internals.js';
import { VirshFailure } from './virsh/runner.js';
import { escapeXml } from './xml/tree.js';

/**
 * When a start failed because the VM's libvirt network is not running (a fresh install leaves
 * `default` inactive), starts that network and returns its name; otherwise returns null.
 */
export async function startNetworkIfInactive(ctx: AdapterInternals, err: unknown): Promise<string | null> {
  const detail = (err as { details?: { libvirtMessage?: unknown } } | undefined)?.details?.libvirtMessage;
  const message = typeof detail === 'string' ? detail : err instanceof Error ? err.message : '';
  const network = /network '([^']+)' is not active/.exec(message)?.[1];
  if (!network) return null;
  try {
    await ctx.virsh.run(['net-start', '--network', network]);
  } catch (e) {
    // Someone else may have started it meanwhile.
    if (!(e instanceof VirshFailure && /already active/i.test(e.libvirtMessage)))
      throw await ctx.toError(e, { operation: `start network ${network}` });
  }
  return network;
}

/**
 * Makes sure the isolated network used for `host-only` exists and runs. Tandem defines it
 * (no forwarding, DHCP on 10.213.0.0/24) the first time a host-only VM is defined.
 */
export async function ensureHostOnlyNetwork(ctx: AdapterInternals, name: string): Promise<void> {
  let info: string;
  try {
    info = await ctx.virsh.run(['net-info', '--network', name]);
  } catch (err) {
    if (!(err instanceof VirshFailure && /not found|no network with matching name/i.test(err.libvirtMessage))) {
      throw await ctx.toError(err, { operation: `look up network ${name}` });
    }
    const xml = [
      '<network>',
      `  <name>${escapeXml(name)}</name>`,
      "  <ip address='10.213.0.1' netmask='255.255.255.0'>",
      "    <dhcp><range start='10.213.0.100' end='10.213.0.254'/></dhcp>",
      '  </ip>',
      '</network>',
    ].join('\n');
    try {
      await withTempFile(xml, (file) => ctx.virsh.run(['net-define', '--file', file]));
      await ctx.virsh.run(['net-autostart', '--network', name]);
    } catch (e) {
      throw await ctx.toError(e, { operation: `define network ${name}` });
    }
    info = 'Active: no';
  }
  if (/^Active:\s+no/m.test(info)) {
    try {
      await ctx.virsh.run(['net-start', '--network', name]);
    } catch (e) {
      if (!(e instanceof VirshFailure && /already active/i.test(e.libvirtMessage)))
        throw await ctx.toError(e, { operation: `start network ${name}` });
    }
  }
}
