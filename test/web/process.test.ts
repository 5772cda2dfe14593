// `nqqueue web` as a service: run as root it becomes the owner of $NQQUEUE_HOME (checked in /proc and on
// disk), its Unix socket is 0660, a second console on a live socket is refused while a stale socket left
// by a killed one is taken over, and logins are in the audit log.

import assert from 'node:assert/strict';
import { chmodSync, chownSync, lstatSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { setupsForThisFile } from '../helpers/nqq.js';
import { auditOf, Browser, hold, installConsole, startWeb } from '../helpers/web.js';

const make = setupsForThisFile();
const NOBODY = 65534;
const skip = process.geteuid?.() === 0 ? false : 'needs root (switching users)';

function chownTree(path: string, uid: number): void {
  chownSync(path, uid, uid);
  if (!lstatSync(path).isDirectory()) return;
  for (const name of readdirSync(path)) chownTree(join(path, name), uid);
}

test('run as root, it switches to the owner of $NQQUEUE_HOME before anything: logins, releases and every file are that user\'s', { skip, timeout: 120_000 }, async () => {
  const s = make();
  chmodSync(s.dir, 0o755);
  chownTree(s.standIn.dir, NOBODY);
  chmodSync(s.standIn.dir, 0o755);
  mkdirSync(s.home, { mode: 0o700 });
  chownSync(s.home, NOBODY, NOBODY);
  const run = join(s.dir, 'run');
  mkdirSync(run, { mode: 0o755 });
  chownSync(run, NOBODY, NOBODY);
  const { record } = installConsole(s, { web: { listen: join(run, 'web.sock') } });
  writeFileSync(record, '', { mode: 0o666 });
  chmodSync(record, 0o666);
  const [id] = await hold(s, { to: ['alice@example.com'], subject: 'for nobody' });
  const web = await startWeb(s);
  assert.match(web.stderr(), /nqqueue web: running as nobody, the owner of /);
  const uids = /^Uid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)/m.exec(readFileSync(`/proc/${web.pid}/status`, 'utf8'))!;
  assert.deepEqual(uids.slice(1).map(Number), [NOBODY, NOBODY, NOBODY, NOBODY]);
  const sock = statSync(join(run, 'web.sock'));
  assert.equal(sock.uid, NOBODY);
  assert.equal(sock.mode & 0o777, 0o660);
  const b = new Browser(web);
  assert.equal((await b.login('alice@example.com', 'alice-secret')).status, 303, 'checkpassword ran as nobody');
  const r = await b.post(`/item/${id}/release`, { csrf: await b.csrf() });
  assert.equal(r.status, 200, r.body);
  assert.equal(s.standIn.deliveries().length, 1);
  await web.stop();
  const wrong = [s.home, ...readdirSync(s.home, { recursive: true }).map((n) => join(s.home, String(n)))].filter((p) => lstatSync(p).uid !== NOBODY);
  assert.deepEqual(wrong, [], 'everything under the home is nobody\'s');
  assert.equal(statSync(join(s.home, 'signing.key')).mode & 0o777, 0o600);
});

test('a second console on a live socket is refused (111); a stale socket left by a killed one is taken over', { timeout: 60_000 }, async () => {
  const s = make();
  const { listen } = installConsole(s);
  const first = await startWeb(s);
  const second = s.command(['web']);
  assert.equal(second.code, 111);
  assert.match(second.stderr, /cannot start: .*something is listening on .*web\.sock already/);
  assert.equal((await first.request('GET', '/login')).status, 200, 'the first still answers');
  process.kill(first.pid, 'SIGKILL');
  await first.stop();
  assert.ok(lstatSync(listen).isSocket(), 'the killed one left its socket');
  const third = await startWeb(s);
  assert.equal((await third.request('GET', '/login')).status, 200);
  assert.deepEqual(await third.stop(), { code: 0, signal: null });
});

test('logins and refused logins are in the audit log, with the client address', { timeout: 60_000 }, async () => {
  const s = make();
  installConsole(s, { web: { trust_proxy: 'yes' } });
  const web = await startWeb(s);
  await new Browser(web, { 'x-forwarded-for': '192.0.2.99' }).login('bob@example.com', 'nope');
  await new Browser(web, { 'x-forwarded-for': '192.0.2.98' }).login('bob@example.com', 'bob pass word');
  await web.stop();
  const r = s.command(['quarantine', 'audit']);
  assert.equal(r.code, 0, r.stderr);
  const rows = r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split('\t').slice(1, 4));
  assert.deepEqual(rows, [
    ['bob@example.com', '192.0.2.99', 'login-refused'],
    ['bob@example.com', '192.0.2.98', 'login'],
  ]);
});

test('SIGTERM during a release lets it finish: the answer arrives, the item is released once, then it exits 0', { timeout: 60_000 }, async () => {
  const s = make();
  installConsole(s);
  const [id] = await hold(s, { to: ['alice@example.com'], subject: 'in flight' });
  const web = await startWeb(s);
  const b = new Browser(web);
  assert.equal((await b.login('alice@example.com', 'alice-secret')).status, 303);
  const csrf = await b.csrf();
  s.standIn.setOptions({ slowOn: [{ call: 1, ms: 1500 }] });
  const release = b.post(`/item/${id}/release`, { csrf });
  await new Promise((r) => setTimeout(r, 500));
  process.kill(web.pid, 'SIGTERM');
  const answer = await release;
  assert.equal(answer.status, 200, answer.body);
  assert.deepEqual(await web.stop(), { code: 0, signal: null });
  assert.equal(s.standIn.deliveries().length, 1);
  assert.equal(auditOf(s, id!).filter((e) => e[3] === 'release').length, 1);
  assert.match(web.stderr(), /nqqueue web: stopping \(SIGTERM\)/);
});
