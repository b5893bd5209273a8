// The management server with its embedded defaults (SQLite, the built-in directory, a
// self-signed certificate), all on loopback: an administrator adds a user and a group and
// assigns the quickstart workspace to the group with its data key; a device enrolls as the
// user signs in, checks in with its queued events and gets the workspace and its key envelope,
// opens the envelope; then the events show in a report.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openEndpointKeys, openEnvelope } from '@tandem/core/crypto';
import { ManagementClient } from '@tandem/core/management';
import { initServerDirectory, openDeployment } from '@tandem/server';

const root = await mkdtemp(join(tmpdir(), 'tandem-example-server-'));
try {
  const serverDir = join(root, 'server');
  const { config } = await initServerDirectory(serverDir, { hostNames: ['127.0.0.1'] });
  console.log(`server directory: ${config.database}, built-in directory, TLS ${config.tls?.cert ?? 'none'}`);
  const deployment = await openDeployment(serverDir);
  try {
    const admin = deployment.admin;
    await admin.addUser('example-admin', { name: 'ana', password: 'correct horse battery staple' });
    await admin.addMembers('example-admin', 'erp-users', ['ana']);
    const { dataKeyId } = await admin.putWorkspaceKey('example-admin', 'quickstart');
    const assignment = await admin.assign('example-admin', {
      workspace: 'quickstart',
      channel: 'stable',
      groups: ['erp-users'],
      lease: 'P7D',
    });
    console.log(`assigned quickstart (channel stable) to group erp-users: ${assignment.id}; data key ${dataKeyId}`);

    const { url } = await deployment.serve({ host: '127.0.0.1', port: 0 });
    console.log(`server listening on ${url}`);

    // The endpoint: its device keys, trusting the server's self-signed certificate.
    const { device, trustedTime } = await openEndpointKeys(join(root, 'endpoint', 'keys'));
    const ca = await readFile(join(serverDir, 'tls', 'server.crt'), 'utf8');
    const client = new ManagementClient({ baseUrl: url, device, ca });
    const enrolled = await client.enroll({ user: 'ana', password: 'correct horse battery staple', hostName: 'pc-1' });
    console.log(`device ${enrolled.device} enrolled; ana signed in (groups: ${enrolled.signIn.groups.join(', ')})`);

    const events = Array.from({ length: 10 }, (_, i) => ({
      id: crypto.randomUUID(),
      type: 'session.transition' as const,
      at: new Date(Date.now() - (10 - i) * 1000).toISOString(),
      workspace: 'quickstart',
      session: 'quickstart-1',
      data: { from: 'stopped' as const, to: 'running' as const, operation: 'start' as const, vm: 'tandem-quickstart' },
    }));
    const workspaces = [{ workspace: 'quickstart', version: '1.0.0', state: 'running' }];
    const reply = await client.checkIn({ events, workspaces });
    if (reply.status !== 'changed') throw new Error('the first check-in should bring the assignment');
    console.log(
      `check-in: ${reply.events.inserted} events stored; gets ${reply.workspaces.map((w) => `${w.workspace} (${w.reason})`).join('; ')}`,
    );

    const envelope = reply.envelopes.find((e) => e.workspace === 'quickstart');
    if (!envelope) throw new Error('no envelope released');
    using released = await openEnvelope(envelope.envelope, {
      trustedAuthorities: [enrolled.authority],
      device,
      trustedTime,
      imageId: 'quickstart',
      version: '1.0.0',
    });
    console.log(`key released: data key ${released.dataKey.id}, lease until ${released.grant.lease.notAfter}`);
    if (released.dataKey.id !== dataKeyId) throw new Error('the released key is not the workspace key');

    const again = await client.checkIn({
      token: reply.token,
      workspaces,
      envelopes: [
        {
          workspace: 'quickstart',
          envelopeId: released.grant.envelopeId,
          issuedAt: released.grant.lease.issuedAt,
          notAfter: released.grant.lease.notAfter,
        },
      ],
      events,
    });
    console.log(
      `second check-in: ${again.status} (the same events again: ${again.events.duplicates} duplicates, none stored twice)`,
    );

    const page = await admin.events({ device: device.deviceId, type: 'session.transition' });
    console.log(`report: ${page.events.length} session events from ${device.deviceId}`);
    for (const row of await admin.endpoints())
      console.log(
        `  endpoint ${row.hostName} (${row.user}): last check-in ${row.lastCheckInAt ?? 'never'}, ${row.workspaces.map((w) => `${w.workspace}@${w.version ?? '?'}`).join(', ')}`,
      );
    for (const r of await admin.audit()) console.log(`  audit: ${r.at} ${r.actor} ${r.action} ${r.target}`);
  } finally {
    await deployment.close();
  }
} finally {
  await rm(root, { recursive: true, force: true });
}
