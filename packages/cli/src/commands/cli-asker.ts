import { createInterface, type Interface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { InvalidInputError, type EventBus, type EventContext } from '@tandem/core';
import { TransferAsker, type AskAnswer, type Permission } from '@tandem/core/publishing';

/** How `tandem apps launch` answers the policy's `ask` decisions. */
export type CliAskMode =
  /** `--yes`: every ask is allowed, as if the user had said yes to each. */
  | 'yes'
  /** `--no`: every ask is denied. */
  | 'no'
  /** A prompt per ask, on a terminal or (`--ask-on-stdin`) on whatever stdin is. */
  | 'prompt'
  /** No terminal and no flag: every ask is denied, and the output says so. */
  | 'not-interactive';

/** The flags and the streams the mode comes from. */
export interface CliAskFlags {
  readonly yes?: boolean;
  readonly no?: boolean;
  readonly askOnStdin?: boolean;
  /** `--password-stdin` takes stdin whole, so it cannot also answer prompts. */
  readonly passwordStdin?: boolean;
  readonly stdinIsTTY: boolean;
}

/**
 * Chooses how asks are answered: `--yes` or `--no` when given (scripts), a prompt when stdin is a
 * terminal (or `--ask-on-stdin` says to read answers from a pipe), else `not-interactive`.
 *
 * @example
 * ```ts
 * cliAskMode({ stdinIsTTY: process.stdin.isTTY === true }); // 'prompt' in a terminal
 * ```
 */
export function cliAskMode(f: CliAskFlags): CliAskMode {
  const given = [f.yes && '--yes', f.no && '--no', f.askOnStdin && '--ask-on-stdin'].filter(Boolean);
  if (given.length > 1) {
    throw new InvalidInputError(`${given.join(' and ')} contradict each other: pass one of them.`, {
      details: { flags: given },
    });
  }
  if (f.askOnStdin && f.passwordStdin) {
    throw new InvalidInputError(
      '--ask-on-stdin and --password-stdin both read stdin: answer the asks with --yes or --no instead.',
      { details: { flags: ['--ask-on-stdin', '--password-stdin'] } },
    );
  }
  if (f.yes) return 'yes';
  if (f.no) return 'no';
  if (f.askOnStdin) return 'prompt';
  return f.stdinIsTTY && !f.passwordStdin ? 'prompt' : 'not-interactive';
}

/** What {@link cliAsker} needs. */
export interface CliAskerOptions {
  readonly mode: Exclude<CliAskMode, 'not-interactive'>;
  readonly input: Readable;
  /** Where the questions are written (stderr: stdout carries the command's result, JSON with --json). */
  readonly output: Writable;
  /** How long one question may wait before it is denied (default 60 s). */
  readonly timeoutMs?: number;
  readonly events?: EventBus;
  readonly context?: EventContext;
}

/** A yes or a no; anything else (an empty line, end of input) is a no. */
export function parseAskAnswer(line: string | undefined): Permission {
  return /^\s*y(es)?\s*$/i.test(line ?? '') ? 'allow' : 'deny';
}

/**
 * The CLI's answerer of `ask` decisions: a {@link TransferAsker} whose questions are prompts
 * (`Allow clipboard guest-to-host (text)? [y/N]`, one line read per question, denied at the
 * timeout or at the end of input), or fixed answers for `--yes` and `--no`. Every outcome is
 * published as `policy.decision` with who decided. `close()` releases the input.
 *
 * @example
 * ```ts
 * const asker = cliAsker({ mode: 'prompt', input: process.stdin, output: process.stderr, events });
 * try {
 *   await launchApp({ session, appId: 'erp', policy, ask: asker.ask, events });
 * } finally {
 *   asker.close();
 * }
 * ```
 */
export function cliAsker(o: CliAskerOptions): { ask: AskAnswer; close(): void } {
  const asker = new TransferAsker({
    ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
    ...(o.events ? { events: o.events } : {}),
    ...(o.context ? { context: o.context } : {}),
  });
  if (o.mode !== 'prompt') {
    const fixed: Permission = o.mode === 'yes' ? 'allow' : 'deny';
    asker.on('ask', (q) => q.answer(fixed));
    return { ask: asker.ask, close: () => undefined };
  }
  const lines = new LineQueue(o.input);
  // One question at a time: the policy's decisions arrive in order, and each line answers one.
  asker.on('ask', (q) => {
    o.output.write(`Allow ${q.subject}? (${q.decision.reason}) [y/N] `);
    lines.next(Math.max(1, q.deadline - Date.now())).then(
      (line) => {
        if (line === undefined) o.output.write('\n');
        q.answer(parseAskAnswer(line));
      },
      () => q.answer('deny'),
    );
  });
  return {
    ask: asker.ask,
    close: () => {
      lines.close();
    },
  };
}

/**
 * Lines of the input in order, each handed to one caller: a line typed (or piped) before its
 * question is asked is kept for it, which readline's own `question()` would drop.
 */
class LineQueue {
  readonly #buffered: string[] = [];
  readonly #waiting: Array<(line: string | undefined) => void> = [];
  readonly #rl: Interface;
  #ended = false;

  constructor(input: Readable) {
    this.#rl = createInterface({ input, terminal: false });
    this.#rl.on('line', (line) => {
      const w = this.#waiting.shift();
      if (w) w(line);
      else this.#buffered.push(line);
    });
    this.#rl.once('close', () => {
      this.#ended = true;
      for (const w of this.#waiting.splice(0)) w(undefined);
    });
  }

  /** The next line, or `undefined` at the end of input or after `timeoutMs`. */
  next(timeoutMs: number): Promise<string | undefined> {
    const line = this.#buffered.shift();
    if (line !== undefined) return Promise.resolve(line);
    if (this.#ended) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const done = (l: string | undefined): void => {
        clearTimeout(timer);
        resolve(l);
      };
      const timer = setTimeout(() => {
        const i = this.#waiting.indexOf(done);
        if (i >= 0) this.#waiting.splice(i, 1);
        resolve(undefined);
      }, timeoutMs);
      this.#waiting.push(done);
    });
  }

  close(): void {
    this.#rl.close();
  }
}
