import { InvalidInputError, TandemError, type RevertOptions, type SnapshotInfo, type SnapshotOps } from '@tandem/core';
import { readDomainFacts, type DomainDisk } from './domain-facts.js';
import { EncryptedDiskSnapshots } from './encrypted-snapshots.js';
import { withDiskSecrets } from './encryption.js';
import type { AdapterInternals } from './internals.js';
import { mapDomainState, mapSnapshotState } from './state.js';
import { virshScript } from './virsh/quote.js';
import { VirshFailure } from './virsh/runner.js';
import { child, parseXml, path } from './xml/tree.js';

const SNAPSHOT_DOC = /<domainsnapshot>[\s\S]*?<\/domainsnapshot>\n?/y;

/**
 * Snapshots through `virsh` on the adapter's URI (the binding has no snapshot calls). libvirt
 * keeps the tree, the current snapshot and internal qcow2 snapshots with memory for running
 * VMs. A snapshot's id is its name. Calls that need several virsh commands send them as one
 * virsh script, so each operation costs one process and one connection.
 */
export class LibvirtSnapshots implements SnapshotOps {
  constructor(readonly ctx: AdapterInternals) {}

  async create(vm: string, options: { name: string; description?: string }): Promise<SnapshotInfo> {
    const name = options.name;
    if (name.length === 0 || /[\n\r\0]/.test(name) || name.includes('/')) {
      throw new InvalidInputError(
        `Snapshot name ${JSON.stringify(name)} is not usable: it must be non-empty, without "/" or line breaks.`,
        { details: { vm, snapshot: name } },
      );
    }
    return this.ctx.serialize(vm, async () => {
      // One lookup for the state and the persistent definition (VIR_DOMAIN_XML_INACTIVE = 2, no
      // round trip to a running QEMU); anything but running or paused gets the full state check,
      // which tells stopped from saved and crashed and names the state when it refuses.
      const live = await this.ctx.withDomain(
        vm,
        'snapshot create',
        async (d) => ({ state: mapDomainState((await d.getInfo()).state), xml: await d.getXMLDesc(2) }),
        true,
      );
      const state =
        live.state === 'running' || live.state === 'paused'
          ? live.state
          : await this.ctx.requireState(vm, 'snapshot', ['stopped', 'running', 'paused', 'crashed']);
      const xml = live.xml;
      // libvirt cannot snapshot a LUKS qcow2 disk (seen with libvirt 9 and QEMU 7.2): stopped,
      // its qemu-img call lacks the key; running, QEMU's internal snapshot kills the QEMU process.
      // Tandem snapshots such a VM itself, stopped, as a copy of its disks' ciphertext.
      // A plain text test first: parsing the XML on every snapshot would cost more than the check.
      const encrypted = encryptedDisksOf(xml);
      if (encrypted) return new EncryptedDiskSnapshots(vm, encrypted).create(name, options.description, state);
      const create = ['snapshot-create-as', '--domain', vm, '--name', name, '--atomic'];
      if (options.description !== undefined) create.push('--description', options.description);
      const done = this.ctx.expectEvents(vm, ['Suspended', 'Resumed']);
      const script = virshScript([create, ['snapshot-dumpxml', '--domain', vm, '--snapshotname', name]]);
      try {
        const result = await this.#createScript(vm, name, script);
        if (result.errors.length > 0) throw await this.#error(result.errors, 'snapshot create', vm, name);
        const info = parseSnapshotXml(result.stdout, name);
        return { ...info, current: true };
      } finally {
        done();
      }
    });
  }

  async list(vm: string): Promise<SnapshotInfo[]> {
    return this.ctx.serialize(vm, async () => {
      const own = await this.#encrypted(vm, 'snapshot list');
      const libvirt = await this.#list(vm);
      if (!own) return libvirt;
      const mine = await own.list();
      // One current snapshot at most: Tandem's own, for a VM whose disks are encrypted.
      const anyCurrent = mine.some((s) => s.current);
      return [...libvirt.map((s) => (anyCurrent ? { ...s, current: false } : s)), ...mine];
    });
  }

  async revert(vm: string, snapshot: string, options: RevertOptions = {}): Promise<void> {
    return this.ctx.serialize(vm, async () => {
      const state = await this.ctx.stateOf(vm);
      const own = await this.#encrypted(vm, 'snapshot revert');
      if (own && (await own.list()).some((s) => s.id === snapshot || s.name === snapshot)) {
        return own.revert(snapshot, state);
      }
      const done = this.ctx.expectEvents(vm, ['Started', 'Stopped', 'Suspended', 'Resumed', 'Shutdown']);
      const revert = (): Promise<string> =>
        this.#run(['snapshot-revert', '--domain', vm, '--snapshotname', snapshot], 'snapshot revert', vm, snapshot);
      try {
        if (options.diskKeys) {
          // Reverting to a snapshot of a running VM starts QEMU, which opens encrypted disks.
          const xml = await this.ctx.withDomain(vm, 'snapshot revert', (d) => d.getXMLDesc(0), true);
          await withDiskSecrets(this.ctx, vm, readDomainFacts(xml).disks, options.diskKeys, revert);
        } else {
          await revert();
        }
      } finally {
        done();
      }
    });
  }

  async delete(vm: string, snapshot: string, options: { children?: boolean } = {}): Promise<void> {
    return this.ctx.serialize(vm, async () => {
      await this.ctx.stateOf(vm);
      const own = await this.#encrypted(vm, 'snapshot delete');
      if (own && (await own.list()).some((s) => s.id === snapshot || s.name === snapshot)) {
        return own.delete(snapshot, options.children ?? false);
      }
      const args = ['snapshot-delete', '--domain', vm, '--snapshotname', snapshot];
      if (options.children) args.push('--children');
      await this.#run(args, 'snapshot delete', vm, snapshot);
    });
  }

  /** Tandem's own snapshots of the VM's encrypted disks, when it has any encrypted disk. */
  async #encrypted(vm: string, operation: string): Promise<EncryptedDiskSnapshots | undefined> {
    // VIR_DOMAIN_XML_INACTIVE (2): the disks the next start uses.
    const xml = await this.ctx.withDomain(vm, operation, (d) => d.getXMLDesc(2), true);
    const disks = encryptedDisksOf(xml);
    return disks ? new EncryptedDiskSnapshots(vm, disks) : undefined;
  }

  /**
   * Runs the create script. virsh itself sometimes crashes over qemu+libssh:// (libvirt 9.0):
   * then the snapshot may or may not exist, so take it if it does, or run the script again (at
   * most four attempts in all). A re-run that finds the snapshot already there after a crash
   * means the crashed run made it.
   */
  async #createScript(
    vm: string,
    name: string,
    script: string,
  ): Promise<{ stdout: string; errors: readonly string[] }> {
    let crashed = false;
    for (let attempt = 1; ; attempt++) {
      try {
        const result = await this.ctx.virsh.script(script);
        if (crashed && result.errors.length > 0 && result.errors.every((e) => /already exists/.test(e))) {
          const xml = await this.#readAfterCrash(vm, name);
          if (xml !== null) return { stdout: xml, errors: [] };
        }
        return result;
      } catch (err) {
        if (!isVirshCrash(err) || attempt >= 4) throw err;
        crashed = true;
        const xml = await this.#readAfterCrash(vm, name);
        if (xml !== null) return { stdout: xml, errors: [] };
      }
    }
  }

  /** The snapshot's XML, or null when it does not exist; virsh crashes are tried again. */
  async #readAfterCrash(vm: string, name: string): Promise<string | null> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.ctx.virsh.run(['snapshot-dumpxml', '--domain', vm, '--snapshotname', name]);
      } catch (err) {
        if (!isVirshCrash(err) || attempt >= 4) return null;
      }
    }
  }

  async #list(vm: string): Promise<SnapshotInfo[]> {
    await this.ctx.stateOf(vm);
    const names = (await this.#run(['snapshot-list', '--domain', vm, '--name'], 'snapshot list', vm))
      .split('\n')
      .filter((n) => n !== '');
    if (names.length === 0) return [];
    const commands = names.map((n) => ['snapshot-dumpxml', '--domain', vm, '--snapshotname', n]);
    commands.push(['snapshot-current', '--domain', vm, '--name']);
    const result = await this.ctx.virsh.script(virshScript(commands));
    // "has no current snapshot" is an answer, not a failure.
    const errors = result.errors.filter((e) => !/has no current snapshot/.test(e));
    if (errors.length > 0) throw await this.#error(errors, 'snapshot list', vm);
    const out: SnapshotInfo[] = [];
    SNAPSHOT_DOC.lastIndex = 0;
    for (const name of names) {
      const m = SNAPSHOT_DOC.exec(result.stdout);
      if (!m) throw await this.#error([`unexpected output from snapshot-dumpxml for "${name}"`], 'snapshot list', vm);
      out.push(parseSnapshotXml(m[0], name));
    }
    const rest = result.stdout.slice(SNAPSHOT_DOC.lastIndex);
    const current = rest.endsWith('\n') ? rest.slice(0, -1) : rest;
    return out.map((s) => ({ ...s, current: s.id === current }));
  }

  async #run(args: string[], operation: string, vm: string, snapshot?: string): Promise<string> {
    try {
      return await this.ctx.virsh.run(args);
    } catch (err) {
      throw err instanceof VirshFailure
        ? await this.#error(err.errors, operation, vm, snapshot, err)
        : await this.ctx.toError(err, { operation, vm });
    }
  }

  async #error(
    errors: readonly string[],
    operation: string,
    vm: string,
    snapshot?: string,
    cause?: unknown,
  ): Promise<Error> {
    const failure = cause ?? new VirshFailure(errors, operation, undefined, '');
    return this.ctx.toError(failure, { operation, vm, ...(snapshot !== undefined ? { snapshot } : {}) });
  }
}

/** Reads `virsh snapshot-dumpxml` output. `fallbackName` is used when the XML has none. */
export function parseSnapshotXml(xml: string, fallbackName: string): SnapshotInfo {
  const root = parseXml(xml);
  const name = child(root, 'name')?.text ?? fallbackName;
  const parent = path(root, 'parent', 'name')?.text;
  const created = Number(child(root, 'creationTime')?.text.trim());
  const description = child(root, 'description')?.text;
  return {
    id: name,
    name,
    ...(description !== undefined ? { description } : {}),
    createdAt: new Date(Number.isFinite(created) ? created * 1000 : 0).toISOString(),
    parentId: parent ?? null,
    current: false,
    vmState: mapSnapshotState(child(root, 'state')?.text.trim()),
  };
}

/** The definition's disks when one of them is LUKS-encrypted; undefined otherwise. */
function encryptedDisksOf(xml: string): readonly DomainDisk[] | undefined {
  if (!/<encryption[\s>]/.test(xml)) return undefined;
  const disks = readDomainFacts(xml).disks;
  return disks.some((d) => d.encryption?.usage !== undefined) ? disks : undefined;
}

/** virsh died of a signal (see the runner): what it did is unknown. */
function isVirshCrash(err: unknown): boolean {
  return TandemError.is(err, 'TANDEM_HOST') && err.details['signal'] !== undefined;
}
