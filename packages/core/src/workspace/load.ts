import { readFile } from 'node:fs/promises';
import { dirname, extname, resolve } from 'node:path';
import { LineCounter, parseDocument, isNode } from 'yaml';
import type { z } from 'zod';
import { InvalidInputError, NotFoundError } from '../errors.js';
import { WorkspaceSchema, type Workspace } from './schema.js';

/** One problem found in a workspace file. */
export interface WorkspaceIssue {
  /** Path inside the file, such as `spec.hardware.memory.minMiB`. */
  readonly path: string;
  /** What was expected. */
  readonly message: string;
  /** 1-based line and column, when known. */
  readonly line?: number;
  readonly column?: number;
}

/** A loaded workspace and where it came from. */
export interface LoadedWorkspace {
  readonly workspace: Workspace;
  /** Absolute path of the file, or `<inline>`. */
  readonly file: string;
  /** Directory relative paths in the file resolve against. */
  readonly baseDir: string;
}

/**
 * Reads and validates a workspace file (YAML or JSON). Throws InvalidInputError naming the
 * file, every bad path inside it with line and column, and what was expected.
 *
 * @example
 * ```ts
 * const { workspace } = await loadWorkspaceFile('tandem.workspace.yaml');
 * console.log(workspace.metadata.name);
 * ```
 */
export async function loadWorkspaceFile(path: string): Promise<LoadedWorkspace> {
  const file = resolve(path);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT')
      throw new NotFoundError(`Workspace file ${file} does not exist.`, { cause: err, details: { file } });
    throw new InvalidInputError(`Cannot read workspace file ${file}: ${(err as Error).message}`, {
      cause: err,
      details: { file },
    });
  }
  return {
    workspace: parseWorkspace(text, { file, json: extname(file).toLowerCase() === '.json' }),
    file,
    baseDir: dirname(file),
  };
}

/** Validates workspace text (YAML or JSON). `file` is only used in messages. */
export function parseWorkspace(text: string, options: { file?: string; json?: boolean } = {}): Workspace {
  const file = options.file ?? '<inline>';
  const lineCounter = new LineCounter();
  // YAML 1.2 is a superset of JSON, so one parser serves both and gives positions for both.
  const doc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const issues: WorkspaceIssue[] = doc.errors.map((e) => {
      const pos = e.linePos?.[0];
      return {
        path: '',
        message: e.message.split('\n')[0] ?? e.message,
        ...(pos ? { line: pos.line, column: pos.col } : {}),
      };
    });
    throw workspaceError(file, issues, options.json ? 'JSON' : 'YAML');
  }
  const data: unknown = doc.toJS();
  return validateWorkspace(data, { file, locate: (path) => locate(doc, lineCounter, path) });
}

/** Validates an already parsed object as a workspace. */
export function validateWorkspace(
  data: unknown,
  options: {
    file?: string;
    locate?: (path: readonly PropertyKey[]) => { line: number; column: number } | undefined;
  } = {},
): Workspace {
  const file = options.file ?? '<inline>';
  const result = WorkspaceSchema.safeParse(data);
  if (result.success) return result.data;
  const issues = result.error.issues.map((issue) => toIssue(issue, options.locate));
  throw workspaceError(file, issues);
}

function toIssue(
  issue: z.core.$ZodIssue,
  locateFn?: (path: readonly PropertyKey[]) => { line: number; column: number } | undefined,
): WorkspaceIssue {
  let path = [...issue.path];
  let message = issue.message;
  if (issue.code === 'unrecognized_keys') {
    path = [...path, issue.keys[0] ?? ''];
    message = `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')} (check the spelling)`;
  } else if (issue.code === 'invalid_union') {
    message = unionMessage(issue);
  } else if (issue.code === 'invalid_value' && issue.values.length > 0) {
    message = `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
  } else if (issue.code === 'invalid_type') {
    message = issue.message.replace(/^Invalid input: /, '');
  }
  const pos = locateFn?.(path) ?? locateFn?.(path.slice(0, -1));
  return { path: formatPath(path), message, ...(pos ? { line: pos.line, column: pos.column } : {}) };
}

function unionMessage(issue: z.core.$ZodIssueInvalidUnion): string {
  // The most helpful branch is the one that got furthest: report its first problem.
  const branches = issue.errors.filter((b) => b.length > 0);
  const keysOfBranches = branches
    .map((b) => b.find((i) => i.code === 'unrecognized_keys'))
    .filter((i) => i !== undefined);
  const deep = branches
    .map((b) => b.filter((i) => i.code !== 'unrecognized_keys'))
    .find((b) => b.length > 0 && b.every((i) => i.code !== 'invalid_type' || i.path.length > 0));
  if (deep && deep[0]) return `${formatPath(deep[0].path) ? formatPath(deep[0].path) + ': ' : ''}${deep[0].message}`;
  if (keysOfBranches.length === branches.length && branches.length > 0)
    return issue.message === 'Invalid input'
      ? 'expected exactly one of the documented forms (see the workspace reference)'
      : issue.message;
  return issue.message === 'Invalid input'
    ? 'expected one of the documented forms (see the workspace reference)'
    : issue.message;
}

/** `spec.publishedApps[0].id` */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out ? `.${String(p)}` : String(p);
  }
  return out;
}

function workspaceError(file: string, issues: WorkspaceIssue[], syntax?: string): InvalidInputError {
  const lines = issues.map((i) => {
    const at = i.line !== undefined ? `${file}:${i.line}:${i.column ?? 1}` : file;
    return `${at}: ${i.path ? `${i.path}: ` : ''}${i.message}`;
  });
  const head = syntax ? `${file} is not valid ${syntax}` : `${file} is not a valid workspace`;
  return new InvalidInputError(`${head}:\n  ${lines.join('\n  ')}`, { details: { file, issues } });
}

function locate(
  doc: ReturnType<typeof parseDocument>,
  lineCounter: LineCounter,
  path: readonly PropertyKey[],
): { line: number; column: number } | undefined {
  if (path.length === 0) return undefined;
  const node: unknown = doc.getIn(path as unknown[], true);
  if (!isNode(node) || !node.range) return undefined;
  const pos = lineCounter.linePos(node.range[0]);
  return { line: pos.line, column: pos.col };
}
