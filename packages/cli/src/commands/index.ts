import type { Command } from 'commander';
import type { CommandHost } from '../program.js';
import { registerValidate } from './validate.js';

/** Registers every command. Each command lives in its own file under commands/. */
export function registerCommands(program: Command, host: CommandHost): void {
  registerValidate(program, host);
}
