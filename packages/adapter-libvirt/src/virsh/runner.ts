import { execa } from 'execa';
import { HostError } from '@tandem/core';

/** What a failed virsh command printed, for error mapping. */
export class VirshFailure extends Error {
  override readonly name = 'VirshFailure';
  constructor(
    /** The `error: ...` lines virsh printed, without the prefix. */
    readonly errors: readonly string[],
    readonly command: string,
    readonly exitCode: number | undefined,
    readonly stdout: string,
  ) {
    super(errors.join('\n') || `virsh ${command} failed with exit code ${exitCode}`);
  }

  /** libvirt's own message: the most specific (last) error line. */
  get libvirtMessage(): string {
    return this.errors.at(-1) ?? this.message;
  }
}

/** The outcome of a virsh script: its output and every error line, in order. */
export interface VirshScriptResult {
  readonly stdout: string;
  readonly errors: readonly string[];
}

/** Options of one virsh call. */
export interface VirshCallOptions {
  readonly signal?: AbortSignal;
}

/**
 * Runs virsh against one URI. Commands go as argument arrays (execa, no shell); a script of
 * several commands goes as one argument in virsh's own quoting (see {@link virshScript}).
 * virsh runs with LC_ALL=C so libvirt's messages are the English ones the error mapping knows.
 */
export class Virsh {
  constructor(
    readonly uri: string,
    readonly binary = 'virsh',
  ) {}

  /** Runs one command; resolves with stdout, or throws VirshFailure / HostError. */
  async run(args: readonly string[], options: VirshCallOptions = {}): Promise<string> {
    // A lone argument would be parsed as a script; commands always carry at least one option.
    if (args.length < 2) throw new RangeError(`virsh ${args.join(' ')}: expected a command and its options`);
    let result;
    try {
      result = await this.#exec(args, options);
    } catch (err) {
      // virsh crashed (see #exec): a command that only reads is safe to run again.
      if (!(err instanceof HostError) || err.details['signal'] === undefined || !READ_ONLY.has(args[0] ?? ''))
        throw err;
      result = await this.#exec(args, options);
    }
    const errors = errorLines(result.stderr);
    if (result.exitCode !== 0 || errors.length > 0) {
      throw new VirshFailure(errors, args[0] ?? '', result.exitCode, result.stdout);
    }
    return result.stdout;
  }

  /**
   * Runs a script (one argument, commands joined by `;`). virsh runs every command even after
   * one fails, so the caller gets all error lines and decides.
   */
  async script(script: string, options: VirshCallOptions = {}): Promise<VirshScriptResult> {
    const result = await this.#exec([script], options);
    return { stdout: result.stdout, errors: errorLines(result.stderr) };
  }

  async #exec(
    args: readonly string[],
    options: VirshCallOptions,
  ): Promise<{ stdout: string; stderr: string; exitCode: number | undefined }> {
    try {
      const r = await execa(this.binary, ['-q', '-c', this.uri, ...args], {
        reject: false,
        stripFinalNewline: false,
        env: { LC_ALL: 'C', LANG: 'C' },
        stdin: 'ignore',
        ...(options.signal ? { cancelSignal: options.signal } : {}),
      });
      if (r.failed && r.exitCode === undefined) {
        const code = (r.cause as NodeJS.ErrnoException | undefined)?.code;
        if (code === 'ENOENT') {
          throw new HostError(
            `virsh was not found (${this.binary}). Install libvirt's client tools (Debian/Ubuntu: apt-get install libvirt-clients).`,
            { cause: r.cause, details: { binary: this.binary } },
          );
        }
        throw new HostError(`virsh could not run: ${r.shortMessage}`, {
          cause: r.cause,
          // virsh over qemu+libssh:// now and then dies of SIGSEGV (libvirt 9's libssh transport):
          // callers that can check what happened use the signal to recover.
          details: { binary: this.binary, ...(r.signal ? { signal: r.signal } : {}) },
        });
      }
      return { stdout: r.stdout, stderr: r.stderr, exitCode: r.exitCode };
    } catch (err) {
      if (err instanceof HostError) throw err;
      throw new HostError(`virsh could not run: ${(err as Error).message}`, { cause: err });
    }
  }
}

/** virsh commands that change nothing, so running one again after virsh crashed is harmless. */
const READ_ONLY = new Set([
  'capabilities',
  'domifaddr',
  'dominfo',
  'domstate',
  'dumpxml',
  'list',
  'net-dhcp-leases',
  'net-info',
  'nodeinfo',
  'secret-list',
  'snapshot-current',
  'snapshot-dumpxml',
  'snapshot-info',
  'snapshot-list',
  'snapshot-parent',
  'version',
]);

function errorLines(stderr: string): string[] {
  return stderr
    .split('\n')
    .filter((l) => l.startsWith('error: '))
    .map((l) => l.slice('error: '.length));
}
