import type { SnapshotInfo } from './types.js';

/** A snapshot with its children, as {@link buildSnapshotTree} nests them. */
export interface SnapshotNode extends SnapshotInfo {
  readonly children: SnapshotNode[];
}

/**
 * Nests a flat snapshot list into trees (roots first, children by creation time).
 * A snapshot whose parent is missing from the list becomes a root.
 */
export function buildSnapshotTree(snapshots: readonly SnapshotInfo[]): SnapshotNode[] {
  const nodes = new Map<string, SnapshotNode>();
  for (const s of snapshots) nodes.set(s.id, { ...s, children: [] });
  const roots: SnapshotNode[] = [];
  for (const node of nodes.values()) {
    const parent = node.parentId === null ? undefined : nodes.get(node.parentId);
    if (parent) parent.children.push(node);
    else roots.push(node);
  }
  const byTime = (a: SnapshotNode, b: SnapshotNode): number =>
    a.createdAt.localeCompare(b.createdAt) || a.name.localeCompare(b.name);
  const sort = (list: SnapshotNode[]): void => {
    list.sort(byTime);
    for (const n of list) sort(n.children);
  };
  sort(roots);
  return roots;
}

/** Renders snapshot trees as indented text lines, marking the current one. */
export function formatSnapshotTree(roots: readonly SnapshotNode[]): string[] {
  const lines: string[] = [];
  const walk = (node: SnapshotNode, prefix: string, last: boolean, top: boolean): void => {
    const branch = top ? '' : last ? '└─ ' : '├─ ';
    const mark = node.current ? ' (current)' : '';
    lines.push(`${prefix}${branch}${node.name}  [${node.vmState}, ${node.createdAt}]${mark}`);
    const childPrefix = top ? '' : prefix + (last ? '   ' : '│  ');
    node.children.forEach((c, i) => walk(c, childPrefix, i === node.children.length - 1, false));
  };
  roots.forEach((r, i) => walk(r, '', i === roots.length - 1, true));
  return lines;
}
