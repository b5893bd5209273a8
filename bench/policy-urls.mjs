// Web redirection matcher benchmark (issue 5).
//
// 10,000 rules of every kind and 1,000,000 URLs; the compiled matcher against a naive linear
// scan of the same rules, in the same run, on the same URLs (the naive scan on a sample, since
// it is slow). Both are checked to give the same decision on the sample. Run against the built
// dist of @tandem/core:
//
//   npx tsc -b && node bench/policy-urls.mjs [--rules 10000] [--urls 1000000] [--naive 20000]
import {
  compileUrlMatcher,
  compileUrlRule,
  describeUrlRule,
  linearUrlMatcher,
  normalizeUrl,
  PolicyEngine,
} from '@tandem/core';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const RULES = arg('rules', 10_000);
const URLS = arg('urls', 1_000_000);
const NAIVE = Math.min(arg('naive', 20_000), URLS);

// Deterministic pseudo-random numbers (mulberry32), so every run measures the same data.
let seed = 0x5eed;
const rand = () => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const int = (n) => Math.floor(rand() * n);
const pick = (a) => a[int(a.length)];
const WORDS = [
  'app',
  'erp',
  'hr',
  'crm',
  'intranet',
  'legacy',
  'portal',
  'wiki',
  'mail',
  'sales',
  'finance',
  'ops',
  'dev',
  'test',
  'docs',
];
const TLDS = ['example', 'corp', 'local', 'test', 'com', 'net'];
const domain = () => `${pick(WORDS)}${int(2000)}.${pick(WORDS)}${int(50)}.${pick(TLDS)}`;
const ipv4 = () => `${10 + int(3)}.${int(256)}.${int(256)}.${int(256)}`;

// --- rules: every kind -------------------------------------------------------------------
const ruleInputs = [];
const domains = [];
const v4Prefixes = [];
for (let i = 0; i < RULES; i++) {
  const r = rand();
  const target = rand() < 0.7 ? 'guest' : 'host';
  let rule;
  if (r < 0.35) {
    const d = domain();
    domains.push(d);
    rule = { match: { domainSuffix: d }, target };
  } else if (r < 0.5) {
    const d = `www.${domain()}`;
    domains.push(d);
    rule = { match: { host: d }, target };
  } else if (r < 0.6) {
    const d = domain();
    domains.push(`x.${d}`);
    rule = { match: { subdomainsOf: d }, target };
  } else if (r < 0.7) {
    const d = domain();
    domains.push(`a.${d}`);
    rule = { match: { url: `http://*.${d}/${pick(WORDS)}/*` }, target };
  } else if (r < 0.78) {
    const d = domain();
    domains.push(d);
    rule = { match: { domainSuffix: d }, pathPrefix: `/${pick(WORDS)}`, target };
  } else if (r < 0.83) {
    const d = domain();
    domains.push(d);
    rule = { match: { domainSuffix: d }, scheme: 'https', port: 8443, target };
  } else if (r < 0.95) {
    const len = pick([8, 12, 16, 20, 24, 24, 28, 32]);
    const a = ipv4();
    v4Prefixes.push(a);
    rule = { match: { ipPrefix: `${a}/${len}` }, target };
  } else if (r < 0.98) {
    rule = {
      match: {
        ipPrefix: `fd${int(256).toString(16).padStart(2, '0')}:${int(65536).toString(16)}::/${pick([16, 32, 48, 64])}`,
      },
      target,
    };
  } else if (r < 0.995) {
    const d = domain();
    domains.push(d);
    rule = { match: { url: `https://${d}:8080/api/*/v1` }, target };
  } else {
    rule = { match: { localNames: true }, direction: 'host-to-guest', target };
  }
  ruleInputs.push(rule);
}
const ref = (i, rule) => ({
  layer: 'package-default',
  source: 'bench',
  path: `rules[${i}]`,
  label: `rules[${i}]`,
  text: describeUrlRule(rule),
  appliesTo: 'everyone',
});
const t0 = performance.now();
const rules = ruleInputs.map((r, i) => compileUrlRule(r, ref(i, r)));
const compiled = compileUrlMatcher(rules);
const compileMs = performance.now() - t0;

const naive = linearUrlMatcher(rules);

// --- URLs: hits, near misses and misses, in the forms people and attackers write -----------
const urls = new Array(URLS);
for (let i = 0; i < URLS; i++) {
  const r = rand();
  const scheme = rand() < 0.6 ? 'http' : 'https';
  const path = `/${pick(WORDS)}/${int(100)}`;
  if (r < 0.45) {
    const d = pick(domains);
    const host = rand() < 0.5 ? d : `${pick(WORDS)}.${d}`;
    urls[i] =
      `${scheme}://${rand() < 0.1 ? host.toUpperCase() + '.' : host}${rand() < 0.05 ? ':8443' : ''}${path}?q=${i}`;
  } else if (r < 0.55) {
    urls[i] = `${scheme}://phish${pick(domains)}${path}`; // not on a label boundary: must not match
  } else if (r < 0.75) {
    urls[i] = `${scheme}://${domain()}${path}`;
  } else if (r < 0.85) {
    const a = rand() < 0.5 ? pick(v4Prefixes) : ipv4();
    urls[i] = `${scheme}://${a}${path}`;
  } else if (r < 0.88) {
    urls[i] =
      `${scheme}://[fd${int(256).toString(16).padStart(2, '0')}:${int(65536).toString(16)}::${int(65536).toString(16)}]${path}`;
  } else if (r < 0.9) {
    urls[i] = `http://${pick(WORDS)}${int(10)}/`; // local names
  } else if (r < 0.93) {
    urls[i] = `${scheme}://user:pw@${pick(domains)}:${scheme === 'http' ? 80 : 443}/a/../${pick(WORDS)}/%7e${int(9)}`;
  } else if (r < 0.95) {
    urls[i] = `http://0x0a.${int(256)}.${int(65536)}/`; // IPv4 in an odd form
  } else {
    urls[i] = `${scheme}://${pick(WORDS)}.${domain()}${path}`;
  }
}

// Each measure runs three times and keeps the best, after a warm-up pass, so that JIT warm-up
// weighs as little as it can. Both wall time and this process's CPU time are kept: on a shared
// machine the CPU time is what one core spent, the wall time includes waiting for a core.
const best = (fn) => {
  fn(Math.min(URLS, 100_000));
  let wall = Number.POSITIVE_INFINITY;
  let cpu = Number.POSITIVE_INFINITY;
  for (let rep = 0; rep < 3; rep++) {
    const c0 = process.cpuUsage();
    const t = performance.now();
    fn(URLS);
    wall = Math.min(wall, performance.now() - t);
    const c = process.cpuUsage(c0);
    cpu = Math.min(cpu, (c.user + c.system) / 1000);
  }
  return { wall, cpu };
};
let sink = 0;
let matched = 0;
let guest = 0;
for (let i = 0; i < URLS; i++) {
  const rule = compiled.match(normalizeUrl(urls[i]), 'host-to-guest');
  if (rule) matched++;
  if (rule?.target === 'guest') guest++;
}

// --- compiled matcher, end to end: normalize and decide ----------------------------------
const compiledEndToEndMs = best((n) => {
  for (let i = 0; i < n; i++) sink += compiled.match(normalizeUrl(urls[i]), 'host-to-guest') ? 1 : 0;
});

// --- the same, on the URLs already in canonical form (as browsers hand them over) -----------
const canonical = urls.filter((u) => normalizeUrl(u).href === u);
const CANON = canonical.length;
const canonicalMs = best((n) => {
  const m = Math.min(n, CANON);
  for (let i = 0; i < m; i++) sink += compiled.match(normalizeUrl(canonical[i]), 'host-to-guest') ? 1 : 0;
});

// --- compiled matcher alone, on normalized URLs ------------------------------------------
const normalized = urls.map((u) => normalizeUrl(u));
const compiledMatchMs = best((n) => {
  for (let i = 0; i < n; i++) sink += compiled.match(normalized[i], 'host-to-guest') ? 1 : 0;
});

// --- the engine: the same rules in a workspace, full explained decisions -------------------
const workspace = {
  apiVersion: 'tandem/v1',
  kind: 'Workspace',
  metadata: { name: 'bench', version: '1.0.0' },
  spec: {
    image: { source: 'x.qcow2', format: 'qcow2' },
    guestOs: 'windows',
    hardware: { memory: { fixedMiB: 512 }, cpus: 1, guestChannel: true },
    network: { mode: 'nat', profiles: [] },
    display: { mode: 'seamless' },
    publishedApps: [],
    webRedirection: {
      enabled: true,
      defaultTarget: 'host',
      hostToGuest: true,
      guestToHost: false,
      rules: ruleInputs.map((r) => ({ direction: 'any', ...r })),
    },
    dataTransfer: [],
    usage: { lockOnHostSleep: true, mode: 'persistent', onSessionEnd: 'shutdown' },
    provisioning: { users: [], groups: [] },
  },
};
const policy = new PolicyEngine({ workspace }).forSubject({ user: 'bench' });
const engineMs = best((n) => {
  for (let i = 0; i < n; i++) sink += policy.decideUrl(urls[i]).redirect ? 1 : 0;
});

// --- naive linear scan, same rules, on a sample of the same URLs ---------------------------
const once = (fn) => {
  const c0 = process.cpuUsage();
  const t = performance.now();
  fn();
  const c = process.cpuUsage(c0);
  return { wall: performance.now() - t, cpu: (c.user + c.system) / 1000 };
};
const naiveRules = new Array(NAIVE);
const naiveEndToEndMs = once(() => {
  for (let i = 0; i < NAIVE; i++) naiveRules[i] = naive.match(normalizeUrl(urls[i]), 'host-to-guest');
});
const naiveMatchMs = once(() => {
  for (let i = 0; i < NAIVE; i++) sink += naive.match(normalized[i], 'host-to-guest') ? 1 : 0;
});
let mismatches = 0;
for (let i = 0; i < NAIVE; i++) if (naiveRules[i] !== compiled.match(normalized[i], 'host-to-guest')) mismatches++;

const rate = (n, ms) => n / (ms / 1000);
const fmt = (x) => Math.round(x).toLocaleString('en-US');
const row = (label, n, t) =>
  console.log(
    `${label.padEnd(32)} ${fmt(rate(n, t.cpu)).padStart(11)} decisions/s per CPU second  (${fmt(rate(n, t.wall))}/s wall)`,
  );
console.log(
  `node ${process.version}, ${RULES} rules, ${URLS} URLs (${fmt(matched)} matched a rule, ${fmt(guest)} to the guest); naive scan on the first ${NAIVE}`,
);
console.log(`compile ${RULES} rules: ${compileMs.toFixed(0)} ms`);
row('compiled, normalize + match', URLS, compiledEndToEndMs);
row(`  the ${fmt(CANON)} canonical URLs only`, CANON, canonicalMs);
row('compiled, match only', URLS, compiledMatchMs);
row('engine decideUrl (explained)', URLS, engineMs);
row('naive scan, normalize + match', NAIVE, naiveEndToEndMs);
row('naive scan, match only', NAIVE, naiveMatchMs);
const ratio = (a, na, b, nb) => (rate(a, na.cpu) / rate(b, nb.cpu)).toFixed(0);
console.log(
  `speed-up over the naive scan: ${ratio(URLS, compiledEndToEndMs, NAIVE, naiveEndToEndMs)}x normalize + match, ${ratio(URLS, compiledMatchMs, NAIVE, naiveMatchMs)}x match only`,
);
console.log(`compiled and naive disagree on ${mismatches} of ${NAIVE} URLs`);
if (mismatches > 0) process.exitCode = 1;
if (sink < 0) console.log(sink); // keeps the loops from being optimized away
