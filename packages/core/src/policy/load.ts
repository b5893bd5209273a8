import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { LineCounter, isNode, parseDocument } from 'yaml';
import type { z } from 'zod';
import type { Clock } from '../clock.js';
import { InvalidInputError, NotFoundError } from '../errors.js';
import { formatPath, loadWorkspaceFile, type LoadedWorkspace } from '../workspace/load.js';
import { PolicyLayerFileSchema } from '../workspace/policy-schema.js';
import { PolicyEngine } from './engine.js';
import type { PolicyLayerInput } from './layers.js';
import { PolicyTestTableSchema, runPolicyTests, type PolicyTestResult, type PolicyTestTable } from './test-table.js';

async function readText(file: string, what: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw new NotFoundError(`${what} ${file} does not exist.`, { cause: err, details: { file } });
    throw new InvalidInputError(`Cannot read ${what} ${file}: ${(err as Error).message}`, {
      cause: err,
      details: { file },
    });
  }
}

function parseYaml<S extends z.ZodType>(schema: S, text: string, file: string, what: string): z.output<S> {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    // The first problems are the real ones; later ones tend to follow from them.
    const lines = doc.errors
      .slice(0, 5)
      .map((e) => `${file}:${lineCounter.linePos(e.pos[0]).line}: ${e.message.split('\n')[0] ?? e.message}`);
    throw new InvalidInputError(`${file} is not valid YAML:\n  ${lines.join('\n  ')}`, { details: { file } });
  }
  const result = schema.safeParse(doc.toJS());
  if (result.success) return result.data;
  const issues = result.error.issues.map((i) => {
    const path = i.code === 'unrecognized_keys' ? [...i.path, i.keys[0] ?? ''] : i.path;
    const node: unknown = doc.getIn(path as unknown[], true) ?? doc.getIn(path.slice(0, -1) as unknown[], true);
    const line = isNode(node) && node.range ? lineCounter.linePos(node.range[0]).line : undefined;
    const message =
      i.code === 'unrecognized_keys'
        ? `unknown key${i.keys.length > 1 ? 's' : ''} ${i.keys.map((k) => `"${k}"`).join(', ')} (check the spelling)`
        : i.message;
    return { path: formatPath(path), message, ...(line !== undefined ? { line } : {}) };
  });
  const lines = issues.map(
    (i) => `${i.line !== undefined ? `${file}:${i.line}` : file}: ${i.path ? `${i.path}: ` : ''}${i.message}`,
  );
  throw new InvalidInputError(`${file} is not a valid ${what}:\n  ${lines.join('\n  ')}`, {
    details: { file, issues },
  });
}

/**
 * Parses a policy layer file (YAML or JSON, `kind: PolicyLayer`). Throws InvalidInputError naming
 * the file, the line and the path of every problem.
 */
export function parsePolicyLayer(text: string, options: { file?: string } = {}): PolicyLayerInput {
  const file = options.file ?? '<inline>';
  const data = parseYaml(PolicyLayerFileSchema, text, file, 'policy layer');
  return {
    layer: data.layer,
    source: file,
    ...(data.policy ? { policy: data.policy } : {}),
    assignments: data.assignments,
  };
}

/** Parses a policy test table (YAML or JSON, `kind: PolicyTest`). */
export function parsePolicyTestTable(text: string, options: { file?: string } = {}): PolicyTestTable {
  return parseYaml(PolicyTestTableSchema, text, options.file ?? '<inline>', 'policy test table');
}

/**
 * Reads a policy test table, loads the workspace and layers it names (relative to the table)
 * and runs every case.
 *
 * @example
 * ```ts
 * const { results } = await runPolicyTestFile('policy.test.yaml');
 * process.exitCode = results.every((r) => r.passed) ? 0 : 10;
 * ```
 */
export async function runPolicyTestFile(
  file: string,
  options: { clock?: Pick<Clock, 'now'> } = {},
): Promise<{ table: PolicyTestTable; policy: LoadedPolicy; results: PolicyTestResult[] }> {
  const path = resolve(file);
  const table = parsePolicyTestTable(await readText(path, 'Policy test table'), { file: path });
  const base = dirname(path);
  const policy = await loadPolicy({
    workspaceFile: resolve(base, table.workspace),
    layerFiles: table.layers.map((l) => resolve(base, l)),
    ...(options.clock ? { clock: options.clock } : {}),
  });
  return { table, policy, results: runPolicyTests(policy.engine, table) };
}

/** What {@link loadPolicy} read. */
export interface LoadedPolicy {
  readonly engine: PolicyEngine;
  readonly workspace: LoadedWorkspace;
  readonly layers: readonly PolicyLayerInput[];
}

/** Where to load a policy from: a workspace file, or a workspace already loaded. */
export type LoadPolicyOptions = LoadPolicySources &
  ({ readonly workspaceFile: string } | { readonly workspace: LoadedWorkspace });

/** What {@link loadPolicy} reads besides the workspace. */
export interface LoadPolicySources {
  /** Policy layer files (`kind: PolicyLayer`), in any order. */
  readonly layerFiles?: readonly string[];
  /** The clock for usage decisions. */
  readonly clock?: Pick<Clock, 'now'>;
}

/**
 * Reads a workspace file (or takes a loaded workspace), policy layer files and every Enterprise
 * Mode Site List they reference (relative to the file that references it), and builds a
 * {@link PolicyEngine}.
 *
 * @example
 * ```ts
 * const { engine } = await loadPolicy({ workspaceFile: 'tandem.workspace.yaml', layerFiles: ['machine.policy.yaml'] });
 * console.log(engine.forSubject({ user: 'alice' }).decideUrl('http://intranet.example/').target);
 * ```
 */
export async function loadPolicy(options: LoadPolicyOptions): Promise<LoadedPolicy> {
  const loaded = 'workspace' in options ? options.workspace : await loadWorkspaceFile(options.workspaceFile);
  // Site lists are keyed by the reference as written (so decisions show `sites.xml:12`); two
  // files that write the same reference for different files would be ambiguous and are refused.
  const siteLists: Record<string, string> = {};
  const resolvedFrom = new Map<string, string>();
  const readSiteList = async (reference: string | undefined, baseDir: string, by: string): Promise<void> => {
    if (reference === undefined) return;
    const file = resolve(baseDir, reference);
    const seen = resolvedFrom.get(reference);
    if (seen !== undefined && seen !== file) {
      throw new InvalidInputError(
        `${by} references the site list "${reference}", which is ${file}, while another file's "${reference}" is ${seen}; give the site lists different names.`,
        { details: { reference, files: [seen, file] } },
      );
    }
    resolvedFrom.set(reference, file);
    siteLists[reference] ??= await readText(file, 'Enterprise Mode Site List');
  };
  await readSiteList(loaded.workspace.spec.webRedirection?.enterpriseSiteList, loaded.baseDir, loaded.file);
  const layers: PolicyLayerInput[] = [];
  for (const layerFile of options.layerFiles ?? []) {
    const file = resolve(layerFile);
    const layer = parsePolicyLayer(await readText(file, 'Policy layer file'), { file });
    await readSiteList(layer.policy?.webRedirection?.enterpriseSiteList, dirname(file), file);
    for (const a of layer.assignments ?? [])
      await readSiteList(a.policy.webRedirection?.enterpriseSiteList, dirname(file), file);
    layers.push(layer);
  }
  const engine = new PolicyEngine({
    workspace: loaded.workspace,
    workspaceSource: loaded.file,
    layers,
    siteLists,
    ...(options.clock ? { clock: options.clock } : {}),
  });
  return { engine, workspace: loaded, layers };
}
