import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DiskFormat, DiskSpec, VmInfo, VmSpec } from '@tandem/core';
import type { DomainDisk, DomainFacts } from './domain-facts.js';
import type { AdapterInternals } from './internals.js';
import { virshScript } from './virsh/quote.js';
import { VirshFailure } from './virsh/runner.js';
import { child, parseXml, path } from './xml/tree.js';

const FORMATS: readonly string[] = ['qcow2', 'raw', 'vdi', 'vhdx', 'vmdk'] satisfies DiskFormat[];

/** What the core compares for updates, read back from a domain definition. */
export function definedView(facts: DomainFacts): Pick<VmInfo, 'disks' | 'network' | 'labels' | 'boot'> {
  const disks: DiskSpec[] = facts.disks.map((d) => ({
    // A session overlay is how the VM writes its image, not another image.
    path: d.overlayOf ?? d.path,
    format: (FORMATS.includes(d.format ?? '') ? d.format : 'raw') as DiskFormat,
    ...(d.encryption?.keyId ? { encryption: { keyId: d.encryption.keyId } } : {}),
  }));
  return {
    disks,
    labels: facts.labels,
    boot: facts.boot ?? null,
    ...(facts.network ? { network: facts.network } : {}),
  };
}

/**
 * True when the new spec keeps every disk (same images, same formats, same order): internal
 * qcow2 snapshots live inside the images, so only then do the snapshots still fit the VM.
 */
export function disksStay(defined: readonly DomainDisk[], spec: VmSpec): boolean {
  return (
    defined.length === spec.disks.length &&
    defined.every((d, i) => d.path === spec.disks[i]!.path && d.format === spec.disks[i]!.format)
  );
}

/** Gives a generated definition the existing domain's UUID, so libvirt replaces it in place. */
export function withUuid(xml: string, uuid: string): string {
  return xml.replace(/<\/name>\n/, `</name>\n  <uuid>${uuid}</uuid>\n`);
}

interface StoredSnapshot {
  readonly name: string;
  readonly parent: string | null;
  readonly state: string;
  readonly xml: string;
}

/**
 * After the definition was replaced with the disks kept: each snapshot taken of a stopped VM
 * gets the new definition, so reverting to it restores the disks' contents and keeps the new
 * memory, CPUs and network (libvirt's revert otherwise brings back the definition saved with
 * the snapshot). A snapshot of a running or paused VM keeps its own: its memory image needs the
 * hardware it was taken on.
 *
 * libvirt cannot change a snapshot's saved definition in place (its ABI check refuses other
 * memory or CPUs), so the metadata is removed and defined again (`snapshot-create --redefine`),
 * leaves first and parents first, which keeps the tree and the current snapshot; the snapshots'
 * data in the images is not touched.
 */
export async function carrySnapshots(ctx: AdapterInternals, vm: string): Promise<void> {
  const snapshots = await readSnapshots(ctx, vm);
  if (!snapshots.list.some((s) => s.state === 'shutoff')) return;
  const domain = await ctx.virsh.run(['dumpxml', '--domain', vm, '--inactive', '--security-info']);
  const dir = await mkdtemp(join(tmpdir(), 'tandem-redefine-'));
  try {
    const parentsFirst = order(snapshots.list);
    const files = new Map<string, { updated: string; original: string }>();
    for (const [i, s] of parentsFirst.entries()) {
      const updated = join(dir, `${i}.xml`);
      const original = join(dir, `${i}.orig.xml`);
      const replaced = s.state === 'shutoff' ? s.xml.replace(/<domain[\s>][\s\S]*<\/domain>\n?/, () => domain) : s.xml;
      await writeFile(updated, replaced, { mode: 0o600 });
      await writeFile(original, s.xml, { mode: 0o600 });
      files.set(s.name, { updated, original });
    }
    const create = (s: StoredSnapshot, file: 'updated' | 'original'): string[] => {
      const args = ['snapshot-create', '--domain', vm, '--xmlfile', files.get(s.name)![file], '--redefine'];
      if (s.name === snapshots.current) args.push('--current');
      return args;
    };
    const leavesFirst = [...parentsFirst].reverse();
    const result = await ctx.virsh.script(
      virshScript([
        ...leavesFirst.map((s) => ['snapshot-delete', '--domain', vm, '--snapshotname', s.name, '--metadata']),
        ...parentsFirst.map((s) => create(s, 'updated')),
      ]),
    );
    if (result.errors.length === 0) return;
    // Put back whatever is missing as it was, so no snapshot is lost over a refused definition.
    const left = new Set((await readSnapshots(ctx, vm)).list.map((s) => s.name));
    const missing = parentsFirst.filter((s) => !left.has(s.name));
    if (missing.length > 0) await ctx.virsh.script(virshScript(missing.map((s) => create(s, 'original'))));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Removes every snapshot once the disks were replaced: they refer to images the VM no longer
 * uses. Each is deleted with its data in the old image where that image is still there, else
 * only its metadata.
 */
export async function dropSnapshots(ctx: AdapterInternals, vm: string): Promise<void> {
  const { list } = await readSnapshots(ctx, vm);
  const roots = list.filter((s) => s.parent === null);
  if (roots.length === 0) return;
  const del = (s: StoredSnapshot, metadata: boolean): string[] => [
    'snapshot-delete',
    '--domain',
    vm,
    '--snapshotname',
    s.name,
    '--children',
    ...(metadata ? ['--metadata'] : []),
  ];
  const result = await ctx.virsh.script(virshScript(roots.map((s) => del(s, false))));
  if (result.errors.length === 0) return;
  const left = (await readSnapshots(ctx, vm)).list.filter((s) => s.parent === null);
  const rest = await ctx.virsh.script(virshScript(left.map((s) => del(s, true))));
  if (rest.errors.length > 0) {
    throw await ctx.toError(new VirshFailure(rest.errors, 'snapshot-delete', undefined, ''), {
      operation: 'redefine',
      vm,
    });
  }
}

const SNAPSHOT_DOC = /<domainsnapshot>[\s\S]*?<\/domainsnapshot>\n?/y;

async function readSnapshots(
  ctx: AdapterInternals,
  vm: string,
): Promise<{ list: StoredSnapshot[]; current: string | null }> {
  const names = (await ctx.virsh.run(['snapshot-list', '--domain', vm, '--name'])).split('\n').filter((n) => n !== '');
  if (names.length === 0) return { list: [], current: null };
  const commands = names.map((n) => ['snapshot-dumpxml', '--domain', vm, '--snapshotname', n, '--security-info']);
  commands.push(['snapshot-current', '--domain', vm, '--name']);
  const result = await ctx.virsh.script(virshScript(commands));
  const errors = result.errors.filter((e) => !/has no current snapshot/.test(e));
  if (errors.length > 0) {
    throw await ctx.toError(new VirshFailure(errors, 'snapshot-dumpxml', undefined, ''), { operation: 'redefine', vm });
  }
  SNAPSHOT_DOC.lastIndex = 0;
  const list = names.map((name): StoredSnapshot => {
    const m = SNAPSHOT_DOC.exec(result.stdout);
    if (!m) throw new Error(`unexpected output from snapshot-dumpxml for "${name}"`);
    const root = parseXml(m[0]);
    return {
      name,
      parent: path(root, 'parent', 'name')?.text ?? null,
      state: child(root, 'state')?.text.trim() ?? '',
      xml: m[0],
    };
  });
  const rest = result.stdout.slice(SNAPSHOT_DOC.lastIndex).trim();
  return { list, current: rest === '' ? null : rest };
}

/** Parents before their children. */
function order(list: readonly StoredSnapshot[]): StoredSnapshot[] {
  const out: StoredSnapshot[] = [];
  const visit = (parent: string | null): void => {
    for (const s of list.filter((x) => x.parent === parent)) {
      out.push(s);
      visit(s.name);
    }
  };
  visit(null);
  // A parent that is not in the list (never expected) must not lose its children.
  for (const s of list) if (!out.includes(s)) out.push(s);
  return out;
}
