import { GuestOperationError } from '@tandem/core/guest';
import type { ProgramRunner } from './run.js';

/**
 * Opens a URL in the guest's browser: `xdg-open URL` on Linux, `rundll32 url.dll,FileProtocolHandler URL`
 * on Windows (what `start` does, without a shell that would read the URL as a command line).
 * The URL is already validated (http, https, ftp, mailto).
 */
export async function openUrlInGuest(
  url: string,
  run: ProgramRunner,
  platform: NodeJS.Platform = process.platform,
): Promise<void> {
  const [command, args] =
    platform === 'win32' ? ['rundll32.exe', ['url.dll,FileProtocolHandler', url]] : ['xdg-open', [url]];
  let r;
  try {
    r = await run(command, args);
  } catch (err) {
    throw new GuestOperationError(`Cannot run ${command}: ${(err as Error).message}`, (err as Error).message, {
      retryable: false,
      details: { guestCode: 'no-browser' },
    });
  }
  if (r.exitCode !== 0) {
    const msg = (r.stderr || r.stdout).trim().slice(0, 2000) || `${command} exited with ${r.exitCode}`;
    throw new GuestOperationError(msg, msg, { retryable: true, details: { guestCode: `exit-${r.exitCode}` } });
  }
}
