/**
 * Gating for `*.integ.test.ts` files: tests against a real component (libvirtd, sshd, an HTTP
 * server) skip with a message saying how to enable them when the component is absent, and fail
 * instead when `TANDEM_IT=required` (CI sets it after starting the components).
 */
export interface IntegrationGate {
  /** True when the component is here and the tests should run. */
  readonly enabled: boolean;
  /** Why the tests are skipped (empty when enabled). */
  readonly reason: string;
}

/**
 * Checks a component. `check` returns null when it is usable, or the reason it is not.
 *
 * @example
 * ```ts
 * const gate = await integrationGate('libvirtd', async () => (existsSync('/run/libvirt/libvirt-sock') ? null : 'libvirtd is not running'), 'start it with /usr/sbin/libvirtd -d');
 * describe.skipIf(!gate.enabled)('libvirt', () => { ... });
 * ```
 */
export async function integrationGate(
  component: string,
  check: () => Promise<string | null> | string | null,
  howToEnable: string,
): Promise<IntegrationGate> {
  let problem: string | null;
  try {
    problem = await check();
  } catch (err) {
    problem = (err as Error).message;
  }
  if (problem === null) return { enabled: true, reason: '' };
  const reason = `${component} integration tests skipped: ${problem}. To run them: ${howToEnable}.`;
  if (process.env['TANDEM_IT'] === 'required') {
    throw new Error(`TANDEM_IT=required but ${component} is not usable: ${problem}. ${howToEnable}.`);
  }
  process.stderr.write(reason + '\n');
  return { enabled: false, reason };
}
