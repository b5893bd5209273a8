import { InvalidInputError, type VmSpec } from '@tandem/core';
import { readDomainFacts } from './domain-facts.js';
import { TANDEM_XMLNS } from './domain-xml.js';
import { withTempFile } from './handover.js';
import type { AdapterInternals } from './internals.js';
import { ensureHostOnlyNetwork, startNetworkIfInactive } from './networks.js';
import { child, children, escapeXml, parseXml, type XmlElement } from './xml/tree.js';

/** The libvirt networks the adapter uses for `nat` and `host-only`. */
export interface LiveNetworkNames {
  readonly natNetwork: string;
  readonly hostOnlyNetwork: string;
}

/**
 * The `<interface>` element for `network`, keeping the current card's MAC address and model (a
 * live update can change neither). `none` keeps the card with its link down: unplugging a PCI
 * card needs the guest's cooperation (ACPI), which a guest without an OS never gives, and a
 * link that is down is what the guest sees as "no network" anyway.
 */
export function liveInterfaceXml(
  network: VmSpec['network'],
  current: {
    readonly mac?: string;
    readonly model: string;
    readonly source?: Readonly<Record<string, string>>;
    readonly type?: string;
  },
  names: LiveNetworkNames,
): string {
  const e = escapeXml;
  const tail = `${current.mac ? `<mac address='${e(current.mac)}'/>` : ''}<model type='${e(current.model)}'/>`;
  switch (network.mode) {
    case 'nat':
      return `<interface type='network'><source network='${e(names.natNetwork)}'/>${tail}<link state='up'/></interface>`;
    case 'host-only':
      return `<interface type='network'><source network='${e(names.hostOnlyNetwork)}'/>${tail}<link state='up'/></interface>`;
    case 'bridged':
      if (!network.bridge) {
        throw new InvalidInputError('Network mode bridged needs network.bridge: the host bridge to attach to.', {
          details: { field: 'network.bridge' },
        });
      }
      return `<interface type='bridge'><source bridge='${e(network.bridge)}'/>${tail}<link state='up'/></interface>`;
    case 'none': {
      // Keep whatever source the card has, so the update changes only the link.
      const type = current.type ?? 'network';
      const source = Object.entries(current.source ?? {})
        .map(([k, v]) => ` ${k}='${e(v)}'`)
        .join('');
      return `<interface type='${e(type)}'><source${source}/>${tail}<link state='down'/></interface>`;
    }
  }
}

/** Sets `network` (and `mac`) on Tandem's metadata element, keeping its other attributes and children. */
export function withNetworkMetadata(meta: XmlElement, network: VmSpec['network'], mac: string | undefined): string {
  const e = escapeXml;
  const attrs = { ...meta.attrs, network: network.mode, ...(mac ? { mac } : {}) };
  const own = Object.entries(attrs)
    .filter(([k]) => !k.startsWith('xmlns'))
    .map(([k, v]) => ` ${k}='${e(v)}'`)
    .join('');
  const inner = meta.children.map((c) => render(c)).join('');
  // Unprefixed and without a namespace declaration: `virsh metadata --uri NS --key tandem` puts
  // the element into the namespace itself, and libvirt 9.0 refuses content that declares it
  // again ("failed to create a new XML namespace").
  return `<vm${own}>${inner}</vm>`;
}

function render(el: XmlElement): string {
  const attrs = Object.entries(el.attrs)
    .filter(([k]) => !k.startsWith('xmlns'))
    .map(([k, v]) => ` ${k}='${escapeXml(v)}'`)
    .join('');
  const name = el.name.replace(/^[^:]*:/, '');
  const body = `${escapeXml(el.text)}${el.children.map((c) => render(c)).join('')}`;
  return body === '' ? `<${name}${attrs}/>` : `<${name}${attrs}>${body}</${name}>`;
}

/**
 * Switches a running or paused domain's network: `virsh update-device --live --config` on its
 * card (same MAC, same model, new source, link up or down), or `attach-device --live --config`
 * when it has no card (defined with `none`), then Tandem's metadata in both definitions. The
 * caller serializes and checks the state.
 */
export async function setLiveNetwork(
  ctx: AdapterInternals,
  vm: string,
  network: VmSpec['network'],
  names: LiveNetworkNames,
): Promise<void> {
  const live = parseXml(await ctx.withDomain(vm, 'setNetwork', (d) => d.getXMLDesc(0), true));
  const card = children(child(live, 'devices'), 'interface')[0];
  if (network.mode === 'host-only') await ensureHostOnlyNetwork(ctx, names.hostOnlyNetwork);
  const mac = network.macAddress ?? child(card, 'mac')?.attrs['address'];
  if (card) {
    const xml = liveInterfaceXml(
      network,
      {
        ...(mac ? { mac } : {}),
        model: child(card, 'model')?.attrs['type'] ?? 'virtio',
        ...(child(card, 'source') ? { source: child(card, 'source')!.attrs } : {}),
        ...(card.attrs['type'] ? { type: card.attrs['type'] } : {}),
      },
      names,
    );
    await virshDevice(ctx, vm, 'update-device', xml);
  } else if (network.mode !== 'none') {
    const windows =
      readDomainFacts(await ctx.withDomain(vm, 'setNetwork', (d) => d.getXMLDesc(2), true)).osFamily === 'windows';
    const xml = liveInterfaceXml(network, { ...(mac ? { mac } : {}), model: windows ? 'e1000e' : 'virtio' }, names);
    await virshDevice(ctx, vm, 'attach-device', xml);
  }
  const meta = findMeta(live);
  if (meta) {
    const content = withNetworkMetadata(meta, network, network.macAddress);
    try {
      await ctx.virsh.run([
        'metadata',
        '--domain',
        vm,
        '--uri',
        TANDEM_XMLNS,
        '--key',
        'tandem',
        '--set',
        content,
        '--live',
        '--config',
      ]);
    } catch (err) {
      throw await ctx.toError(err, { operation: 'setNetwork', vm });
    }
  }
}

async function virshDevice(ctx: AdapterInternals, vm: string, command: string, xml: string): Promise<void> {
  const run = (): Promise<string> =>
    withTempFile(xml, (file) => ctx.virsh.run([command, '--domain', vm, '--file', file, '--live', '--config']));
  try {
    await run();
  } catch (err) {
    // The `default` network of a fresh install is inactive until someone starts it.
    if ((await startNetworkIfInactive(ctx, err)) === null)
      throw await ctx.toError(err, { operation: 'setNetwork', vm });
    try {
      await run();
    } catch (e) {
      throw await ctx.toError(e, { operation: 'setNetwork', vm });
    }
  }
}

function findMeta(root: XmlElement): XmlElement | undefined {
  return child(root, 'metadata')?.children.find(
    (c) => c.name.endsWith(':vm') && Object.values(c.attrs).includes(TANDEM_XMLNS),
  );
}
