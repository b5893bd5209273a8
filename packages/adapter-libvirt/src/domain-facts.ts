import type { VmSpec } from '@tandem/core';
import { AGENT_CHANNEL, TANDEM_XMLNS } from './domain-xml.js';
import { child, children, parseXml, path, type XmlElement } from './xml/tree.js';

/** One disk as the domain definition describes it. */
export interface DomainDisk {
  readonly path: string;
  readonly format?: string;
  /** LUKS encryption: the secret is looked up by `usage` (Tandem uses the disk's path). */
  readonly encryption?: { readonly usage?: string; readonly uuid?: string; readonly keyId?: string };
  /** Set when `path` is an encrypted session overlay Tandem put on this image (see encrypted-overlays.ts). */
  readonly overlayOf?: string;
}

/** What Tandem reads back from a domain definition. */
export interface DomainFacts {
  readonly name: string;
  readonly uuid?: string;
  readonly osFamily: VmSpec['osFamily'];
  readonly disks: readonly DomainDisk[];
  /** Host path of the guest-agent socket (live XML of a running VM only). */
  readonly agentSocket?: string;
  /** True when the definition has the guest-agent channel. */
  readonly hasAgentChannel: boolean;
  readonly macAddresses: readonly string[];
  readonly labels: Readonly<Record<string, string>>;
  /**
   * The network attachment Tandem defined (from its metadata; absent in a foreign definition).
   * The MAC address is there only when the spec named one, not when libvirt generated it.
   */
  readonly network?: VmSpec['network'];
  /** Direct kernel boot (`<os><kernel/>`), when the definition has it. */
  readonly boot?: NonNullable<VmSpec['boot']>;
}

/** Reads the facts Tandem needs from libvirt domain XML (its own definitions and foreign ones). */
export function readDomainFacts(xml: string): DomainFacts {
  const root = parseXml(xml);
  const devices = child(root, 'devices');
  const meta = findTandemMeta(child(root, 'metadata'));
  const keyIds = new Map(children(meta, 'tandem:disk').map((d) => [d.attrs['path'] ?? '', d.attrs['keyId'] ?? '']));
  const overlayOf = new Map(
    children(meta, 'tandem:disk')
      .filter((d) => d.attrs['overlayOf'] !== undefined)
      .map((d) => [d.attrs['path'] ?? '', d.attrs['overlayOf'] ?? '']),
  );
  const disks: DomainDisk[] = children(devices, 'disk')
    .filter((d) => (d.attrs['device'] ?? 'disk') === 'disk')
    .map((d) => {
      const source = child(d, 'source');
      const file = source?.attrs['file'] ?? source?.attrs['dev'] ?? '';
      const enc = child(source, 'encryption') ?? child(d, 'encryption');
      const secret = child(enc, 'secret');
      return {
        path: file,
        ...(child(d, 'driver')?.attrs['type'] ? { format: child(d, 'driver')?.attrs['type'] } : {}),
        ...(enc
          ? {
              encryption: {
                ...(secret?.attrs['usage'] ? { usage: secret.attrs['usage'] } : {}),
                ...(secret?.attrs['uuid'] ? { uuid: secret.attrs['uuid'] } : {}),
                ...(keyIds.get(file) ? { keyId: keyIds.get(file) } : {}),
              },
            }
          : {}),
        ...(overlayOf.get(file) ? { overlayOf: overlayOf.get(file) } : {}),
      };
    });
  const agent = children(devices, 'channel').find((c) => child(c, 'target')?.attrs['name'] === AGENT_CHANNEL);
  const agentSocket = child(agent, 'source')?.attrs['path'];
  const os = meta?.attrs['osFamily'];
  // fromEntries makes every key an own property, `__proto__` included (an assignment would not).
  const labels: Record<string, string> = Object.fromEntries(
    children(meta, 'tandem:label').map((l) => [l.attrs['key'] ?? '', l.attrs['value'] ?? '']),
  );
  const uuid = child(root, 'uuid')?.text.trim();
  const mode = meta?.attrs['network'];
  const bridge = children(devices, 'interface')
    .map((i) => (i.attrs['type'] === 'bridge' ? child(i, 'source')?.attrs['bridge'] : undefined))
    .find((b) => b !== undefined);
  const network: VmSpec['network'] | undefined =
    mode === 'nat' || mode === 'bridged' || mode === 'host-only' || mode === 'none'
      ? {
          mode,
          ...(mode === 'bridged' && bridge ? { bridge } : {}),
          ...(meta?.attrs['mac'] ? { macAddress: meta.attrs['mac'] } : {}),
        }
      : undefined;
  const osEl = child(root, 'os');
  const kernel = child(osEl, 'kernel')?.text;
  const initrd = child(osEl, 'initrd')?.text;
  const cmdline = child(osEl, 'cmdline')?.text;
  const boot = kernel ? { kernel, ...(initrd ? { initrd } : {}), ...(cmdline ? { cmdline } : {}) } : undefined;
  return {
    name: child(root, 'name')?.text ?? '',
    ...(uuid ? { uuid } : {}),
    osFamily: os === 'windows' || os === 'linux' ? os : 'other',
    disks,
    ...(agentSocket ? { agentSocket } : {}),
    hasAgentChannel: agent !== undefined,
    macAddresses: children(devices, 'interface')
      .map((i) => path(i, 'mac')?.attrs['address'])
      .filter((m): m is string => typeof m === 'string'),
    labels,
    ...(network ? { network } : {}),
    ...(boot ? { boot } : {}),
  };
}

function findTandemMeta(metadata: XmlElement | undefined): XmlElement | undefined {
  // libvirt keeps the prefix it was given; match on the namespace, whatever the prefix.
  const el = metadata?.children.find((c) =>
    Object.entries(c.attrs).some(([k, v]) => k.startsWith('xmlns') && v === TANDEM_XMLNS),
  );
  if (!el) return undefined;
  const prefix = el.name.includes(':') ? el.name.slice(0, el.name.indexOf(':') + 1) : '';
  // Normalize the prefix to `tandem:` so lookups above do not depend on it.
  const rename = (e: XmlElement): XmlElement => ({
    ...e,
    name: prefix && e.name.startsWith(prefix) ? `tandem:${e.name.slice(prefix.length)}` : e.name,
    children: e.children.map(rename),
  });
  return rename(el);
}
