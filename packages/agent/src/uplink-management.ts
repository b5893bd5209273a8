import type { AnyTandemEvent } from '@tandem/core';
import { MAX_EVENTS_PER_REQUEST, type ManagementClient } from '@tandem/core/management';
import type { EventUplink } from './uplink.js';

/**
 * The agent's event uplink to the management server: each batch goes to `POST /v1/events`,
 * signed by the device's key, through the {@link ManagementClient} (which retries retryable
 * failures itself). The server keeps an event once by its id, so a batch the shipper sends
 * again after a crash or a lost reply is stored once. A batch larger than the API takes is
 * sent in parts.
 *
 * @example
 * ```ts
 * const client = new ManagementClient({ baseUrl: 'https://tandem.corp.example:8443', device, ca });
 * const shipper = new EventShipper({ queue, uplink: managementUplink(client) });
 * ```
 */
export function managementUplink(client: ManagementClient): EventUplink {
  return {
    async send(batch: readonly AnyTandemEvent[], signal: AbortSignal): Promise<void> {
      for (let i = 0; i < batch.length; i += MAX_EVENTS_PER_REQUEST)
        await client.uploadEvents(batch.slice(i, i + MAX_EVENTS_PER_REQUEST), { signal });
    },
  };
}
