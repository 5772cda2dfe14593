// `explain`, `test` and `quarantine list/show` show text from outside (addresses, headers, plugin texts)
// terminal-safe: control characters become visible escapes (\x1b, \u009b), never raw bytes.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { envelopeOf, pluginDir, SAMPLE, setupsForThisFile, type Setup } from '../helpers/nqq.js';
import { NQQUEUE_BIN } from '../helpers/smtpd.js';

const make = setupsForThisFile();

/** What a terminal would act on: C0 but newline and tab, DEL, C1 (U+0080-U+009F). */
function rawControls(s: string): string[] {
  // eslint-disable-next-line no-control-regex
  return [...s.matchAll(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/g)].map((m) => `U+${m[0].charCodeAt(0).toString(16).padStart(4, '0')} at ${m.index}`);
}

const ESC_CLEAR = '\x1b[2J';
const CSI = '\u009b'; // what the UTF-8 bytes \xc2\x9b decode to
const HOSTILE = `${ESC_CLEAR}${CSI}2J\r\x07`;

test('explain: hostile addresses are shown with visible escapes', () => {
  const s = make({ rcpthosts: ['example.com'] });
  s.write('nqqueue.cfb', ':black=x@y.example\n');
  const r = s.command(['explain', '--from', `a${HOSTILE}@client.example`, '--to', `b${HOSTILE}@example.com`]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(rawControls(r.stdout + r.stderr), []);
  assert.match(r.stdout, /sender <a\\x1b\[2J\\u009b2J\\x0d\\x07@client\.example>/);
  assert.match(r.stdout, /recipient <b\\x1b\[2J\\u009b2J\\x0d\\x07@example\.com> \(local\)/);
});

test('test: a hostile sender, a plugin refusal text and a header a plugin adds are shown escaped', () => {
  const s = make({ rcpthosts: ['example.com'] });
  // C1 in a header value is allowed through (it is not a line break), so `test` must escape it itself.
  const tag = s.script('tag.sh', `#!/bin/sh\ncat >/dev/null\nprintf 'X-Tag: \\302\\2332J tagged\\n'\n`);
  const refuse = s.script('refuse.sh', `#!/bin/sh\ncat >/dev/null\nprintf 'no \\033[2J\\302\\2332J\\007 way\\r\\n'\nexit 100\n`);
  s.write('nqqueue.cfb', `a@example.com:exec=${tag}\nb@example.com:exec=${refuse}\n`);
  const msg = SAMPLE.replace('Subject: test message', `Subject: ${HOSTILE}`);
  const r = s.command(['test', '--from', `s${CSI}@client.example`, '--to', 'a@example.com', '--to', 'b@example.com'], msg);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(rawControls(r.stdout + r.stderr), [], r.stdout);
  assert.match(r.stdout, /from <s\\u009b@client\.example>/);
  assert.match(r.stdout, /\| X-Tag: \\u009b2J tagged/);
  assert.match(r.stdout, /reject - no \\x1b\[2J\\u009b2J\\x07 way/);
  const all = s.command(['test', '--from', 's@client.example', '--to', 'b@example.com'], msg);
  assert.match(all.stdout, /would refuse: 554 no \\x1b\[2J\\u009b2J\\x07 way/);
  assert.deepEqual(rawControls(all.stdout), []);
});

/** A quarantined message from a hostile sender, caught by a plugin whose details carry control characters. */
async function hostileItem(s: Setup): Promise<string> {
  const dir = pluginDir(s, {
    flagger: `export default {
  name: 'flagger', version: '1.0.0', stages: ['per-user'],
  configure: () => ({}), scope: () => undefined,
  async run() { return { verdict: 'accept', flagged: true, details: { why: 'bad ${'\\x1b'}[2J ${'\\u009b'}2J ${'\\x07'}' } }; },
};
`,
  });
  s.write('nqqueue.conf', `plugin_dir = ${dir}\n`);
  s.write('nqqueue.cfb', ':flagger;quarantine=all\n');
  const [head, body] = SAMPLE.replace('Subject: test message', `Subject: ${HOSTILE}`).split('\n\n');
  // A raw \x9b byte too (not UTF-8: a terminal in an 8-bit mode takes it for CSI), in a header line.
  const msg = Buffer.concat([Buffer.from(`${head}\nX-Raw: a`), Buffer.from([0x9b]), Buffer.from(`2J\n\n${body}`)]);
  const sender = Buffer.concat([Buffer.from(`evil${CSI}2J`, 'utf8'), Buffer.from([0x9b]), Buffer.from('@client.example')]);
  const r = await s.run({ message: msg, envelope: envelopeOf(sender, ['rcpt@example.com']) });
  assert.equal(r.code, 0, r.stderr);
  const ids = readdirSync(join(s.home, 'quarantine')).filter((n) => /^[0-9a-z]{16,40}$/.test(n));
  assert.equal(ids.length, 1);
  return ids[0]!;
}

test('quarantine list and show: the sender, the plugin texts and the header block are escaped', async () => {
  const s = make();
  const id = await hostileItem(s);
  const list = s.command(['quarantine', 'list']);
  assert.equal(list.code, 0, list.stderr);
  assert.deepEqual(rawControls(list.stdout), [], list.stdout);
  assert.match(list.stdout, /<evil\\u009b2J[?\ufffd]@client\.example>/);
  const show = s.command(['quarantine', 'show', id]);
  assert.equal(show.code, 0, show.stderr);
  assert.deepEqual(rawControls(show.stdout), [], show.stdout);
  assert.match(show.stdout, /^sender: <evil\\u009b2J[?\ufffd]@client\.example>$/m);
  assert.equal(show.stdout.includes('\x9b'), false);
  assert.match(show.stdout, /^X-Raw: a\ufffd2J$/m);
  assert.match(show.stdout, /^caught by: flagger -> accept \{"why":"bad \\u001b\[2J \\u009b2J \\u0007"\}$/m);
  assert.match(show.stdout, /^Subject: \\x1b\[2J\\u009b2J\\x0d\\x07$/m);
});

test('quarantine show --raw writes the exact bytes to a pipe, and refuses a terminal', async () => {
  const s = make();
  const id = await hostileItem(s);
  const piped = s.command(['quarantine', 'show', '--raw', id]);
  assert.equal(piped.code, 0, piped.stderr);
  assert.ok(piped.stdout.includes(`Subject: ${HOSTILE}\n`), 'the raw bytes, for a program');
  // script(1) gives the command a real terminal as its stdout, as when an admin types it at a prompt.
  const env = Object.entries(s.env).map(([k, v]) => `${k}=${v}`).join(' ');
  const tty = spawnSync('script', ['-qec', `env ${env} ${NQQUEUE_BIN} quarantine show --raw ${id}; echo "exit=$?"`, '/dev/null'], {
    encoding: 'utf8',
    env: { PATH: '/usr/bin:/bin' },
    timeout: 30_000,
  });
  const out = tty.stdout.replace(/\r\n/g, '\n');
  assert.match(out, /redirect stdout/);
  assert.match(out, /exit=2\n/);
  assert.equal(out.includes(ESC_CLEAR), false, 'nothing of the message reached the terminal');
});
