import { HostError, TandemError } from '../errors.js';

/**
 * Turns a file-system error into a HostError whose message says what to do (a full disk, a
 * read-only file system, missing permissions); TandemErrors pass through unchanged.
 */
export function toHostError(err: unknown, doing: string): unknown {
  if (TandemError.is(err)) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const path = (err as NodeJS.ErrnoException | undefined)?.path;
  switch (code) {
    case 'ENOSPC':
    case 'EDQUOT':
      return new HostError(
        `The disk is full while ${doing}${path ? ` (${path})` : ''}; free some space and run it again.`,
        {
          cause: err,
          retryable: true,
          details: { errno: code, ...(path ? { path } : {}) },
        },
      );
    case 'EROFS':
    case 'EACCES':
    case 'EPERM':
      return new HostError(
        `No permission to write while ${doing}${path ? ` (${path})` : ''}: ${(err as Error).message}.`,
        {
          cause: err,
          details: { errno: code, ...(path ? { path } : {}) },
        },
      );
    case 'EIO':
      return new HostError(`An I/O error happened while ${doing}; check the disk.`, {
        cause: err,
        details: { errno: code },
      });
    default:
      return err;
  }
}
