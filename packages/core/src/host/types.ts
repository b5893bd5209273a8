/**
 * The shell a remote host runs commands with. `posix` for sh/bash/dash/zsh (Linux, macOS),
 * `powershell` or `cmd` for Windows OpenSSH, whose default shell is one of the two.
 */
export type RemoteShell = 'posix' | 'powershell' | 'cmd';

/** One program to run: a path and an argument array, never a string for a shell. */
export interface CommandRequest {
  /** The program: a name found on PATH, or a path. */
  readonly command: string;
  /** Its arguments, each passed to the program exactly as given. */
  readonly args?: readonly string[];
  /** Written to the program's stdin, which is then closed. Without it stdin is empty. */
  readonly input?: string | Uint8Array;
  /** Variables added to the environment (names are `[A-Za-z_][A-Za-z0-9_]*`). */
  readonly env?: Readonly<Record<string, string>>;
  /** Kill the program after this long and throw TimeoutError. */
  readonly timeoutMs?: number;
  /** Kill the program on abort and throw CancelledError. */
  readonly signal?: AbortSignal;
}

/** How a program ended. A non-zero exit code is a result, not an exception. */
export interface CommandResult {
  readonly command: string;
  readonly args: readonly string[];
  /** The exit code; null when the program was ended by a signal. */
  readonly exitCode: number | null;
  /** The signal that ended the program, when one did. */
  readonly signal?: string;
  readonly stdout: string;
  readonly stderr: string;
}

/** A program started with {@link CommandRunner.start} that keeps running. */
export interface RunningCommand {
  /** The local process id (none for a program on a remote host). */
  readonly pid?: number;
  /** The program and its arguments, as started. */
  readonly argv: readonly string[];
  /** Settles when the program ends, like {@link CommandRunner.run}. */
  readonly result: Promise<CommandResult>;
  /** Ends the program (SIGTERM locally; a KILL signal and channel close over SSH). */
  kill(): void;
}

/**
 * Runs programs on one host: this machine ({@link LocalRunner}) or another one over SSH
 * ({@link SshRunner}). Arguments are always an array; quoting for a remote shell happens in one
 * place ({@link remoteCommandLine}).
 */
export interface CommandRunner {
  /** Where commands run, for messages: `local` or `ssh root@host:22`. */
  readonly description: string;
  /** The host's kind of operating system. */
  readonly platform: 'posix' | 'windows';
  /** True when the host is another machine. */
  readonly remote: boolean;
  /**
   * Runs a program to its end. Resolves with its exit code and output; throws HostError when it
   * cannot be started, TimeoutError after `timeoutMs`, CancelledError on abort and
   * InvalidInputError for an argument no program can receive (a NUL byte).
   */
  run(request: CommandRequest): Promise<CommandResult>;
  /** Starts a program and returns once it runs (`timeoutMs` does not apply). */
  start(request: CommandRequest): Promise<RunningCommand>;
  /** Releases connections. The runner can still be used afterwards (it reconnects). */
  close(): Promise<void>;
}
