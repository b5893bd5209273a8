/**
 * A real OpenLDAP slapd for tests: each call starts its own slapd on a free loopback port, with
 * a configuration directory of its own made by slapadd from LDIF (cn=config with mdb, the
 * ppolicy overlay, the dynlist overlay computing nested memberOf), and removes everything on
 * stop. The system's slapd instance, if any, is never used or touched.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'ldapts';
import type { DirectoryFixture } from './conformance.js';
import { formatGeneralizedTime, PPOLICY_PERMANENT_LOCK } from './ldap-values.js';

export const SLAPD = '/usr/sbin/slapd';
export const SLAPADD = '/usr/sbin/slapadd';
const SCHEMA_DIR = '/etc/ldap/schema';
const MODULE_DIR = '/usr/lib/ldap';
const DAY = 86_400_000;

/** Why slapd cannot run here, or null when it can. */
export function slapdProblem(): string | null {
  for (const f of [
    SLAPD,
    SLAPADD,
    '/usr/bin/openssl',
    join(MODULE_DIR, 'ppolicy.so'),
    join(MODULE_DIR, 'dynlist.so'),
    join(SCHEMA_DIR, 'nis.ldif'),
  ])
    if (!existsSync(f)) return `${f} is missing (apt-get install slapd)`;
  return null;
}

/** ppolicy settings of the test directory's default policy. */
export interface SlapdPolicy {
  readonly maxFailure: number;
  /** Seconds; 0 locks until an administrator unlocks. */
  readonly lockoutDuration: number;
  /** Seconds. */
  readonly maxAge: number;
}

export const DEFAULT_SLAPD_POLICY: SlapdPolicy = { maxFailure: 3, lockoutDuration: 600, maxAge: 90 * 86_400 };

/** A running test slapd. */
export interface TestSlapd {
  readonly url: string;
  readonly port: number;
  readonly baseDn: string;
  readonly peopleDn: string;
  readonly groupsDn: string;
  readonly policyDn: string;
  /** The root DN (unrestricted) and the read-only service account Tandem binds as. */
  readonly rootDn: string;
  readonly rootPassword: string;
  readonly serviceDn: string;
  readonly servicePassword: string;
  readonly policy: SlapdPolicy;
  readonly dir: string;
  /** With `tls`: the ldaps:// URL and the self-signed certificate (PEM) both listeners present. */
  readonly ldapsUrl?: string | undefined;
  readonly certificatePem?: string | undefined;
  /** The DN of a fixture user. */
  userDn(name: string): string;
  stop(): Promise<void>;
}

/** `{SSHA}` of a password, as slappasswd makes it. */
export function sshaOf(password: string): string {
  const salt = randomBytes(8);
  const digest = createHash('sha1').update(password, 'utf8').update(salt).digest();
  return `{SSHA}${Buffer.concat([digest, salt]).toString('base64')}`;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

function run(cmd: string, args: string[], input?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.once('error', reject);
    p.once('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${err.slice(-2000)}`)),
    );
    p.stdin.end(input ?? '');
  });
}

function configLdif(
  dir: string,
  base: string,
  rootDn: string,
  rootPw: string,
  serviceDn: string,
  policyDn: string,
  tls: boolean,
): string {
  const tlsLines = tls ? `olcTLSCertificateFile: ${dir}/cert.pem\nolcTLSCertificateKeyFile: ${dir}/key.pem\n` : '';
  return `dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: ${dir}/slapd.pid
olcLogLevel: none
${tlsLines}
dn: cn=module{0},cn=config
objectClass: olcModuleList
cn: module{0}
olcModulePath: ${MODULE_DIR}
olcModuleLoad: back_mdb
olcModuleLoad: ppolicy
olcModuleLoad: dynlist

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file://${SCHEMA_DIR}/core.ldif

include: file://${SCHEMA_DIR}/cosine.ldif

include: file://${SCHEMA_DIR}/nis.ldif

include: file://${SCHEMA_DIR}/inetorgperson.ldif

include: file://${SCHEMA_DIR}/dyngroup.ldif

dn: olcDatabase={-1}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {-1}frontend

dn: olcDatabase={0}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {0}config
olcAccess: {0}to * by * none

dn: olcDatabase={1}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {1}mdb
olcSuffix: ${base}
olcRootDN: ${rootDn}
olcRootPW: ${rootPw}
olcDbDirectory: ${dir}/db
olcDbMaxSize: 33554432
olcAccess: {0}to attrs=userPassword by self write by anonymous auth by * none
olcAccess: {1}to * by dn.exact="${serviceDn}" read by self read by * none

dn: olcOverlay={0}dynlist,olcDatabase={1}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcDynListConfig
olcOverlay: {0}dynlist
olcDynListAttrSet: {0}groupOfNames memberURL member+memberOf@groupOfNames*

dn: olcOverlay={1}ppolicy,olcDatabase={1}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcPPolicyConfig
olcOverlay: {1}ppolicy
olcPPolicyDefault: ${policyDn}
olcPPolicyHashCleartext: TRUE
`;
}

function dataLdif(
  s: Pick<TestSlapd, 'baseDn' | 'peopleDn' | 'groupsDn' | 'policyDn' | 'serviceDn' | 'servicePassword' | 'policy'>,
  fixture: DirectoryFixture | undefined,
  now: number,
): string {
  const p = s.policy;
  const entries = [
    `dn: ${s.baseDn}\nobjectClass: dcObject\nobjectClass: organization\no: Tandem test\ndc: ${s.baseDn.split(',')[0]!.split('=')[1]}`,
    `dn: ${s.peopleDn}\nobjectClass: organizationalUnit\nou: people`,
    `dn: ${s.groupsDn}\nobjectClass: organizationalUnit\nou: groups`,
    `dn: ou=policies,${s.baseDn}\nobjectClass: organizationalUnit\nou: policies`,
    [
      `dn: ${s.policyDn}`,
      'objectClass: device',
      'objectClass: pwdPolicy',
      'cn: default',
      'pwdAttribute: userPassword',
      `pwdMaxFailure: ${p.maxFailure}`,
      'pwdLockout: TRUE',
      `pwdLockoutDuration: ${p.lockoutDuration}`,
      `pwdMaxAge: ${p.maxAge}`,
      'pwdFailureCountInterval: 0',
      'pwdGraceAuthNLimit: 0',
      'pwdMustChange: FALSE',
      'pwdAllowUserChange: TRUE',
      'pwdCheckQuality: 0',
      'pwdInHistory: 0',
      'pwdMinAge: 0',
    ].join('\n'),
    `dn: ${s.serviceDn}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: tandem-svc\nuserPassword: ${sshaOf(s.servicePassword)}`,
  ];
  if (fixture) {
    const hash = sshaOf(fixture.password);
    for (const u of fixture.users) {
      const changed =
        u.passwordExpiresInMs !== undefined
          ? now - (p.maxAge * 1000 - u.passwordExpiresInMs)
          : now - (u.passwordAgeMs ?? 0);
      const lines = [
        `dn: uid=${u.name},${s.peopleDn}`,
        'objectClass: inetOrgPerson',
        'objectClass: shadowAccount',
        `uid: ${u.name}`,
        `cn: ${u.displayName}`,
        `sn: ${u.displayName.split(' ').at(-1)}`,
        `displayName: ${u.displayName}`,
        `mail: ${u.name}@tandem.test`,
        `userPassword: ${hash}`,
        `pwdChangedTime: ${formatGeneralizedTime(changed)}`,
      ];
      if (u.disabled) lines.push(`pwdAccountLockedTime: ${PPOLICY_PERMANENT_LOCK}`);
      if (u.accountExpired) lines.push(`shadowExpire: ${Math.floor(now / DAY) - 1}`);
      entries.push(lines.join('\n'));
    }
    for (const g of fixture.groups) {
      const members = [
        ...g.users.map((n) => `uid=${n},${s.peopleDn}`),
        ...g.groups.map((n) => `cn=${n},${s.groupsDn}`),
      ];
      // groupOfNames must have a member: an empty group names itself' parent, as is customary.
      if (members.length === 0) members.push(s.baseDn);
      entries.push(
        [
          `dn: cn=${g.name},${s.groupsDn}`,
          'objectClass: groupOfNames',
          `cn: ${g.name}`,
          `description: ${g.description}`,
          ...members.map((m) => `member: ${m}`),
        ].join('\n'),
      );
    }
  }
  return entries.join('\n\n') + '\n';
}

/**
 * Starts a slapd of its own (with `tls`, also on ldaps:// with a self-signed certificate for 127.0.0.1), loaded with `fixture` (users under ou=people, groups under
 * ou=groups, the ppolicy default policy) when given.
 *
 * @example
 * ```ts
 * const slapd = await startSlapd({ fixture: DIRECTORY_FIXTURE });
 * try { ... } finally { await slapd.stop(); }
 * ```
 */
export async function startSlapd(
  options: { fixture?: DirectoryFixture; policy?: SlapdPolicy; now?: number; tls?: boolean } = {},
): Promise<TestSlapd> {
  const dir = await mkdtemp(join(tmpdir(), 'tandem-slapd-'));
  let child: ChildProcess | undefined;
  const stop = async (): Promise<void> => {
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((r) => child!.once('exit', () => r()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child?.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const baseDn = 'dc=tandem,dc=test';
    const s = {
      baseDn,
      peopleDn: `ou=people,${baseDn}`,
      groupsDn: `ou=groups,${baseDn}`,
      policyDn: `cn=default,ou=policies,${baseDn}`,
      rootDn: `cn=admin,${baseDn}`,
      rootPassword: randomBytes(12).toString('base64url'),
      serviceDn: `cn=tandem-svc,${baseDn}`,
      servicePassword: randomBytes(12).toString('base64url'),
      policy: options.policy ?? DEFAULT_SLAPD_POLICY,
    };
    await mkdir(join(dir, 'slapd.d'));
    await mkdir(join(dir, 'db'));
    let certificatePem: string | undefined;
    if (options.tls) {
      // A self-signed certificate for 127.0.0.1 (the IP in subjectAltName: Node checks it).
      await run('openssl', [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '2',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ]);
      certificatePem = await readFile(join(dir, 'cert.pem'), 'utf8');
    }
    const config = configLdif(dir, baseDn, s.rootDn, s.rootPassword, s.serviceDn, s.policyDn, options.tls === true);
    await writeFile(join(dir, 'config.ldif'), config);
    await run(SLAPADD, ['-n', '0', '-F', join(dir, 'slapd.d'), '-l', join(dir, 'config.ldif')]);
    await writeFile(join(dir, 'data.ldif'), dataLdif(s, options.fixture, options.now ?? Date.now()));
    await run(SLAPADD, ['-q', '-F', join(dir, 'slapd.d'), '-b', baseDn, '-l', join(dir, 'data.ldif')]);
    let port = 0;
    let url = '';
    let ldapsUrl: string | undefined;
    for (let attempt = 0; ; attempt++) {
      port = await freePort();
      url = `ldap://127.0.0.1:${port}`;
      ldapsUrl = options.tls ? `ldaps://127.0.0.1:${await freePort()}` : undefined;
      const listeners = [`${url}/`, ...(ldapsUrl ? [`${ldapsUrl}/`] : [])].join(' ');
      const c = spawn(SLAPD, ['-d', '0', '-F', join(dir, 'slapd.d'), '-h', listeners], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      child = c;
      let stderr = '';
      c.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
      const up = await waitUntilServing(url, c);
      if (up) break;
      await new Promise<void>((r) => (c.exitCode !== null || c.signalCode !== null ? r() : c.once('exit', () => r())));
      if (attempt >= 3) throw new Error(`slapd did not start on ${url}: ${stderr}`);
    }
    return { ...s, url, port, dir, ldapsUrl, certificatePem, userDn: (name) => `uid=${name},${s.peopleDn}`, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Waits (up to 60 s) until slapd answers a root DSE search; false if it exited first. */
async function waitUntilServing(url: string, child: ChildProcess): Promise<boolean> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) return false;
    const c = new Client({ url, timeout: 2000, connectTimeout: 2000 });
    try {
      await c.search('', { scope: 'base', attributes: ['namingContexts'] });
      return true;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    } finally {
      await c.unbind().catch(() => undefined);
    }
  }
  return false;
}
