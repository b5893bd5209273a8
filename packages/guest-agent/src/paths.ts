/** Where the agent reads and writes the guest's system files; tests point these at a scratch tree. */
export interface GuestPaths {
  /** procfs root (`/proc`): the hostname is set through sys/kernel/hostname. */
  readonly proc: string;
  /** `/etc`: hostname, os-release. */
  readonly etc: string;
}

/** The real paths. */
export const SYSTEM_PATHS: GuestPaths = { proc: '/proc', etc: '/etc' };
