import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import { parseDuration, type PublishedApp } from '@tandem/core';
import { GuestConnection } from '@tandem/core/guest';
import { discoveredApps, safeSegment, type LauncherApp } from '@tandem/core/publishing';
import { openAdapter } from '../adapters.js';
import type { CliContext } from '../context.js';
import { cliEvents, policyFor } from '../runtime.js';
import { StateDir, type SessionRecord } from '../state.js';

/** One discovered app as `apps publish --discovered` keeps it, so that `apps launch` can start it. */
interface StoredApp {
  id: string;
  name: string;
  command: string;
  args: string[];
}

const isString = (v: unknown): v is string => typeof v === 'string';

/** A stored app read back: anything not of the shape written is dropped (the file is Tandem's, but is a file). */
function storedApp(v: unknown): StoredApp | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Record<string, unknown>;
  if (!isString(o['id']) || !isString(o['name']) || !isString(o['command'])) return undefined;
  if (!Array.isArray(o['args']) || !o['args'].every(isString)) return undefined;
  return { id: o['id'], name: o['name'], command: o['command'], args: o['args'] };
}

/** `<state>/discovered-apps/<workspace>.json`: the guest's apps as last published. */
export function discoveredFile(stateDir: string, workspace: string): string {
  return join(stateDir, 'discovered-apps', `${safeSegment(workspace)}.json`);
}

/**
 * Asks the session's guest agent for its apps (the VM must be running and the agent answering),
 * skipping those whose id a workspace app already has (the workspace's own definition wins).
 */
export async function fetchDiscoveredApps(
  ctx: CliContext,
  record: SessionRecord,
  timeout: string,
): Promise<{ launchers: LauncherApp[]; apps: PublishedApp[]; skipped: string[] }> {
  const state = new StateDir(ctx.stateDir);
  const { adapter } = await openAdapter(state, record.adapter.name, record.adapter.options);
  const { events, close } = cliEvents(ctx, state);
  try {
    const loaded = { workspace: record.spec, file: record.file, baseDir: dirname(record.file) };
    const policy = (await policyFor(loaded, record.layers)).forSubject({ user: userInfo().username });
    const conn = new GuestConnection({
      adapter,
      vm: record.vm,
      bus: events,
      context: { workspace: record.workspace, session: record.id },
      policy,
      software: { name: '@tandem/cli', version: '0.1.0' },
    });
    try {
      await conn.open({ timeoutMs: parseDuration(timeout) });
      const own = new Set(record.spec.spec.publishedApps.map((a) => a.id));
      const found = discoveredApps(await conn.apps());
      const skipped = found.filter((f) => own.has(f.app.id)).map((f) => f.app.id);
      const kept = found.filter((f) => !own.has(f.app.id));
      return { launchers: kept.map((f) => f.launcher), apps: kept.map((f) => f.app), skipped };
    } finally {
      await conn.close();
    }
  } finally {
    close();
    await adapter.close?.();
  }
}

/** Records the discovered apps a publish installed launchers for (atomically). */
export function saveDiscoveredApps(stateDir: string, record: SessionRecord, apps: readonly PublishedApp[]): void {
  const file = discoveredFile(stateDir, record.workspace);
  mkdirSync(dirname(file), { recursive: true });
  const body = {
    workspace: record.workspace,
    vm: record.vm,
    apps: apps.map((a) => ({ id: a.id, name: a.name, command: a.command, args: [...a.args] })),
  };
  writeFileSync(`${file}.tmp`, JSON.stringify(body, null, 2) + '\n', { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
}

/** The discovered apps last published for the workspace, as apps `launchApp({ extraApps })` can start. */
export function loadDiscoveredApps(stateDir: string, workspace: string): PublishedApp[] {
  const file = discoveredFile(stateDir, workspace);
  if (!existsSync(file)) return [];
  const parsed = JSON.parse(readFileSync(file, 'utf8')) as { workspace?: unknown; apps?: unknown };
  if (parsed.workspace !== workspace || !Array.isArray(parsed.apps)) return [];
  return parsed.apps.flatMap((a) => {
    const app = storedApp(a);
    return app ? [{ ...app, fileTypes: [] }] : [];
  });
}

/** Forgets the discovered apps (unpublish). */
export function removeDiscoveredApps(stateDir: string, workspace: string): void {
  rmSync(discoveredFile(stateDir, workspace), { force: true });
}
