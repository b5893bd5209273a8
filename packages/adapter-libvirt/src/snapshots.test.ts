import { describe, expect, it } from 'vitest';
import { parseSnapshotXml } from './snapshots.js';

// Recorded from `virsh snapshot-dumpxml` (libvirt 9.0), inner domain shortened.
const RECORDED = `<domainsnapshot>
  <name>two 'q' &amp; é</name>
  <description>after &lt;install&gt;</description>
  <state>running</state>
  <parent>
    <name>s1</name>
  </parent>
  <creationTime>1795289304</creationTime>
  <memory snapshot='internal'/>
  <disks>
    <disk name='vda' snapshot='internal'/>
  </disks>
  <domain type='qemu'>
    <name>tandem-exp-1</name>
    <uuid>cf3f6d80-ee0a-456f-97cc-f8eda6c4453b</uuid>
  </domain>
</domainsnapshot>
`;

describe('snapshot XML', () => {
  it('reads name, parent, time, description and state, not the inner domain', () => {
    expect(parseSnapshotXml(RECORDED, 'fallback')).toEqual({
      id: "two 'q' & é",
      name: "two 'q' & é",
      description: 'after <install>',
      createdAt: new Date(1795289304 * 1000).toISOString(),
      parentId: 's1',
      current: false,
      vmState: 'running',
    });
  });

  it('a root snapshot of a stopped VM has no parent and reverts to stopped', () => {
    const xml =
      '<domainsnapshot><name>cold</name><state>shutoff</state><creationTime>1</creationTime></domainsnapshot>';
    expect(parseSnapshotXml(xml, 'cold')).toMatchObject({
      parentId: null,
      vmState: 'stopped',
      createdAt: '1970-01-01T00:00:01.000Z',
    });
  });
});
