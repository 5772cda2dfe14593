// The console attacked over real HTTP against `bin/nqqueue web`: login attempts sent all at once to
// get more guesses than the limit allows, and what the checkpassword program inherits from the console
// (exactly fds 0-3 and an environment of its own, whatever the console was started with).

import assert from 'node:assert/strict';
import { chmodSync, closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { describe, test } from 'node:test';

import { setupsForThisFile } from '../helpers/nqq.js';
import { NQQUEUE_BIN } from '../helpers/smtpd.js';
import { auditOf, Browser, checkpasswordCalls, hold, installConsole, startWeb } from '../helpers/web.js';

const make = setupsForThisFile();
const LIMIT = { timeout: 180_000 };

describe('nqqueue web: attacks on the login', LIMIT, () => {
  test('12 guesses for one address sent at once: 5 reach checkpassword, the other 7 are 429 (an attempt counts from its start, not its answer)', async () => {
    const s = make();
    const { record } = installConsole(s, { web: { trust_proxy: 'yes' } });
    const web = await startWeb(s);
    const tries = await Promise.all(Array.from({ length: 12 }, (_, n) => new Browser(web, { 'x-forwarded-for': `198.51.100.${n + 1}` }).login('alice@example.com', `guess ${n}`)));
    assert.deepEqual(
      tries.map((t) => t.status).sort(),
      [...Array<number>(5).fill(401), ...Array<number>(7).fill(429)],
    );
    assert.equal(checkpasswordCalls(record).filter((l) => l.startsWith('alice@example.com ')).length, 5);
    // The same at once from one client, each guess for another address: 5 checked.
    const one = await Promise.all(Array.from({ length: 12 }, (_, n) => new Browser(web, { 'x-forwarded-for': '192.0.2.99' }).login(`user${n}@example.com`, 'x')));
    assert.equal(one.filter((t) => t.status === 401).length, 5);
    assert.equal(one.filter((t) => t.status === 429).length, 7);
    // What counts is failures: a client's good logins are never held against it.
    const from = { 'x-forwarded-for': '192.0.2.77' };
    for (let n = 0; n < 7; n++) assert.equal((await new Browser(web, from).login('bob@example.com', 'bob pass word')).status, 303, `login ${n + 1}`);
    // A temporary failure (the program said 111) is no failure either.
    for (let n = 0; n < 6; n++) assert.equal((await new Browser(web, { 'x-forwarded-for': '192.0.2.78' }).login('down@example.com', 'x')).status, 503, `try ${n + 1}`);
    assert.equal((await new Browser(web, { 'x-forwarded-for': '192.0.2.78' }).login('bob@example.com', 'bob pass word')).status, 303);
    await web.stop();
  });

  test('per client, an IPv6 client is its /64: five failures from five of its addresses block the sixth address; another /64 logs in', async () => {
    const s = make();
    const { record } = installConsole(s, { web: { trust_proxy: 'yes' } });
    const web = await startWeb(s);
    for (let n = 1; n <= 5; n++) assert.equal((await new Browser(web, { 'x-forwarded-for': `2001:db8:5:6::${n}` }).login(`user${n}@example.com`, 'x')).status, 401);
    const blocked = await new Browser(web, { 'x-forwarded-for': '2001:db8:5:6:ffff:1:2:3' }).login('bob@example.com', 'bob pass word');
    assert.equal(blocked.status, 429);
    assert.equal(checkpasswordCalls(record).length, 5, 'the sixth never reached checkpassword');
    assert.equal((await new Browser(web, { 'x-forwarded-for': '2001:db8:5:7::1' }).login('bob@example.com', 'bob pass word')).status, 303);
    await web.stop();
  });

  test('with trust_proxy = no, X-Forwarded-For does not make another client: the sixth failure from this peer is 429 whatever it says', async () => {
    const s = make();
    installConsole(s, { tcp: true });
    const web = await startWeb(s);
    for (let n = 1; n <= 5; n++) assert.equal((await new Browser(web, { 'x-forwarded-for': `198.51.100.${n}` }).login(`user${n}@example.com`, 'x')).status, 401);
    assert.equal((await new Browser(web, { 'x-forwarded-for': '198.51.100.6' }).login('bob@example.com', 'bob pass word')).status, 429);
    await web.stop();
  });

  test('checkpassword gets exactly fds 0-3 and PATH/TCPREMOTEIP only, even when the console was started with more descriptors and variables', async () => {
    const s = make();
    installConsole(s, { tcp: true });
    const prog = join(s.dir, 'checkpassword-fds');
    const fds = join(s.dir, 'fds');
    const envOut = join(s.dir, 'env');
    // What the program has open, listed by ls (which adds one of its own: the /proc directory it reads).
    writeFileSync(prog, `#!/bin/sh\n/usr/bin/env > ${envOut}\n/bin/ls -l /proc/self/fd > ${fds} 2>&1\nexit 1\n`);
    chmodSync(prog, 0o755);
    s.write('nqqueue.conf', readFileSync(join(s.control, 'nqqueue.conf'), 'utf8').replace(/^checkpassword = .*$/m, `checkpassword = ${prog}`));
    // Given as fd 100 (past the few libuv itself closes in a child), as a supervisor or a shell redirection might leave one.
    const extra = openSync(join(s.dir, 'inherited'), 'w');
    const web = await startWeb(s, { NQQ_SECRET: 'do-not-pass' }, { inherit: [...Array<'ignore'>(97).fill('ignore'), extra] });
    closeSync(extra);
    const a = await new Browser(web).login('-alice@example.com', 'x');
    assert.equal(a.status, 401);
    const open = readFileSync(fds, 'utf8')
      .split('\n')
      .map((l) => / (\d+) -> (.*)$/.exec(l))
      .filter((m): m is RegExpExecArray => m !== null)
      .filter((m) => !/^\/proc\/\d+\/fd$/.test(m[2]!))
      .map((m) => `${m[1]} -> ${m[2]}`);
    assert.deepEqual(
      open.map((l) => Number(l.split(' ')[0])).sort((x, y) => x - y),
      [0, 1, 2, 3],
      open.join('\n'),
    );
    assert.match(open.find((l) => l.startsWith('3 '))!, /socket|pipe/);
    const env = readFileSync(envOut, 'utf8').split('\n').filter(Boolean).map((l) => l.split('=')[0]);
    assert.deepEqual(env.filter((k) => k !== 'PWD' && k !== 'SHLVL' && k !== '_').sort(), ['PATH', 'TCPREMOTEIP']);
    await web.stop();
  });
});

describe('nqqueue web: a bulk release racing the command line', LIMIT, () => {
  test('an administrator\'s bulk release of 8 items while `nqqueue quarantine release` runs for each: every item delivered exactly once, audited once', async () => {
    const s = make();
    installConsole(s, { tcp: true });
    const ids: string[] = [];
    for (let n = 0; n < 8; n++) ids.push(...(await hold(s, { to: ['alice@example.com'], subject: `race ${n}` })));
    assert.equal(ids.length, 8);
    const web = await startWeb(s);
    const admin = new Browser(web);
    assert.equal((await admin.login('admin@example.com', 'admin-pw')).status, 303);
    const csrf = await admin.csrf();
    const cli = (id: string) =>
      new Promise<number | null>((resolve) => {
        const c = spawn(NQQUEUE_BIN, ['quarantine', 'release', id], { env: { NQQUEUE_CONTROLDIR: s.control, NQQUEUE_HOME: s.home, NQQUEUE_QMAILQUEUE: s.standIn.path }, stdio: 'ignore' });
        c.once('exit', (code) => resolve(code));
      });
    const [bulk, ...codes] = await Promise.all([admin.post('/bulk', { csrf, action: 'release', id: ids }), ...[...ids].reverse().map(cli)]);
    assert.equal(bulk.status, 200, bulk.body);
    const byWeb = Number(/Released: (\d+) of 8/.exec(bulk.body)?.[1]);
    const byCli = codes.filter((c) => c === 0).length;
    assert.equal(byWeb + byCli, 8, `web ${byWeb}, command line ${byCli} (${codes.join(' ')})`);
    const deliveries = s.standIn.deliveries();
    assert.equal(deliveries.length, 8);
    for (let n = 0; n < 8; n++) assert.equal(deliveries.filter((d) => d.message.includes(`Subject: race ${n}\n`)).length, 1, `race ${n}`);
    for (const id of ids) {
      assert.equal(auditOf(s, id).filter((e) => e[3] === 'release').length, 1, id);
    }
    await web.stop();
  });
});

describe('nqqueue web: sessions', LIMIT, () => {
  test('one user has at most 20 logins: the 21st ends their least recently used one, and nobody else\'s', async () => {
    const s = make();
    installConsole(s, { tcp: true });
    const web = await startWeb(s);
    const bob = new Browser(web);
    assert.equal((await bob.login('bob@example.com', 'bob pass word')).status, 303);
    const alices: Browser[] = [];
    for (let n = 0; n < 21; n++) {
      const b = new Browser(web);
      assert.equal((await b.login('alice@example.com', 'alice-secret')).status, 303, `login ${n + 1}`);
      alices.push(b);
    }
    const pages = await Promise.all(alices.map((b) => b.get('/')));
    assert.deepEqual(
      pages.map((p) => p.status),
      [303, ...Array<number>(20).fill(200)],
    );
    assert.equal((await bob.get('/')).status, 200);
    await web.stop();
  });
});
