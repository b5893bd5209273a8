import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { validateWorkspace } from '../workspace/load.js';
import type { WorkspaceInput } from '../workspace/schema.js';
import { PolicyEngine } from './engine.js';
import { groupMatches, normalizeDn, userMatches } from './principals.js';

function workspace(provisioning?: WorkspaceInput['spec']['provisioning']) {
  return validateWorkspace({
    apiVersion: 'tandem/v1',
    kind: 'Workspace',
    metadata: { name: 'erp', version: '1.0.0' },
    spec: {
      image: { source: 'x.qcow2', format: 'qcow2' },
      hardware: { memory: { fixedMiB: 512 } },
      ...(provisioning ? { provisioning } : {}),
    },
  });
}

describe('principals', () => {
  it('compares DNs by their parts, ignoring case and spaces', () => {
    expect(normalizeDn(' CN = ERP Users , OU=Groups,DC=Corp, DC=example')).toBe(
      'cn=erp users,ou=groups,dc=corp,dc=example',
    );
    expect(
      groupMatches('CN=ERP Users,OU=Groups,DC=corp,DC=example', 'cn=erp users, ou=groups, dc=corp, dc=example'),
    ).toBe(true);
    expect(groupMatches('CN=ERP Users,OU=Groups,DC=corp,DC=example', 'CN=ERP Users,OU=Other,DC=corp,DC=example')).toBe(
      false,
    );
    expect(groupMatches('CN=Smith\\, John,OU=X', 'cn=smith\\, john,ou=x')).toBe(true);
  });

  it('a plain name matches a DN whose first part is that name', () => {
    expect(groupMatches('ERP Users', 'CN=ERP Users,OU=Groups,DC=corp,DC=example')).toBe(true);
    expect(groupMatches('CN=ERP Users,OU=Groups,DC=corp,DC=example', 'erp users')).toBe(true);
    expect(groupMatches('ERP', 'CN=ERP Users,OU=Groups')).toBe(false);
    expect(groupMatches('Groups', 'CN=ERP Users,OU=Groups')).toBe(false);
  });

  it('user ids compare case-insensitively', () => {
    expect(userMatches('CORP\\Alice', 'corp\\alice')).toBe(true);
    expect(userMatches('alice', 'alicia')).toBe(false);
  });

  it('DN comparison ignores case and spacing (property)', () => {
    const value = fc.stringMatching(/^[A-Za-z][A-Za-z0-9 ]{0,8}[A-Za-z0-9]$/);
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom('CN', 'OU', 'DC'), value), { minLength: 1, maxLength: 4 }),
        fc.boolean(),
        (parts, upper) => {
          const a = parts.map(([k, v]) => `${k}=${v}`).join(',');
          const b = parts
            .map(([k, v]) => ` ${upper ? k.toLowerCase() : k} = ${upper ? v.toUpperCase() : v.toLowerCase()} `)
            .join(',');
          expect(groupMatches(a, b)).toBe(true);
        },
      ),
    );
  });
});

describe('provisioning decisions', () => {
  it('gives the workspace to the users and groups it lists, and says why', () => {
    const engine = new PolicyEngine({
      workspace: workspace({ users: ['bob'], groups: ['CN=ERP Users,OU=Groups,DC=corp,DC=example'] }),
    });
    expect(
      engine.forSubject({ user: 'alice', groups: ['CN=ERP Users,OU=Groups,DC=corp,DC=example'] }).decideProvisioning(),
    ).toMatchObject({
      outcome: 'allow',
      layer: 'package-default',
      rule: { path: 'spec.provisioning.groups[0]' },
    });
    expect(engine.forSubject({ user: 'BOB' }).decideProvisioning()).toMatchObject({
      outcome: 'allow',
      rule: { path: 'spec.provisioning.users[0]' },
    });
    const no = engine.forSubject({ user: 'carol', groups: ['Sales'] }).decideProvisioning();
    expect(no).toMatchObject({ outcome: 'deny', layer: 'package-default', workspace: 'erp' });
    expect(no.reason).toBe(
      'user carol (groups Sales) is not listed in spec.provisioning in package-default (workspace erp), so erp is not provisioned to them',
    );
  });

  it('with no list anywhere, every user gets it', () => {
    expect(
      new PolicyEngine({ workspace: workspace() }).forSubject({ user: 'anyone' }).decideProvisioning(),
    ).toMatchObject({ outcome: 'allow', layer: 'built-in' });
  });

  it('a higher layer that lists users or groups replaces the workspace list', () => {
    const engine = new PolicyEngine({
      workspace: workspace({ groups: ['ERP Users'] }),
      layers: [{ layer: 'machine-policy', source: 'server', policy: { provisioning: { groups: ['Finance'] } } }],
    });
    expect(engine.forSubject({ user: 'a', groups: ['ERP Users'] }).decideProvisioning()).toMatchObject({
      outcome: 'deny',
      layer: 'machine-policy',
    });
    expect(engine.forSubject({ user: 'a', groups: ['finance'] }).decideProvisioning()).toMatchObject({
      outcome: 'allow',
      layer: 'machine-policy',
      rule: { source: 'server' },
    });
  });

  it('everyone: true opens it to every user', () => {
    const engine = new PolicyEngine({ workspace: workspace({ everyone: true }) });
    expect(engine.forSubject({}).decideProvisioning()).toMatchObject({
      outcome: 'allow',
      rule: { path: 'spec.provisioning.everyone' },
    });
  });
});
