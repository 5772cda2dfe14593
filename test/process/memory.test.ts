// Header edits cost header-sized memory: a 50 MB message to 20 recipients whose chains each make a
// different edit of the header block stays under 120 MB peak RSS in the NQqueue process (standalone:
// the node process itself; daemon mode: `nqqueue serve`), and every copy is the original body byte for
// byte under its own edited header block. The edits: an exec plugin adds a field per recipient, then
// either the dspam plugin removes the forged X-DSPAM-* fields from each of those header blocks, or the
// real rspamd asks for its milter removal (the sender's X-Spam:) and a Subject rewrite on each.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { requireDaemon } from '../helpers/daemons.js';
import { DAEMON_MODE, setupsForThisFile, withoutTrace, type Setup } from '../helpers/nqq.js';
import { checkEnvelope, decodeDelivery } from '../helpers/qmail-queue-stand-in.js';

const make = setupsForThisFile();

const LIMIT_KB = 120 * 1024;
const RCPTS = Array.from({ length: 20 }, (_, i) => `user${String(i).padStart(2, '0')}@example.com`);

/** Peak RSS of a node process, written by the process itself when it exits (a --require preload). */
const HWM_PRELOAD = `'use strict';
const fs = require('node:fs');
const out = process.env.NQQ_HWM_FILE;
// Children (qmail-queue, plugins) must not measure themselves into the same file.
delete process.env.NQQ_HWM_FILE;
delete process.env.NODE_OPTIONS;
if (out) process.on('exit', () => {
  const m = /VmHWM:\\s+(\\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  fs.writeFileSync(out, m ? m[1] : '');
});
`;

function vmHwmKB(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmHWM for ${pid}`);
  return Number(m[1]);
}

function bigMessage(bytes: number, extra: string[] = []): { head: Buffer; body: Buffer; buf: Buffer } {
  const head = Buffer.from(
    [
      ...extra,
      'Received: from client.example (HELO helo.client.example) (192.0.2.7)',
      '  by mx.example.com with SMTP; 26 Nov 2026 10:00:00 -0000',
      'From: Sender <sender@client.example>',
      'To: many@example.com',
      'X-DSPAM-Result: Whitelisted',
      'Subject: the big one',
      'X-DSPAM-Signature: forged-by-the-sender',
      'Message-ID: <big@client.example>',
      'MIME-Version: 1.0',
      'Content-Type: application/octet-stream',
      'Content-Transfer-Encoding: base64',
      '',
      '',
    ].join('\n'),
    'latin1',
  );
  const lines = Math.floor((bytes - head.length) / 77);
  const body = Buffer.alloc(lines * 77);
  const b64 = randomBytes(lines * 57).toString('base64');
  for (let i = 0; i < lines; i++) {
    body.write(b64.slice(i * 76, i * 76 + 76), i * 77, 'latin1');
    body[i * 77 + 76] = 0x0a;
  }
  return { head, body, buf: Buffer.concat([head, body]) };
}

test('50 MB to 20 recipients with 20 different header edits: under 120 MB peak RSS, every copy exact', { timeout: 300_000 }, async (t) => {
  const s = make();
  const tag = s.script('tag.sh', '#!/bin/sh\ncat >/dev/null\nprintf "X-Tag: for %s\\n" "$NQQ_RECIPIENT"\n');
  // dspam is not packaged here: a stand-in that answers as `dspam --stdout` does (its X-DSPAM-* fields
  // at the top of its output's header block) and reads the whole message.
  const dspam = s.script('dspam', '#!/bin/sh\nprintf "X-DSPAM-Result: Innocent\\nX-DSPAM-Signature: sig-%s\\n\\n" "$4"\ncat >/dev/null\n');
  s.write('nqqueue.cfb', `:exec=${tag};dspam=bin=${dspam}\n`);
  s.write('nqqueue.conf', 'deadline = 280s\nqueue_timeout = 200s\n');
  const { head, body, buf } = bigMessage(50_000_000);
  const kept = head.toString('latin1').replace(/^X-DSPAM-[^\n]*\n/gm, '');
  await runAndCheck(t, s, buf, body, (rcpt, copyHead) => {
    assert.equal(copyHead, `X-DSPAM-Result: Innocent\nX-DSPAM-Signature: sig-${rcpt}\nX-Tag: for ${rcpt}\n${kept}`, rcpt);
  });
});

test('the real rspamd: its milter removal (a forged X-Spam:) and Subject rewrite on 20 different header blocks of 50 MB, under 120 MB', { timeout: 300_000 }, async (t) => {
  const url = requireDaemon('NQQ_TEST_RSPAMD_URL', t);
  if (!url) return;
  const s = make();
  const tag = s.script('tag.sh', '#!/bin/sh\ncat >/dev/null\nprintf "X-Tag: for %s\\n" "$NQQ_RECIPIENT"\n');
  // nqq_rewrite (test/daemons/rspamd) puts "rewrite subject" at 5 points; this message scores over it.
  s.write('nqqueue.cfb', `:exec=${tag};rspamd=settings=nqq_rewrite\n`);
  s.write('nqqueue.conf', `deadline = 280s\nqueue_timeout = 200s\n[rspamd]\nurl = ${url}\ntimeout = 120\n`);
  const { head, body, buf } = bigMessage(50_000_000, ['X-Spam: Yes, sent by the sender']);
  const kept = head
    .toString('latin1')
    .replace(/^X-Spam: [^\n]*\n/m, '')
    .replace('Subject: the big one\n', 'Subject: *** SPAM *** the big one\n');
  await runAndCheck(t, s, buf, body, (rcpt, copyHead) => {
    // rspamd's own headers first (added after the edit), then the edited block, exact.
    const at = copyHead.indexOf(`X-Tag: for ${rcpt}\n`);
    assert.ok(at > 0, copyHead.slice(0, 2000));
    assert.match(copyHead.slice(0, at), /^X-Spam-Status: Yes, score=/m);
    assert.equal(copyHead.slice(at), `X-Tag: for ${rcpt}\n${kept}`, rcpt);
  });
});

/**
 * Runs `message` to RCPTS, measures the NQqueue process's peak RSS (standalone: node's own VmHWM at
 * its exit; daemon mode: nqqueue serve's VmHWM) against the limit, and checks each copy: one per
 * recipient, the body byte for byte, the header block by `checkHead` — read one copy at a time.
 */
async function runAndCheck(
  t: { diagnostic(m: string): void },
  s: Setup,
  message: Buffer,
  body: Buffer,
  checkHead: (rcpt: string, head: string) => void,
): Promise<void> {
  const preload = join(s.dir, 'hwm.cjs');
  writeFileSync(preload, HWM_PRELOAD);
  const hwmFile = join(s.dir, 'hwm');
  const r = await s.run({
    to: RCPTS,
    message,
    timeoutMs: 280_000,
    extraEnv: DAEMON_MODE ? {} : { NODE_OPTIONS: `--require ${preload}`, NQQ_HWM_FILE: hwmFile },
  });
  assert.equal(r.code, 0, r.stderr);

  const peakKB = DAEMON_MODE ? vmHwmKB(s.daemonPid()!) : Number(readFileSync(hwmFile, 'utf8'));
  t.diagnostic(`peak RSS ${DAEMON_MODE ? 'nqqueue serve' : 'bin/nqqueue'}: ${(peakKB / 1024).toFixed(1)} MB`);
  assert.ok(peakKB > 10 * 1024, `measured ${peakKB} kB: the measurement did not work`);
  assert.ok(peakKB < LIMIT_KB, `peak RSS ${(peakKB / 1024).toFixed(1)} MB (${DAEMON_MODE ? 'nqqueue serve' : 'bin/nqqueue'}), limit 120 MB`);

  const dir = join(s.standIn.dir, 'deliveries');
  const files = readdirSync(dir).filter((n) => /^\d+$/.test(n));
  assert.equal(files.length, RCPTS.length, 'one copy per recipient: every header block differs');
  const seen = new Set<string>();
  for (const f of files) {
    const d = decodeDelivery(readFileSync(join(dir, f)));
    const env = checkEnvelope(d.envelope);
    assert.ok(env.ok);
    assert.equal(env.recipients.length, 1);
    const rcpt = env.recipients[0]!.toString();
    seen.add(rcpt);
    const copy = withoutTrace(d.message);
    checkHead(rcpt, copy.subarray(0, copy.length - body.length).toString('latin1'));
    assert.ok(copy.subarray(copy.length - body.length).equals(body), `${rcpt}: body differs`);
  }
  assert.deepEqual([...seen].sort(), RCPTS);
}

test('a header block over 1 MiB is not edited (nor copied): the plugin that would edit it refuses the message', async () => {
  const s = make();
  const dspam = s.script('dspam', '#!/bin/sh\nprintf "X-DSPAM-Result: Innocent\\n\\n"\ncat >/dev/null\n');
  s.write('nqqueue.cfb', `:dspam=bin=${dspam}\n`);
  const pad = Array.from({ length: 20_000 }, (_, i) => `X-Pad-${i}: ${'p'.repeat(60)}\n`).join('');
  // A forged field behind the padding: editing only the first part would let it through.
  const message = `Subject: padded\n${pad}X-DSPAM-Result: Whitelisted\n\nbody\n`;
  const r = await s.run({ to: ['a@example.com', 'b@example.com'], message });
  assert.equal(r.code, 82, r.stderr);
  assert.equal(r.errorText.toString(), 'Dmessage refused: its header block is too large (#5.3.4)');
  assert.equal(s.standIn.calls().length, 0);
});
