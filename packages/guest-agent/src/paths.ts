/** Where the agent reads and writes the guest's system files; tests point these at a scratch tree. */
export interface GuestPaths {
  /** procfs root (`/proc`): the hostname is set through sys/kernel/hostname. */
  readonly proc: string;
  /** `/etc`: hostname, os-release. */
  readonly etc: string;
  /**
   * `/run`: a `reboot-required` file there (Debian's and Ubuntu's convention, written by package
   * scripts and unattended-upgrades) makes a setup step ask the host for a restart. Unset: not
   * looked at (scratch trees in tests).
   */
  readonly run?: string;
}

/** The real paths. */
export const SYSTEM_PATHS: GuestPaths = { proc: '/proc', etc: '/etc', run: '/run' };
