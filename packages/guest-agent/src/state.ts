import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SetupStepName } from '@tandem/core/guest';

/** What the agent records of first-time setup in its state directory. Never a secret. */
export interface AgentSetupState {
  /** The VM instance the recorded steps belong to. */
  instance?: string;
  computerName?: string;
  completed: Array<{ step: SetupStepName; at: string; message: string }>;
}

/** The agent's state directory (`--state-dir`, default /var/lib/tandem-guest-agent). */
export class AgentState {
  constructor(readonly dir: string) {}

  get #file(): string {
    return join(this.dir, 'setup.json');
  }

  load(): AgentSetupState {
    try {
      const parsed = JSON.parse(readFileSync(this.#file, 'utf8')) as AgentSetupState;
      return { ...parsed, completed: Array.isArray(parsed.completed) ? parsed.completed : [] };
    } catch {
      return { completed: [] };
    }
  }

  /** Writes atomically: a temporary file renamed over the old one, so a crash or reboot never leaves half. */
  save(state: AgentSetupState): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const tmp = join(this.dir, `.setup.${process.pid}.${randomUUID()}.tmp`);
    writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
    renameSync(tmp, this.#file);
  }
}
