import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import {
  InvalidInputError,
  UnsupportedCapabilityError,
  type EncryptedOverlayInfo,
  type EncryptedOverlayOps,
} from '@tandem/core';
import { readDomainFacts, type DomainDisk } from './domain-facts.js';
import { TANDEM_XMLNS } from './domain-xml.js';
import { createEncryptedOverlay, runQemuImg } from './encryption.js';
import { withTempFile } from './handover.js';
import type { AdapterInternals } from './internals.js';
import { escapeXml } from './xml/tree.js';

/**
 * Encrypted per-session overlays on libvirt. libvirt cannot snapshot a LUKS qcow2 disk, so a
 * session that must be undone (a revertible workspace) or kept (`onSessionEnd: snapshot`) writes
 * into a new LUKS qcow2 beside the encrypted base, backed by it and encrypted under the same key:
 * the VM's disk becomes the overlay, with the base as its read-only `<backingStore>`. Both refer
 * to one secret (usage: the base's path), so the start hands over one private, ephemeral secret
 * as before. qemu-img gets the key through a named pipe, never argv or a file. The overlay is
 * recorded in Tandem's metadata (`<tandem:disk path=overlay overlayOf=base/>`), so the VM still
 * reports the base as its disk and an update compares the right image.
 */
export class LibvirtEncryptedOverlays implements EncryptedOverlayOps {
  constructor(readonly ctx: AdapterInternals) {}

  async list(vm: string): Promise<EncryptedOverlayInfo[]> {
    return this.ctx.serialize(vm, async () => overlaysOf(readDomainFacts(await this.#inactiveXml(vm, 'overlay list'))));
  }

  async create(vm: string, keys: ReadonlyMap<string, Uint8Array>): Promise<EncryptedOverlayInfo[]> {
    return this.ctx.serialize(vm, async () => {
      if (this.ctx.uri.remote) {
        throw new UnsupportedCapabilityError(
          `Encrypted overlays are made with qemu-img on this machine, and ${this.ctx.uri.uri} is a remote libvirt host: use a persistent workspace there, or run Tandem on that host.`,
          { details: { vm, uri: this.ctx.uri.uri } },
        );
      }
      await this.ctx.requireState(vm, 'create an encrypted overlay', ['stopped', 'crashed']);
      let xml = await this.#inactiveXml(vm, 'overlay create');
      const facts = readDomainFacts(xml);
      const qemuImg = this.ctx.options.qemuImg ?? 'qemu-img';
      const made: string[] = [];
      try {
        for (const disk of facts.disks) {
          if (disk.encryption?.usage === undefined || disk.overlayOf !== undefined) continue;
          const keyId = disk.encryption.keyId;
          const key = keyId !== undefined ? keys.get(keyId) : undefined;
          if (!key) {
            throw new InvalidInputError(
              `VM "${vm}" has an encrypted disk (${disk.path}) and no key was given for its overlay: pass diskKeys with "${keyId ?? '(no key id recorded)'}".`,
              { details: { vm, disk: disk.path, keyId: keyId ?? null, expected: 'diskKeys entry' } },
            );
          }
          const info = JSON.parse(await runQemuImg(qemuImg, ['info', '--output=json', disk.path])) as {
            'virtual-size': number;
          };
          const overlay = `${disk.path}.tandem-overlay-${randomUUID().slice(0, 8)}.qcow2`;
          await createEncryptedOverlay(
            qemuImg,
            overlay,
            disk.path,
            info['virtual-size'],
            key,
            this.ctx.options.luksIterTimeMs,
          );
          made.push(overlay);
          xml = putOverlay(xml, disk, overlay, keyId!);
        }
        if (made.length > 0) await this.#define(vm, xml, 'overlay create');
      } catch (err) {
        for (const f of made) await rm(f, { force: true });
        throw err;
      }
      return overlaysOf(readDomainFacts(xml));
    });
  }

  async discard(vm: string): Promise<EncryptedOverlayInfo[]> {
    return this.ctx.serialize(vm, async () => {
      await this.ctx.requireState(vm, 'discard the encrypted overlay of', ['stopped', 'crashed']);
      let xml = await this.#inactiveXml(vm, 'overlay discard');
      const on = overlaysOf(readDomainFacts(xml));
      if (on.length === 0) return [];
      for (const o of on) xml = takeOverlay(xml, o);
      await this.#define(vm, xml, 'overlay discard');
      for (const o of on) await rm(o.overlay, { force: true });
      return on;
    });
  }

  #inactiveXml(vm: string, operation: string): Promise<string> {
    // VIR_DOMAIN_XML_INACTIVE (2): the definition the next start uses.
    return this.ctx.withDomain(vm, operation, (d) => d.getXMLDesc(2), true);
  }

  async #define(vm: string, xml: string, operation: string): Promise<void> {
    try {
      await withTempFile(xml, (file) => this.ctx.virsh.run(['define', '--file', file]));
    } catch (err) {
      throw await this.ctx.toError(err, { operation, vm });
    }
  }
}

function overlaysOf(facts: ReturnType<typeof readDomainFacts>): EncryptedOverlayInfo[] {
  return facts.disks.flatMap((d) => (d.overlayOf !== undefined ? [{ base: d.overlayOf, overlay: d.path }] : []));
}

const DISK_BLOCK = /<disk\b[^>]*>[\s\S]*?<\/disk>/g;

/** The domain XML with `disk` written through `overlay`, its base the read-only backing store. */
function putOverlay(xml: string, disk: DomainDisk, overlay: string, keyId: string): string {
  const e = escapeXml;
  const source = `<source file='${e(disk.path)}'>`;
  const usage = e(disk.encryption?.usage ?? disk.path);
  const backing =
    `<backingStore type='file'><format type='qcow2'/><source file='${e(disk.path)}'>` +
    `<encryption format='luks'><secret type='passphrase' usage='${usage}'/></encryption></source><backingStore/></backingStore>`;
  let found = false;
  const out = xml.replace(DISK_BLOCK, (block) => {
    if (found || !block.includes(source)) return block;
    found = true;
    const start = block.indexOf(source);
    const end = block.indexOf('</source>', start) + '</source>'.length;
    const rest = block.slice(end).replace(/^\s*<backingStore\/>/, '');
    return `${block.slice(0, start)}<source file='${e(overlay)}'>${block.slice(start + source.length, end)}${backing}${rest}`;
  });
  if (!found) {
    throw new InvalidInputError(`The definition of the VM has no disk ${disk.path} to put an overlay on.`, {
      details: { disk: disk.path },
    });
  }
  return withMetadata(out, `<tandem:disk path='${e(overlay)}' keyId='${e(keyId)}' overlayOf='${e(disk.path)}'/>`);
}

/** The domain XML with the overlay taken off: the disk is its base again. */
function takeOverlay(xml: string, o: EncryptedOverlayInfo): string {
  const e = escapeXml;
  const source = `<source file='${e(o.overlay)}'>`;
  const out = xml.replace(DISK_BLOCK, (block) =>
    block.includes(source)
      ? block
          .replace(source, `<source file='${e(o.base)}'>`)
          .replace(/\s*<backingStore type='file'>[\s\S]*?<backingStore\/>\s*<\/backingStore>/, '')
      : block,
  );
  // libvirt prints its metadata with double quotes; drop every entry naming this overlay.
  return out.replace(
    new RegExp(`\\s*<[\\w-]+:disk\\b[^>]*\\bpath=["']${escapeRegExp(e(o.overlay))}["'][^>]*/>`, 'g'),
    '',
  );
}

function withMetadata(xml: string, entry: string): string {
  const close = /<\/([\w-]+):vm>/.exec(xml);
  if (close && xml.includes(TANDEM_XMLNS)) {
    const prefix = close[1]!;
    return `${xml.slice(0, close.index)}${entry.replace('<tandem:', `<${prefix}:`)}${xml.slice(close.index)}`;
  }
  throw new InvalidInputError('This VM was not defined by Tandem (no Tandem metadata): it cannot have an overlay.');
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
