// quarantine: its store (pending, commit, discard, claims, recovery), Maildir names, plain addresses,
// header-block editing and message keys used by the scanner plugins.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';

import { MemoryMessage, prefixMessage } from '../../src/intake/message.js';
import { headerFields, removeFields, replaceSubject } from '../../src/mime/header-block.js';
import { messageKey } from '../../src/plugin-api/message-key.js';
import { PluginConfigError } from '../../src/plugin-api/define.js';
import quarantine from '../../src/plugins/quarantine.js';
import { plainAddress } from '../../src/qmail/plain-address.js';
import { checkTemplate, maildirFolder, maildirProblem, prepareMaildir, uniqueName } from '../../src/quarantine/maildir.js';
import { QuarantineError, QuarantineStore, whyText } from '../../src/quarantine/store.js';
import { configure } from '../helpers/configure.js';

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
function home(): string {
  const d = mkdtempSync(join(tmpdir(), 'nqq-quarantine-'));
  dirs.push(d);
  return d;
}

const item = { messageId: 'm1', sender: Buffer.from('s@x.example'), recipient: Buffer.from('r@example.com+relay'), caughtBy: [] };

test('plain addresses only: nothing that could climb out of a path or pass for an option', () => {
  assert.deepEqual(plainAddress('Alice.B+tag@Example.COM'), { local: 'alice.b+tag', domain: 'example.com' });
  for (const bad of ['../x@example.com', 'a..b@example.com', '.a@example.com', '-a@example.com', 'a/b@example.com', 'a@exa/mple.com', 'a@..', 'a@-x.com', 'nodomain', '@example.com', 'a b@example.com', 'ä@example.com', 'a.@example.com']) {
    assert.equal(plainAddress(bad), undefined, bad);
  }
});

test('Maildir folder templates: %u and %d from a plain address only', () => {
  assert.equal(checkTemplate('/home/vpopmail/domains/%d/%u/Maildir/.Quarantine'), '/home/vpopmail/domains/%d/%u/Maildir/.Quarantine');
  for (const bad of ['relative/%u', '/a/../%u', '/a/%x', '/a/%', '/a/./b']) assert.throws(() => checkTemplate(bad), Error, bad);
  assert.deepEqual(maildirFolder('/m/%d/%u/.Q%%', 'Bob@Example.org'), { folder: '/m/example.org/bob/.Q%' });
  assert.ok('reason' in maildirFolder('/m/%d/%u', '../../root@example.org'));
  assert.match(uniqueName('host/with:colon', 1_700_000_000_123), /^1700000000\.M123\d{3}P\d+Q\d+R[0-9a-f]{16}\.host\\057with\\072colon$/);
});

test('configure: named results, q=, the template', () => {
  assert.deepEqual([...configure(quarantine, 'spamassassin,clamav').sources!].sort(), ['clamav', 'spamassassin']);
  assert.equal(configure(quarantine, 'all').sources, undefined);
  assert.equal(configure(quarantine, 'all,q=maildir', '[quarantine]\nmaildir = /m/%d/%u\n').template, '/m/%d/%u');
  assert.throws(() => configure(quarantine, ''), PluginConfigError);
  assert.throws(() => configure(quarantine, 'all,q=elsewhere'), PluginConfigError);
  assert.equal(quarantine.scope!(configure(quarantine, 'all'), 'a@x'), 'a@x');
});

test('store: an item appears only when committed; a discarded one leaves nothing', async () => {
  const h = home();
  const store = new QuarantineStore(h);
  const msg = new MemoryMessage(Buffer.from('Subject: x\n\nbody\n'));
  const p = await store.prepare(msg, item);
  assert.deepEqual(store.list(), []);
  p.commit();
  p.commit();
  const [meta] = store.list();
  assert.equal(meta!.id, p.id);
  assert.equal(Buffer.from(meta!.recipient.base64, 'base64').toString(), 'r@example.com+relay');
  assert.deepEqual(await store.get(p.id).message.buffer(), Buffer.from('Subject: x\n\nbody\n'));
  const d = await store.prepare(msg, item);
  d.discard();
  assert.equal(store.list().length, 1);
  assert.deepEqual(readdirSync(store.tmp), []);
});

test('store: a claim is exclusive; restore puts it back; a claim or pending item of a dead process is recovered', async () => {
  const h = home();
  const store = new QuarantineStore(h);
  const msg = new MemoryMessage(Buffer.from('a\n'));
  const p = await store.prepare(msg, item);
  p.commit();
  const claimed = store.claim(p.id);
  assert.throws(() => store.claim(p.id), (e: unknown) => e instanceof QuarantineError && e.notFound);
  claimed.restore();
  assert.equal(store.list().length, 1);
  // A process that died holding a claim, and one that died before its message was decided.
  const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  const pid = Number(dead.stdout);
  renameSync(join(store.dir, p.id), join(store.tmp, `${pid}.${p.id}.claim`));
  mkdirSync(join(store.tmp, `${pid}.abcdefabcdefabcdef.new`));
  assert.deepEqual(store.list().map((m) => m.id), [p.id]);
  assert.deepEqual(readdirSync(store.tmp), []);
  assert.throws(() => store.get('../etc'), /not a quarantine id/);
  assert.throws(() => store.get('0123456789abcdef0'), (e: unknown) => e instanceof QuarantineError && e.notFound);
});

test('store: a committed item is taken back when its message is deferred after all; one released meanwhile is left to the release', async () => {
  const h = home();
  const store = new QuarantineStore(h);
  const msg = new MemoryMessage(Buffer.from('Subject: x\n\nbody\n'));
  const p = await store.prepare(msg, { ...item, id: '0123456789abcdefabcd' });
  assert.equal(p.id, '0123456789abcdefabcd');
  p.commit();
  assert.equal(store.list().length, 1);
  p.discard();
  p.discard();
  assert.deepEqual(store.list(), []);
  assert.deepEqual(readdirSync(store.tmp), []);
  const q = await store.prepare(msg, item);
  q.commit();
  store.claim(q.id).remove();
  q.discard();
  assert.deepEqual(readdirSync(store.tmp), []);
  await assert.rejects(store.prepare(msg, { ...item, id: '../x' }), /not a quarantine id/);
});

test('Maildir: commit puts the copy in new/; discard takes it back from new/, or from cur/ once a mail client moved it', async () => {
  const folder = join(home(), 'Maildir', '.Q');
  mkdirSync(join(folder, '..'));
  const msg = new MemoryMessage(Buffer.from('Subject: x\n\nbody\n'));
  const a = await prepareMaildir(folder, Buffer.from('X-A: 1\n'), msg, 'mx.example.com');
  assert.deepEqual(readdirSync(join(folder, 'new')), []);
  a.commit();
  assert.deepEqual(readdirSync(join(folder, 'new')), [a.name]);
  a.discard();
  assert.deepEqual(readdirSync(join(folder, 'new')), []);
  const b = await prepareMaildir(folder, Buffer.from('X-B: 1\n'), msg, 'mx.example.com');
  b.commit();
  renameSync(join(folder, 'new', b.name), join(folder, 'cur', `${b.name}:2,S`));
  b.discard();
  assert.deepEqual(readdirSync(join(folder, 'cur')), []);
  const c = await prepareMaildir(folder, Buffer.from('X-C: 1\n'), msg, 'mx.example.com');
  c.discard();
  assert.deepEqual(readdirSync(join(folder, 'tmp')), []);
  assert.equal(maildirProblem(folder), undefined);
  assert.equal(maildirProblem(join(folder, '..', '.Other')), undefined, 'a folder that can be made in an existing Maildir');
  assert.match(maildirProblem(join(folder, '..', '..', 'nobody', 'Maildir', '.Q'))!, /^the Maildir .*nobody\/Maildir is missing \(ENOENT\)$/);
});

test('why an item is held', () => {
  assert.equal(
    whyText([
      { plugin: 'clamav', params: '', verdict: 'accept', details: { virus: 'Eicar' } },
      { plugin: 'spamassassin', params: '', verdict: 'accept', score: 1000, details: {} },
      { plugin: 'rspamd', params: '', verdict: 'accept', score: 7.25, details: { action: 'add header' } },
      { plugin: 'other', params: '', verdict: 'accept', details: {} },
    ]),
    'clamav: Eicar; spamassassin: score 1000.0; rspamd: add header, score 7.3; other',
  );
});

test('header block: remove fields by name and position, continuation lines with them; the body untouched', () => {
  const msg = Buffer.from('A: 1\nX-S: one\n\tcont\nB: 2\nx-s: two\nX-S: three\n\nX-S: body\n');
  assert.deepEqual(
    headerFields(msg).map((f) => f.name),
    ['A', 'X-S', 'B', 'x-s', 'X-S'],
  );
  assert.equal(removeFields(msg, (n) => n.toLowerCase() === 'x-s')!.toString(), 'A: 1\nB: 2\n\nX-S: body\n');
  assert.equal(removeFields(msg, (n, nth, count) => n.toLowerCase() === 'x-s' && nth === count)!.toString(), 'A: 1\nX-S: one\n\tcont\nB: 2\nx-s: two\n\nX-S: body\n');
  assert.equal(removeFields(msg, (n) => n === 'Nope'), undefined);
});

test('header block: the Subject replaced where it was (every Subject field goes), or added at the end of the header block', () => {
  assert.equal(replaceSubject(Buffer.from('A: 1\nSubject: old\n folded\nB: 2\nSubject: dup\n\nSubject: body\n'), 'new').toString(), 'A: 1\nSubject: new\nB: 2\n\nSubject: body\n');
  assert.equal(replaceSubject(Buffer.from('A: 1\n\nbody\n'), 'new').toString(), 'A: 1\nSubject: new\n\nbody\n');
  assert.equal(replaceSubject(Buffer.from('A: 1'), 'new').toString(), 'A: 1\nSubject: new\n');
  assert.equal(replaceSubject(Buffer.from('Subject: x\n\n'), 'a\r\nB: injected\x00').toString(), 'Subject: a B: injected\n\n');
});

test('message keys: the same bytes share a key, other bytes do not', () => {
  const base = new MemoryMessage(Buffer.from('m\n'));
  const other = new MemoryMessage(Buffer.from('m\n'));
  assert.equal(messageKey(base), messageKey(base));
  assert.notEqual(messageKey(base), messageKey(other));
  assert.equal(messageKey(prefixMessage(Buffer.from('X: 1\n'), base)), messageKey(prefixMessage(Buffer.from('X: 1\n'), base)));
  assert.notEqual(messageKey(prefixMessage(Buffer.from('X: 1\n'), base)), messageKey(prefixMessage(Buffer.from('X: 2\n'), base)));
});
