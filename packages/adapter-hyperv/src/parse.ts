/**
 * Parsers for what PowerShell prints: ConvertTo-Json output of Hyper-V objects (Windows
 * PowerShell 5.1 and PowerShell 7 format them differently) and PowerShell error records.
 */
import type { VmState } from '@tandem/core';

/** Microsoft.HyperV.PowerShell.VMState, by number (ConvertTo-Json prints enums as numbers). */
export const HYPERV_STATES: Readonly<Record<number, string>> = {
  1: 'Other',
  2: 'Running',
  3: 'Off',
  4: 'Stopping',
  6: 'Saved',
  9: 'Paused',
  10: 'Starting',
  11: 'Reset',
  32773: 'Saving',
  32776: 'Pausing',
  32777: 'Resuming',
  32779: 'FastSaved',
  32780: 'FastSaving',
  32781: 'ForceShutdown',
  32782: 'ForceReboot',
  32783: 'Hibernated',
  32784: 'ComponentServicing',
  32785: 'RunningCritical',
  32786: 'OffCritical',
  32787: 'StoppingCritical',
  32788: 'SavedCritical',
  32789: 'PausedCritical',
  32790: 'StartingCritical',
  32791: 'ResetCritical',
  32792: 'SavingCritical',
  32793: 'PausingCritical',
  32794: 'ResumingCritical',
  32795: 'FastSavedCritical',
  32796: 'FastSavingCritical',
};

const NUMBERS_BY_NAME = new Map(Object.entries(HYPERV_STATES).map(([n, name]) => [name.toLowerCase(), Number(n)]));

/** The Hyper-V state number for a number or a name (`-EnumsAsStrings` prints names). */
export function hyperVStateNumber(state: unknown): number | undefined {
  if (typeof state === 'number') return state;
  if (typeof state === 'string') return /^\d+$/.test(state) ? Number(state) : NUMBERS_BY_NAME.get(state.toLowerCase());
  return undefined;
}

/** The normalized state for a Hyper-V state (number or name). */
export function mapHyperVState(state: unknown): VmState {
  const name = HYPERV_STATES[hyperVStateNumber(state) ?? -1];
  if (!name) return 'unknown';
  if (name.endsWith('Critical')) return 'crashed';
  switch (name) {
    case 'Running':
      return 'running';
    case 'Off':
      return 'stopped';
    case 'Saved':
    case 'FastSaved':
    case 'Hibernated':
      return 'saved';
    case 'Paused':
      return 'paused';
    case 'Starting':
    case 'Reset':
    case 'Resuming':
    case 'ForceReboot':
      return 'starting';
    case 'Stopping':
    case 'Saving':
    case 'Pausing':
    case 'FastSaving':
    case 'ForceShutdown':
      return 'stopping';
    default:
      return 'unknown';
  }
}

/** The Hyper-V state numbers that map to the given normalized states. */
export function hyperVStatesFor(states: readonly VmState[]): number[] {
  return Object.keys(HYPERV_STATES)
    .map(Number)
    .filter((n) => states.includes(mapHyperVState(n)));
}

/**
 * A date as ConvertTo-Json prints it: `"\/Date(1700000000000)\/"` in Windows PowerShell 5.1
 * (JSON-decoded to `/Date(1700000000000)/`), ISO 8601 with an offset in PowerShell 7. Returns
 * ISO 8601 in UTC, or undefined.
 */
export function parsePsDate(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const ms = /^\/Date\((-?\d+)(?:[+-]\d{4})?\)\/$/.exec(value);
  if (ms) return new Date(Number(ms[1])).toISOString();
  const t = Date.parse(value);
  return Number.isNaN(t) ? undefined : new Date(t).toISOString();
}

/** Parses ConvertTo-Json output; empty output is null. A BOM and CRLF are tolerated. */
export function parseJson(stdout: string): unknown {
  const text = stdout.replace(/^\uFEFF/, '').trim();
  return text === '' ? null : (JSON.parse(text) as unknown);
}

/**
 * A list as ConvertTo-Json prints it: an array, but a single object when the pipeline held one
 * item (a well-known PowerShell quirk), and nothing at all for none.
 */
export function asList(value: unknown): Record<string, unknown>[] {
  if (value === null || value === undefined) return [];
  if (Array.isArray(value)) return value as Record<string, unknown>[];
  return [value as Record<string, unknown>];
}

/** A Guid as ConvertTo-Json prints it: a string, or `{ "Guid": ... }` in some 5.1 cases. */
export function guid(value: unknown): string | null {
  if (typeof value === 'string') return value.toLowerCase();
  if (value && typeof value === 'object' && typeof (value as { Guid?: unknown }).Guid === 'string') {
    return (value as { Guid: string }).Guid.toLowerCase();
  }
  return null;
}

/** A PowerShell error record, from a script's TANDEM-ERROR line or PowerShell's own error text. */
export interface PsErrorRecord {
  readonly fullyQualifiedErrorId: string;
  readonly category: string;
  readonly exceptionType?: string;
  readonly message: string;
  /** The VM's state number, when the script reported one. */
  readonly state?: number;
}

/** A scalar from JSON as text (empty for anything else). */
function text(v: unknown): string {
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? String(v) : '';
}

/** Finds the record a Tandem script printed (`TANDEM-ERROR {json}`) in stderr. */
export function parseTandemError(stderr: string): PsErrorRecord | null {
  const line = stderr.split(/\r?\n/).find((l) => l.startsWith('TANDEM-ERROR '));
  if (!line) return null;
  try {
    const o = JSON.parse(line.slice('TANDEM-ERROR '.length)) as Record<string, unknown>;
    return {
      fullyQualifiedErrorId: text(o['FullyQualifiedErrorId']),
      category: text(o['Category']),
      ...(typeof o['ExceptionType'] === 'string' ? { exceptionType: o['ExceptionType'] } : {}),
      message: text(o['Message']),
      ...(typeof o['State'] === 'number' ? { state: o['State'] } : {}),
    };
  } catch {
    return null;
  }
}

/**
 * Parses PowerShell's own rendering of an error (NormalView in 5.1, ConciseView in 7), for
 * failures outside a script's try/catch:
 *
 * ```
 * Get-VM : Hyper-V was unable to find a virtual machine with name "x".
 * At line:1 char:1
 * + Get-VM -Name x
 *     + CategoryInfo          : InvalidArgument: (x:String) [Get-VM], VirtualizationException
 *     + FullyQualifiedErrorId : InvalidParameter,Microsoft.HyperV.PowerShell.Commands.GetVM
 * ```
 */
export function parsePsErrorText(stderr: string): PsErrorRecord | null {
  const text = stderr.replace(/\r\n/g, '\n');
  const fq = /\+ FullyQualifiedErrorId : ([^\n]+)/.exec(text)?.[1]?.trim();
  const cat = /\+ CategoryInfo\s+: (\w+):/.exec(text)?.[1];
  const exceptionType = /\+ CategoryInfo\s+: [^\n]*\], (\w+)/.exec(text)?.[1];
  const first =
    text
      .split('\n')
      .find((l) => l.trim() !== '')
      ?.trim() ?? '';
  const message = first.replace(/^[\w-]+\s?:\s+/, '');
  if (!fq && !cat) {
    // PowerShell 7 ConciseView: "Get-VM: message"
    const concise = /^([\w-]+): (.+)$/.exec(first);
    if (!concise) return null;
    return { fullyQualifiedErrorId: '', category: '', message: concise[2]! };
  }
  return { fullyQualifiedErrorId: fq ?? '', category: cat ?? '', ...(exceptionType ? { exceptionType } : {}), message };
}
