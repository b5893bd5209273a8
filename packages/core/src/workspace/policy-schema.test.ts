import { describe, expect, it } from 'vitest';
import { TandemError } from '../errors.js';
import { parseWorkspace } from './load.js';
import { PolicyLayerFileSchema } from './policy-schema.js';

// The example workspace of DESIGN.md, verbatim.
const DESIGN_EXAMPLE = `
apiVersion: tandem/v1
kind: Workspace
metadata: { name: legacy-erp, version: 3.2.0 }
spec:
  image: { source: ./images/winxp.qcow2, format: qcow2 }
  hardware:
    memory: { minMiB: 512, maxMiB: 2048, hostFraction: 0.25 }   # sized by the endpoint's RAM
    cpus: 1
  network: { mode: nat }                                      # nat | bridged | host-only | none
  firstTimeSetup:
    computerName: "WS-{hostName}-{random4}"
    joinDomain: { domain: corp.example, ou: "OU=Tandem,DC=corp,DC=example", credentialRef: join }
  display: { mode: seamless, frameColor: "#d9534f" }          # seamless | full-desktop
  publishedApps:
    - { id: erp, name: Legacy ERP, command: 'C:\\Program Files\\ERP\\erp.exe', startMenuFolder: Legacy, fileTypes: [.erp] }
  webRedirection:
    defaultTarget: host
    rules:
      - { match: { domainSuffix: intranet.example }, target: guest }
      - { match: { ipPrefix: 10.20.0.0/16 }, target: guest }
      - { match: { url: "http://*.legacy.example/app/*" }, target: guest }
      - { match: { localNames: true }, target: guest }            # names without a dot
  dataTransfer:
    - { channel: clipboard, direction: host-to-guest, action: allow }
    - { channel: clipboard, direction: guest-to-host, action: deny }
    - { channel: file, direction: any, action: ask }
    - { channel: print, direction: guest-to-host, action: allow }
    - { channel: usb, direction: host-to-guest, action: deny }
  usage:
    expiresAt: 2027-06-30T00:00:00Z
    offline: { allowed: true, maxDuration: P14D }
    idleLock: PT15M
    lockOnHostSleep: true
    mode: persistent                 # persistent | revertible
    onSessionEnd: snapshot           # snapshot | shutdown
  provisioning:
    groups: ["CN=ERP Users,OU=Groups,DC=corp,DC=example"]
`;

function problems(yamlSpecPart: string): string {
  const text = `apiVersion: tandem/v1\nkind: Workspace\nmetadata: { name: w, version: 1.0.0 }\nspec:\n  image: { source: x.qcow2, format: qcow2 }\n  hardware: { memory: { fixedMiB: 512 } }\n${yamlSpecPart}`;
  try {
    parseWorkspace(text, { file: 'w.yaml' });
  } catch (err) {
    if (TandemError.is(err, 'TANDEM_INVALID_INPUT')) return err.message;
    throw err;
  }
  return '';
}

describe('policy parts of the workspace schema', () => {
  it("accepts DESIGN.md's example and applies the defaults", () => {
    const ws = parseWorkspace(DESIGN_EXAMPLE);
    expect(ws.spec.webRedirection).toMatchObject({
      enabled: true,
      defaultTarget: 'host',
      hostToGuest: true,
      guestToHost: false,
    });
    expect(ws.spec.webRedirection?.rules[0]?.direction).toBe('any');
    expect(ws.spec.usage).toMatchObject({
      expiresAt: '2027-06-30T00:00:00Z',
      idleLock: 'PT15M',
      onSessionEnd: 'snapshot',
    });
  });

  it.each([
    [
      '  webRedirection:\n    rules:\n      - { match: { domainSufix: a.example }, target: guest }\n',
      /w.yaml:9:\d+: spec.webRedirection.rules\[0\].match: /,
    ],
    [
      '  webRedirection:\n    rules:\n      - { match: { domainSuffix: "*.a.example" }, target: guest }\n',
      /spec.webRedirection.rules\[0\].match.domainSuffix: domainSuffix takes a domain without a wildcard/,
    ],
    [
      '  webRedirection:\n    rules:\n      - { match: { host: "a b" }, target: guest }\n',
      /spec.webRedirection.rules\[0\].match.host: it contains a character a host cannot have/,
    ],
    [
      '  webRedirection:\n    rules:\n      - { match: { url: "http://www.*.com/" }, target: guest }\n',
      /spec.webRedirection.rules\[0\].match.url: a wildcard in the host must be the whole leftmost label/,
    ],
    [
      '  webRedirection:\n    rules:\n      - { match: { ipPrefix: 10.0.0.0/33 }, target: guest }\n',
      /spec.webRedirection.rules\[0\].match.ipPrefix: expected an IPv4 or IPv6 prefix/,
    ],
    [
      '  webRedirection:\n    rules:\n      - { match: { url: "https://a.example/x" }, scheme: http, target: guest }\n',
      /spec.webRedirection.rules\[0\]: its url pattern says https but its scheme key says http/,
    ],
    [
      '  webRedirection:\n    rules:\n      - { match: { host: a.example }, target: guest, colour: red }\n',
      /unknown key "colour"/,
    ],
    [
      '  webRedirection:\n    defaultTarget: browser\n',
      /spec.webRedirection.defaultTarget: expected one of "host", "guest"/,
    ],
    ['  dataTransfer:\n    - { channel: fax, direction: any, action: allow }\n', /spec.dataTransfer\[0\].channel/],
    [
      '  dataTransfer:\n    - { channel: file, direction: any, action: allow, when: { contentType: [text] } }\n',
      /spec.dataTransfer\[0\].when.contentType: contentType applies to the clipboard channel only/,
    ],
    [
      '  dataTransfer:\n    - { channel: clipboard, direction: any, action: allow, when: { size: 3 } }\n',
      /unknown key "size"/,
    ],
    ['  usage:\n    idleLock: 15 minutes\n', /spec.usage.idleLock: expected an ISO 8601 duration/],
    ['  usage:\n    offline: { allowed: true, maxDays: 3 }\n', /unknown key "maxDays"/],
    ['  provisioning:\n    group: [a]\n', /unknown key "group"/],
  ])('refuses bad policy: %#', (part, message) => {
    expect(problems(part)).toMatch(message);
  });

  it('reads a policy layer file with assignments', () => {
    const layer = PolicyLayerFileSchema.parse({
      apiVersion: 'tandem/v1',
      kind: 'PolicyLayer',
      layer: 'user-policy',
      policy: { merge: { dataTransfer: 'most-restrictive' } },
      assignments: [
        {
          groups: ['ERP Users'],
          policy: { dataTransfer: [{ channel: 'clipboard', direction: 'any', action: 'allow' }] },
        },
      ],
    });
    expect(layer.assignments[0]?.users).toEqual([]);
    expect(layer.policy?.webRedirection).toBeUndefined();
    expect(
      PolicyLayerFileSchema.safeParse({ apiVersion: 'tandem/v1', kind: 'PolicyLayer', layer: 'package-default' })
        .success,
    ).toBe(false);
    expect(
      PolicyLayerFileSchema.safeParse({ apiVersion: 'tandem/v1', kind: 'PolicyLayer', layer: 'user-policy', extra: 1 })
        .success,
    ).toBe(false);
  });
});
