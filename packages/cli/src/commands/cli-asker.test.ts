import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EventBus, SqliteEventSink, type AnyTandemEvent, type TransferDecision } from '@tandem/core';
import { cliHarness } from '../cli-harness.test-helper.js';
import { ExitCode } from '../exit-codes.js';
import { cliAskMode, cliAsker, parseAskAnswer } from './cli-asker.js';

const decision = (subject: string): TransferDecision =>
  ({
    request: { channel: 'clipboard', direction: 'guest-to-host', contentType: subject },
    outcome: 'ask',
    reason: 'rule 1 asks',
  }) as unknown as TransferDecision;

describe('cliAskMode', () => {
  it('flags for scripts first, then a prompt on a terminal, else not interactive', () => {
    expect(cliAskMode({ yes: true, stdinIsTTY: false })).toBe('yes');
    expect(cliAskMode({ no: true, stdinIsTTY: true })).toBe('no');
    expect(cliAskMode({ askOnStdin: true, stdinIsTTY: false })).toBe('prompt');
    expect(cliAskMode({ stdinIsTTY: true })).toBe('prompt');
    expect(cliAskMode({ stdinIsTTY: false })).toBe('not-interactive');
    // The password takes stdin whole: no prompt can read from it.
    expect(cliAskMode({ stdinIsTTY: true, passwordStdin: true })).toBe('not-interactive');
    expect(() => cliAskMode({ yes: true, no: true, stdinIsTTY: true })).toThrow(/--yes and --no contradict/);
    expect(() => cliAskMode({ askOnStdin: true, passwordStdin: true, stdinIsTTY: false })).toThrow(/both read stdin/);
  });

  it('only y or yes is a yes', () => {
    expect(['y', 'Y', 'yes', ' YES '].map(parseAskAnswer)).toEqual(['allow', 'allow', 'allow', 'allow']);
    expect(['', 'n', 'no', 'yess', 'sure', undefined].map(parseAskAnswer)).toEqual(Array(6).fill('deny'));
  });
});

describe('cliAsker', () => {
  it('asks one line per question, in order, and denies at the end of input; each answer is an event', async () => {
    const input = Readable.from(['y\n', 'nope\n']);
    const output = new PassThrough();
    let asked = '';
    output.on('data', (c: Buffer) => (asked += c.toString()));
    const events = new EventBus();
    const seen: AnyTandemEvent[] = [];
    events.on('policy.decision', (e) => seen.push(e));
    const asker = cliAsker({ mode: 'prompt', input, output, events });
    try {
      expect(await asker.ask(decision('text'))).toBe('allow');
      expect(await asker.ask(decision('image'))).toBe('deny');
      expect(await asker.ask(decision('files'))).toBe('deny');
    } finally {
      asker.close();
    }
    expect(asked).toContain('Allow clipboard guest-to-host (text)? (rule 1 asks) [y/N] ');
    expect(asked).toContain('Allow clipboard guest-to-host (image)?');
    expect(seen.map((e) => (e.type === 'policy.decision' ? [e.data.outcome, e.data.reason] : []))).toEqual([
      ['allow', 'rule 1 asks; the user answered allow'],
      ['deny', 'rule 1 asks; the user answered deny'],
      ['deny', 'rule 1 asks; the user answered deny'],
    ]);
  });

  it('denies a question nobody answers within the timeout', async () => {
    const input = new PassThrough();
    const asker = cliAsker({ mode: 'prompt', input, output: new PassThrough(), timeoutMs: 50 });
    try {
      expect(await asker.ask(decision('text'))).toBe('deny');
    } finally {
      asker.close();
      input.destroy();
    }
  });

  it('--yes and --no answer without reading anything', async () => {
    const input = new PassThrough();
    for (const [mode, want] of [
      ['yes', 'allow'],
      ['no', 'deny'],
    ] as const) {
      const asker = cliAsker({ mode, input, output: new PassThrough() });
      expect(await asker.ask(decision('text'))).toBe(want);
      asker.close();
    }
    expect(input.readableLength).toBe(0);
    input.destroy();
  });
});

const WORKSPACE = `
apiVersion: tandem/v1
kind: Workspace
metadata: { name: legacy-erp, version: 1.0.0 }
spec:
  image: { source: ./erp.qcow2, format: qcow2 }
  hardware: { memory: { fixedMiB: 512 } }
  guestOs: linux
  publishedApps: [{ id: erp, name: Legacy ERP, command: /opt/erp/bin/erp }]
  dataTransfer:
    - { channel: clipboard, direction: host-to-guest, action: ask }
`;

describe('tandem apps launch answers the policy asks', () => {
  let dir: string;
  const tandem = cliHarness(() => join(dir, 'state'));
  const stdin = Object.getOwnPropertyDescriptor(process, 'stdin')!;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tandem-ask-'));
    writeFileSync(join(dir, 'erp.yaml'), WORKSPACE);
    const r = await tandem('up', join(dir, 'erp.yaml'), '--adapter', 'mock');
    expect(r.code, r.stderr).toBe(ExitCode.ok);
  });
  afterEach(() => {
    Object.defineProperty(process, 'stdin', stdin);
    rmSync(dir, { recursive: true, force: true });
  });
  const feed = (text: string): void => {
    const fake = Object.assign(Readable.from([text]), { isTTY: false });
    Object.defineProperty(process, 'stdin', { value: fake, configurable: true });
  };
  const answers = (json: { asks: { answers: { contentType: string; permission: string }[] } }) =>
    json.asks.answers.map((a) => `${a.contentType}:${a.permission}`);

  it('--ask-on-stdin: a question per ask on stderr, the answers from stdin reach the transport', async () => {
    // The three clipboard content types host to guest are asked, in this order.
    feed('y\ny\nn\n');
    const r = await tandem('--json', 'apps', 'launch', 'erp', '--no-wait', '--ask-on-stdin');
    expect(r.code, r.stderr).toBe(ExitCode.ok);
    expect(answers(r.json)).toEqual(['text:allow', 'image:allow', 'files:deny']);
    expect(r.stderr).toContain('Allow clipboard host-to-guest (text)?');
    // Not every content type may cross, so the transport's clipboard stays shut (it cannot filter by type).
    expect(r.json.argv.join(' ')).toMatch(/--clipboard=no/);

    feed('y\ny\ny\n');
    const all = await tandem('--json', 'apps', 'launch', 'erp', '--no-wait', '--ask-on-stdin');
    expect(answers(all.json)).toEqual(['text:allow', 'image:allow', 'files:allow']);
    expect(all.json.argv.join(' ')).toMatch(/--clipboard=yes --clipboard-direction=to-server/);
    const store = new SqliteEventSink(join(dir, 'state', 'events.sqlite'));
    try {
      const reasons = store
        .query({ type: ['policy.decision'] })
        .map((e) => (e.type === 'policy.decision' ? e.data.reason : ''));
      expect(reasons.filter((x) => x.endsWith('the user answered allow')).length).toBe(5);
    } finally {
      store.close();
    }
  });

  it('not interactive: every ask is denied and the output says so; --yes allows them', async () => {
    feed('y\ny\ny\n');
    const r = await tandem('apps', 'launch', 'erp', '--no-wait');
    expect(r.code, r.stderr).toBe(ExitCode.ok);
    expect(r.stdout).toMatch(
      /^ask: not interactive \(stdin is no terminal\): 3 transfer\(s\) the policy says to ask about denied; pass --yes, --no or --ask-on-stdin$/m,
    );
    expect(r.stdout).toMatch(/--clipboard=no/);
    const yes = await tandem('--json', 'apps', 'launch', 'erp', '--no-wait', '--yes');
    expect(answers(yes.json)).toEqual(['text:allow', 'image:allow', 'files:allow']);
    expect(yes.json.asks.note).toBe('3 transfer(s) asked about (--yes): 3 allowed');
    const no = await tandem('--json', 'apps', 'launch', 'erp', '--no-wait', '--no');
    expect(answers(no.json)).toEqual(['text:deny', 'image:deny', 'files:deny']);
  });
});
