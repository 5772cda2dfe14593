// Texts that say what happened: a backend's read timeout says it timed out (to the sender and in the
// log), a failure with its own catalogue code (a quarantine store failure) is not "mail scanner
// unavailable", and a permission problem names the path, its owner and the user NQqueue runs as.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';

import { envelopeOf, pluginDir, setupsForThisFile } from '../helpers/nqq.js';
import { NQQUEUE_BIN } from '../helpers/smtpd.js';

const make = setupsForThisFile();

/** A TCP server that accepts connections and never answers: a backend stuck mid-request. */
async function silentServer(t: TestContext): Promise<string> {
  const sockets: Socket[] = [];
  // allowHalfOpen: a client that shuts down its side after the request (spamc does) still gets no reply.
  const srv: Server = createServer({ allowHalfOpen: true }, (s) => {
    sockets.push(s);
    s.on('error', () => {});
    s.resume();
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    for (const s of sockets) s.destroy();
    srv.close();
  });
  const addr = srv.address();
  if (!addr || typeof addr === 'string') throw new Error('no address');
  return `127.0.0.1:${addr.port}`;
}

const LINES: Record<string, (addr: string) => [file: string, line: string]> = {
  clamav: (a) => ['general.cfb', `:clamav=host=${a},read_timeout=400ms,timeout=20s\n`],
  spamassassin: (a) => ['nqqueue.cfb', `:spamassassin=host=${a},read_timeout=400ms,timeout=20s\n`],
  rspamd: (a) => ['nqqueue.cfb', `:rspamd=url=http://${a},read_timeout=400ms,timeout=20s\n`],
};

for (const [plugin, line] of Object.entries(LINES)) {
  test(`${plugin}: a backend that stops answering is a read timeout, and both texts say it timed out`, async (t) => {
    const s = make();
    const addr = await silentServer(t);
    const [file, text] = line(addr);
    s.write(file, text);
    const r = await s.run({});
    assert.equal(r.code, 82, r.stderr);
    assert.equal(r.errorText.toString(), 'Zmail scanner timed out, try again later (#4.3.0)', r.stderr);
    assert.equal(s.standIn.calls().length, 0);
    assert.match(r.logLines.join('\n'), new RegExp(`notes=".*${plugin} failed: .*${addr.replace(/\./g, '\\.')}.*: no progress for 400 ms, read timed out`));
  });
}

test('a plugin failure with its own catalogue code (quarantine store) gives that text, and its reason reaches the log', async () => {
  const s = make();
  const dir = pluginDir(s, {
    keeper: `import { NqqError } from 'nqqueue';
export default { name: 'keeper', version: '1.0.0', stages: ['per-user'], configure: () => ({}),
  async run() { throw new NqqError('NQQ_ERR_KEEP', 'cannot store the copy in /q: EROFS: read-only file system'); } };
`,
  });
  s.write('nqqueue.conf', `plugin_dir = ${dir}\n`);
  s.write('nqqueue.cfb', ':keeper\n');
  const r = await s.run({});
  assert.equal(r.code, 82, r.stderr);
  assert.equal(r.errorText.toString(), 'Zmail server temporarily cannot store the message, try again later (#4.3.0)');
  assert.doesNotMatch(r.errorText.toString(), /scanner/);
  assert.match(r.logLines.join('\n'), /notes="keeper failed: .*cannot store the copy in \/q: EROFS: read-only file system"/);
  assert.equal(s.standIn.calls().length, 0);
});

test('a plugin directory owned by another user: the refusal names the path, its owner and our user', async () => {
  const s = make();
  const dir = pluginDir(s, { mine: `export default { name: 'mine', version: '1.0.0', stages: ['general'], configure: () => ({}), async run() { return { verdict: 'accept' }; } };\n` });
  chownSync(dir, 65534, 65534);
  s.write('nqqueue.conf', `plugin_dir = ${dir}\n`);
  s.write('general.cfb', ':mine\n');
  const expected = new RegExp(`${dir.replace(/[/.]/g, '\\$&')} is owned by nobody \\(uid 65534\\), not by root \\(uid 0\\) that NQqueue runs as: refused`);
  const r = await s.run({ extraEnv: { NQQUEUE_REJECT: 'plain' } });
  assert.equal(r.code, 71, r.stderr);
  assert.match(r.stderr, expected);
  const cc = s.command(['check-config']);
  assert.equal(cc.code, 1);
  assert.match(cc.stderr, expected);
});

test('a working directory owned by another user: the deferral names the path, its owner and our user', async () => {
  const s = make();
  s.write('nqqueue.conf', 'spill = 1K\n');
  const tmp = join(s.home, 'tmp');
  mkdirSync(tmp, { recursive: true, mode: 0o700 });
  chownSync(tmp, 65534, 65534);
  const r = await s.run({ message: `Subject: big\n\n${'x'.repeat(8192)}\n`, extraEnv: { NQQUEUE_REJECT: 'plain' } });
  assert.equal(r.code, 71, r.stderr);
  assert.match(r.stderr, new RegExp(`${tmp.replace(/[/.]/g, '\\$&')} is owned by nobody \\(uid 65534\\), not by root \\(uid 0\\) that NQqueue runs as`));
  assert.equal(s.standIn.calls().length, 0);
});

test('a home that cannot be created: the deferral names the path, the owner of its parent and our user', (t) => {
  // Run as nobody, the way qmail-smtpd runs as qmaild: the home's parent belongs to root, mode 0755.
  const dir = mkdtempSync(join(tmpdir(), 'nqq-perm-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  chmodSync(dir, 0o755);
  mkdirSync(join(dir, 'control'), { mode: 0o755 });
  writeFileSync(join(dir, 'control', 'rcpthosts'), 'example.com\n', { mode: 0o644 });
  writeFileSync(join(dir, 'control', 'nqqueue.conf'), 'spill = 1K\n', { mode: 0o644 });
  writeFileSync(join(dir, 'message'), `Subject: big\n\n${'x'.repeat(8192)}\n`, { mode: 0o644 });
  writeFileSync(join(dir, 'envelope'), envelopeOf('a@client.example', ['b@example.com']), { mode: 0o644 });
  const fd0 = openSync(join(dir, 'message'), 'r');
  const fd1 = openSync(join(dir, 'envelope'), 'r');
  const home = join(dir, 'home');
  const r = spawnSync(NQQUEUE_BIN, [], {
    uid: 65534,
    gid: 65534,
    stdio: [fd0, fd1, 'pipe'],
    env: { NQQUEUE_CONTROLDIR: join(dir, 'control'), NQQUEUE_HOME: home, NQQUEUE_QMAILQUEUE: '/bin/true', NQQUEUE_REJECT: 'plain' },
    encoding: 'utf8',
    timeout: 30_000,
  });
  closeSync(fd0);
  closeSync(fd1);
  assert.equal(r.status, 71, r.stderr);
  const esc = (p: string) => p.replace(/[/.]/g, '\\$&');
  assert.match(r.stderr, new RegExp(`permission denied on ${esc(home)} \\(${esc(dir)} is owned by root \\(uid 0\\), mode 0755\\); NQqueue runs as nobody \\(uid 65534\\)`));
});
