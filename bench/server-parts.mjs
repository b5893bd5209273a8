// The CPU cost of each piece of one check-in, measured alone in this process (issue 15): what
// the management server does per request besides the database, to say which part bounds the
// check-ins per second on this machine. One realistic check-in body (10 events, as
// bench/server.mjs sends), each step repeated, the CPU time (user + system) per operation.
//
//   npx tsc -b && node bench/server-parts.mjs [--iterations 20000]
import { generateKeyPairSync, randomBytes, randomUUID, sign } from 'node:crypto';
import { Agent, createServer, request } from 'node:http';
import { devicePublicKeyOf } from '@tandem/core/crypto';
import { CheckInRequestSchema, signingInput, verifyDeviceSignature } from '@tandem/core/management';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
};
const N = Number(arg('iterations', 20000));

const x = generateKeyPairSync('x25519');
const ed = generateKeyPairSync('ed25519');
const pub = devicePublicKeyOf(x.publicKey.export({ format: 'jwk' }).x, ed.publicKey.export({ format: 'jwk' }).x);
const now = Date.now();
const events = Array.from({ length: 10 }, (_, i) => ({
  id: randomUUID(),
  type: i % 5 < 3 ? 'session.transition' : i % 5 < 4 ? 'policy.decision' : 'sync.progress',
  at: new Date(now - (10 - i) * 6000).toISOString(),
  workspace: 'quickstart',
  session: 'quickstart-abcdef',
  data:
    i % 5 < 3
      ? { from: 'stopped', to: 'running', operation: 'start', vm: 'tandem-quickstart' }
      : i % 5 < 4
        ? {
            kind: 'url',
            subject: `https://intranet.example.org/app/${i}`,
            outcome: 'guest',
            rule: '*.example.org',
            layer: 'machine-policy',
            reason: 'matched a guest rule',
          }
        : { workspace: 'quickstart', version: '1.0.0', fetchedBytes: 65536 * i, totalBytes: 10485760 },
}));
const payload = {
  token: 'abcdefghijklmnopqrstuv',
  agentVersion: '0.1.0',
  workspaces: [{ workspace: 'quickstart', version: '1.0.0', state: 'running' }],
  events,
};
const body = Buffer.from(JSON.stringify(payload));
const time = new Date().toISOString();
const nonce = randomBytes(16).toString('base64url');
const input = signingInput({ method: 'POST', path: '/v1/check-in', device: pub.deviceId, time, nonce, body });
const signature = sign(null, input, ed.privateKey).toString('base64url');

function measure(label, fn, n = N) {
  for (let i = 0; i < Math.min(n, 1000); i++) fn(i);
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) fn(i);
  const c = process.cpuUsage(c0);
  const us = (c.user + c.system) / n;
  console.log(JSON.stringify({ step: label, cpuMicrosecondsEach: Number(us.toFixed(1)) }));
  return us;
}

console.log(`# one check-in body: ${body.length} bytes, 10 events; ${N} iterations each`);
measure('ed25519 sign (the load generator, per request)', () => sign(null, input, ed.privateKey));
measure('signingInput (the bytes signed)', () =>
  signingInput({ method: 'POST', path: '/v1/check-in', device: pub.deviceId, time, nonce, body }),
);
measure('ed25519 verify (verifyDeviceSignature, key parsed once)', () => {
  if (!verifyDeviceSignature(pub.signingKey, input, signature)) throw new Error('bad');
});
measure('JSON.parse of the body', () => JSON.parse(body.toString('utf8')));
const parsed = JSON.parse(body.toString('utf8'));
measure('zod CheckInRequestSchema.safeParse', () => CheckInRequestSchema.safeParse(parsed));
measure('JSON.stringify of the 10 events (the rows written)', () => {
  for (const e of events) JSON.stringify(e);
});

// A node:http round trip on loopback with keep-alive, an empty JSON reply: the HTTP server and
// client's own cost per request (both sides in this process).
const server = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    const text = '{"status":"unchanged","token":"abcdefghijklmnopqrstuv","events":{"inserted":10,"duplicates":0}}';
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  });
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const port = server.address().port;
const agent = new Agent({ keepAlive: true, maxSockets: 16 });
const post = () =>
  new Promise((resolve, reject) => {
    const req = request(
      {
        agent,
        port,
        host: '127.0.0.1',
        path: '/v1/check-in',
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': body.length },
      },
      (res) => {
        res.resume();
        res.on('end', resolve);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
const M = Math.max(1000, Math.floor(N / 4));
for (let i = 0; i < 500; i++) await post();
const c0 = process.cpuUsage();
let done = 0;
await Promise.all(
  Array.from({ length: 16 }, async () => {
    while (done < M) {
      done++;
      await post();
    }
  }),
);
const c = process.cpuUsage(c0);
console.log(
  JSON.stringify({
    step: 'node:http POST round trip, server and client together (no TLS)',
    cpuMicrosecondsEach: Number(((c.user + c.system) / done).toFixed(1)),
  }),
);
agent.destroy();
server.close();
