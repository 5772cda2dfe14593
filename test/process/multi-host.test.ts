// Several MX hosts on one PostgreSQL store (a real, throw-away cluster): each host its own home, control
// directory and qmail-queue, the quarantine the site's. An item held on one host is listed, shown and
// released by another (through that host's own qmail-queue), exactly once however many hosts release
// it at the same moment, and even when the one that took it died in the middle; digests go out once for
// the site with links every host accepts; the database down defers what needs it and nothing else.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';

import { makeInjectStandIn, type InjectStandIn } from '../helpers/inject.js';
import { DAEMON_MODE, pluginDir, rcptsOf, SAMPLE, setupsForThisFile, type Setup } from '../helpers/nqq.js';
import { FIRST_MS } from '../../src/digest/schedule.js';
import { NQQUEUE_BIN } from '../helpers/smtpd.js';
import { Browser, installConsole, startWeb, USERS } from '../helpers/web.js';
import { postgresBin, startPostgres, type Postgres } from '../helpers/postgres.js';

const skip = postgresBin() ? false : 'PostgreSQL is not installed (apt-get install -y postgresql)';
const LIMIT = { timeout: 180_000, skip };
const make = setupsForThisFile();
let server: Promise<Postgres> | undefined;
const pg = (): Promise<Postgres> => (server ??= startPostgres());
const injects: InjectStandIn[] = [];
after(async () => {
  injects.forEach((i) => i.cleanup());
  if (server) await (await server).stop();
});

const FLAGGER =
  "export default { name: 'flagger', version: '1', stages: ['per-user'], configure() { return {}; }, async run() { return { verdict: 'accept', flagged: true, score: 9 }; } };\n";

/** A short deadline: digests list items once they are older than it. */
const DEADLINE_S = 2;

interface Host {
  readonly s: Setup;
  readonly name: string;
  readonly inject: InjectStandIn;
}

/** Two (or more) hosts on one new database. */
async function site(n = 2, extra = '', names?: readonly string[]): Promise<{ hosts: Host[]; pg: Postgres; db: string }> {
  const p = await pg();
  const db = p.createDatabase();
  const hosts = Array.from({ length: n }, (_, i) => {
    const s = make();
    const name = names?.[i] ?? `mx${i + 1}.example.com`;
    const inject = makeInjectStandIn();
    injects.push(inject);
    const dir = pluginDir(s, { flagger: FLAGGER });
    s.write(
      'nqqueue.conf',
      `plugin_dir = ${dir}\nhostname = ${name}\ndeadline = ${DEADLINE_S}s\nstore = ${p.url(db)}\nstore_timeout = 3s\n${extra}` +
        `[digest]\nqmail_inject = ${inject.path}\nfrom = quarantine@example.com\n[web]\nurl = https://console.example.com/\n`,
    );
    s.write('nqqueue.cfb', 'plain@example.com:quarantine=all\n:flagger;quarantine=all\n');
    return { s, name, inject };
  });
  return { hosts, pg: p, db };
}

function message(subject: string): string {
  return SAMPLE.replace('Subject: test message', `Subject: ${subject}`);
}

async function hold(h: Host, subject: string, to = 'rcpt@example.com'): Promise<void> {
  const r = await h.s.run({ message: message(subject), to: [to] });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.deliveries.length, 0, 'held, not delivered');
}

/** `nqqueue quarantine list` on a host: [id, host column...] rows. */
function listed(h: Host, args: string[] = []): string[][] {
  const r = h.s.command(['quarantine', 'list', ...args]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split('\t'));
}

function itemDirs(h: Host): string[] {
  const dir = join(h.s.home, 'quarantine');
  return existsSync(dir) ? readdirSync(dir).filter((n) => n !== 'tmp') : [];
}

function release(h: Host, id: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return h.s.commandAsync(['quarantine', 'release', id]);
}

test('an item held on one host is listed, shown and released by another, through its own qmail-queue; the holding host drops its files', LIMIT, async () => {
  const { hosts } = await site();
  const [a, b] = hosts as [Host, Host];
  await hold(a, 'held on mx1');
  const onA = listed(a);
  const onB = listed(b);
  assert.equal(onA.length, 1);
  assert.deepEqual(onB.map((r) => r[0]), onA.map((r) => r[0]), 'the same item on every host');
  const id = onA[0]![0]!;
  const shown = b.s.command(['quarantine', 'show', id]);
  assert.equal(shown.code, 0, shown.stderr);
  assert.match(shown.stdout, /Subject: held on mx1/);
  assert.match(shown.stdout, /mx1\.example\.com/);
  const raw = b.s.command(['quarantine', 'show', '--raw', id]);
  assert.equal(raw.code, 0, raw.stderr);
  assert.match(raw.stdout, /^Received: /);
  const r = await release(b, id);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(b.s.standIn.deliveries().map(rcptsOf), [['rcpt@example.com']], "through mx2's qmail-queue");
  assert.equal(a.s.standIn.deliveries().length, 0);
  assert.match(b.s.standIn.deliveries()[0]!.message.toString('latin1'), /Subject: held on mx1/);
  assert.deepEqual(listed(a), [], 'no longer held anywhere');
  // mx1's copy of the bytes goes at its next sweep (the expiry pass; in daemon mode mx1's serve may
  // have run one already), never released again.
  assert.ok(itemDirs(a).length <= 1);
  assert.equal(a.s.command(['quarantine', 'expire']).code, 0);
  assert.deepEqual(itemDirs(a), []);
  const again = await release(a, id);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /already taken \(released by root/);
  assert.equal(a.s.standIn.deliveries().length + b.s.standIn.deliveries().length, 1, 'released once');
});

test('two hosts releasing the same items at the same moment: each is delivered exactly once, by one of them', LIMIT, async () => {
  const { hosts } = await site();
  const [a, b] = hosts as [Host, Host];
  for (let i = 0; i < 6; i++) await hold(a, `race ${i}`);
  const ids = listed(a).map((r) => r[0]!);
  assert.equal(ids.length, 6);
  for (const id of ids) {
    const [ra, rb] = await Promise.all([release(a, id), release(b, id)]);
    assert.deepEqual([ra.code, rb.code].sort(), [0, 1], `${id}: one released it, one was told it is taken: ${ra.stderr} ${rb.stderr}`);
    assert.match((ra.code === 1 ? ra : rb).stderr, /already taken/);
  }
  const all = [...a.s.standIn.deliveries(), ...b.s.standIn.deliveries()];
  assert.equal(all.length, 6, 'six items, six deliveries');
  const subjects = all.map((d) => /Subject: (race \d)/.exec(d.message.toString('latin1'))![1]).sort();
  assert.deepEqual(subjects, ['race 0', 'race 1', 'race 2', 'race 3', 'race 4', 'race 5']);
});

test('the host releasing an item dies in the middle: no other host takes it while it may be alive; its own host, knowing it dead, releases it once', LIMIT, async () => {
  const { hosts } = await site();
  const [a, b] = hosts as [Host, Host];
  await hold(a, 'dies mid-release');
  const [[id]] = listed(a) as [[string]];
  // mx2's qmail-queue never answers: the release is under way when it is killed.
  b.s.standIn.setOptions({ hangOn: [1] });
  const dying = spawn(NQQUEUE_BIN, ['quarantine', 'release', id], { env: b.s.env, stdio: 'ignore' });
  for (let i = 0; i < 300 && !b.s.standIn.calls().some((c) => c.call === 1); i++) await delay(50);
  assert.ok(b.s.standIn.calls().some((c) => c.call === 1), "mx2's qmail-queue was started");
  dying.kill('SIGKILL');
  await new Promise((r) => dying.once('exit', r));
  // mx1 cannot tell whether mx2's process lives: it refuses, saying someone is acting on it.
  const fromA = await release(a, id);
  assert.equal(fromA.code, 1);
  assert.match(fromA.stderr, /already taken: someone else is acting on it right now/);
  // On mx2 the dead process is known dead: the item is released, once.
  b.s.standIn.setOptions({});
  const fromB = await release(b, id);
  assert.equal(fromB.code, 0, fromB.stderr);
  assert.equal(b.s.standIn.deliveries().length + a.s.standIn.deliveries().length, 1, 'delivered exactly once');
  assert.deepEqual(listed(a), []);
  const audit = a.s.command(['quarantine', 'audit', '--item', id]).stdout.split('\n').filter(Boolean);
  assert.equal(audit.filter((l) => l.split('\t')[3] === 'release').length, 1, 'one release in the audit log');
});

test('two hosts given the same hostname: one never takes over the other\'s release while it runs', LIMIT, async () => {
  const { hosts } = await site(2, '', ['mx.example.com', 'mx.example.com']);
  const [a, b] = hosts as [Host, Host];
  await hold(a, 'same name');
  const [[id]] = listed(a) as [[string]];
  // mx "2" releases the item held on mx "1" from the bytes in the store; its qmail-queue hangs.
  b.s.standIn.setOptions({ hangOn: [1] });
  const running = spawn(NQQUEUE_BIN, ['quarantine', 'release', id], { env: b.s.env, stdio: 'ignore' });
  try {
    for (let i = 0; i < 300 && !b.s.standIn.calls().some((c) => c.call === 1); i++) await delay(50);
    assert.ok(b.s.standIn.calls().some((c) => c.call === 1), "the other host's qmail-queue was started");
    // The holding host holds the files, and the claim names its own hostname: still not its to take.
    listed(a);
    const fromA = await release(a, id);
    assert.equal(fromA.code, 1, `refused while the other release runs: ${fromA.stderr}`);
    assert.match(fromA.stderr, /already taken: someone else is acting on it right now/);
    assert.equal(a.s.standIn.deliveries().length, 0, 'not delivered a second time');
  } finally {
    running.kill('SIGKILL');
    await new Promise((r) => running.once('exit', r));
  }
  // Its process dead (and known dead here), the item is released once.
  const again = await release(a, id);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(a.s.standIn.deliveries().length + b.s.standIn.deliveries().length, 1, 'delivered exactly once');
});

test('the database stops while a release is in qmail-queue: the release is recorded once it is back, never released again', LIMIT, async () => {
  const { hosts, pg: p } = await site(1);
  const [a] = hosts as [Host];
  await hold(a, 'recorded late');
  const [[id]] = listed(a) as [[string]];
  a.s.standIn.setOptions({ slowOn: [{ call: 1, ms: 6000 }] });
  const releasing = release(a, id);
  // The database stops once the release is in qmail-queue (its call claimed), however long the
  // command took to get there.
  for (let i = 0; i < 600 && a.s.standIn.calls().length === 0; i++) await delay(50);
  assert.equal(a.s.standIn.calls().length, 1, 'the release reached qmail-queue');
  let r: Awaited<ReturnType<typeof release>>;
  try {
    await p.stopServer();
    r = await releasing;
  } finally {
    await p.start();
  }
  a.s.standIn.setOptions({});
  assert.equal(a.s.standIn.deliveries().length, 1, `queued: ${r.stderr}`);
  assert.match(r.stderr, /released, but the store could not record it/);
  // Back: the item is not held again (nothing to release twice), and the release is in the audit log.
  assert.deepEqual(listed(a), [], 'not held again');
  const again = await release(a, id);
  assert.equal(again.code, 1, again.stderr);
  assert.match(again.stderr, /already taken \(released/);
  assert.equal(a.s.standIn.deliveries().length, 1, 'delivered exactly once');
  const audit = a.s.command(['quarantine', 'audit', '--item', id]).stdout.split('\n').filter(Boolean);
  assert.equal(audit.filter((l) => l.split('\t')[3] === 'release').length, 1, `one release in the audit log: ${audit.join(' | ')}`);
});

test('digests: the hosts of a site run them at the same moment, and each user gets one; its links are good on every host', LIMIT, async () => {
  const { hosts } = await site(3);
  const started = Date.now();
  await hold(hosts[0]!, 'for alice 1', 'alice@example.com');
  await hold(hosts[1]!, 'for alice 2', 'alice@example.com');
  await hold(hosts[2]!, 'for bob', 'bob@example.com');
  await delay(DEADLINE_S * 1000 + 300);
  const runs = await Promise.all(hosts.map((h) => h.s.commandAsync(['digest'])));
  for (const r of runs) assert.equal(r.code, 0, r.stderr);
  // In daemon mode each host's `nqqueue serve` runs digests of its own too (FIRST_MS after its start):
  // one that took the site's lease just before bob's item was due made the three commands stand aside,
  // and bob's digest waits for that serve's next pass. So there the hosts run them together once more
  // when those first passes are over; what was sent stays sent: still one digest per user for the site.
  if (DAEMON_MODE) {
    await delay(Math.max(0, started + FIRST_MS + 2000 - Date.now()));
    const again = await Promise.all(hosts.map((h) => h.s.commandAsync(['digest'])));
    for (const r of again) assert.equal(r.code, 0, r.stderr);
  }
  const sent = hosts.flatMap((h) => h.inject.queued());
  assert.deepEqual(sent.map((c) => (c.recipients ?? []).join(',')).sort(), ['alice@example.com', 'bob@example.com'], 'one digest per user for the site');
  const aliceCall = sent.find((c) => c.recipients?.join(',') === 'alice@example.com')!;
  const alice = Buffer.from(aliceCall.message, 'base64').toString('utf8');
  assert.match(alice, /for alice 1/, 'items held on every host');
  assert.match(alice, /for alice 2/);
  // One key for the site: a link from this digest is checked by the same key on every host.
  const keys = new Set(
    await Promise.all(
      hosts.map(async (h) => {
        const { openStore } = await import('../../src/store/open.js');
        const { readSettings, pathsFrom } = await import('../../src/queue/services.js');
        const { linkKey } = await import('../../src/links/site-key.js');
        const paths = pathsFrom(h.s.env);
        const store = await openStore(paths.home, readSettings(paths));
        try {
          return (await linkKey(store, paths.home)).toString('hex');
        } finally {
          await store.close();
        }
      }),
    ),
  );
  assert.equal(keys.size, 1, 'every host signs and checks with the same key');
  const link = /https:\/\/console\.example\.com\/link\/([A-Za-z0-9_.-]+)/.exec(alice);
  assert.ok(link, 'the digest has links');
});

const unshareWorks = process.geteuid?.() === 0 && spawnSync('unshare', ['--pid', '--fork', 'true']).status === 0;

test('digests: two hosts of the same name whose runs have the same pid (pid namespaces: containers) still send one digest per user', { ...LIMIT, skip: skip || (!unshareWorks && 'needs root and unshare') }, async () => {
  const { hosts } = await site(2, '', ['mx.example.com', 'mx.example.com']);
  await hold(hosts[0]!, 'for carol', 'carol@example.com');
  await hold(hosts[1]!, 'for carol again', 'carol@example.com');
  await delay(DEADLINE_S * 1000 + 300);
  // Each run is pid 1 of a namespace of its own, as in two containers; qmail-inject is slow, so they overlap.
  for (const h of hosts) h.inject.setOptions({ delayMs: 1500 });
  const run = (h: Host): Promise<number | null> =>
    new Promise((resolve) => spawn('unshare', ['--pid', '--fork', NQQUEUE_BIN, 'digest'], { env: h.s.env, stdio: 'ignore' }).once('exit', (c) => resolve(c)));
  const codes = await Promise.all(hosts.map(run));
  assert.deepEqual(codes, [0, 0]);
  const sent = hosts.flatMap((h) => h.inject.queued());
  assert.deepEqual(sent.map((c) => (c.recipients ?? []).join(',')), ['carol@example.com'], 'one digest for the site');
});

test('a lock held on the items by another session: held mail is deferred in bounded time, a release fails cleanly, and both work once it is gone', LIMIT, async () => {
  const { hosts, pg: p, db } = await site(1);
  const [a] = hosts as [Host];
  await hold(a, 'before the lock');
  const [[id]] = listed(a) as [[string]];
  // An administrator's session in the middle of maintenance: every statement on items waits.
  const locker = spawn(join(postgresBin()!, 'psql'), ['-X', '-q', '-h', p.socketDir, '-p', String(p.port), '-U', p.user, '-d', db, '-c', 'BEGIN; LOCK TABLE items IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(20); COMMIT;'], { stdio: 'ignore' });
  try {
    await delay(700);
    const started = Date.now();
    const held = await a.s.run({ message: message('during the lock'), to: ['rcpt@example.com'], timeoutMs: 30_000 });
    assert.ok(held.code === 71 || held.code === 82, `deferred: ${held.code} ${held.stderr}`);
    assert.ok(Date.now() - started < 15_000, `in bounded time: ${Date.now() - started} ms`);
    const plain = await a.s.run({ message: message('plain'), to: ['plain@example.com'] });
    assert.equal(plain.code, 0, plain.stderr);
    assert.equal(plain.deliveries.length, 1, 'plain mail flows');
    const r = await release(a, id);
    assert.notEqual(r.code, 0, 'the release cannot be done now');
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    assert.equal(a.s.standIn.deliveries().length, 1, 'not released');
  } finally {
    locker.kill('SIGKILL');
    await new Promise((r) => locker.once('exit', r));
  }
  // The admin's session ends (terminated: a sleeping backend does not notice its client gone).
  p.sql(db, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%LOCK TABLE items%' AND pid <> pg_backend_pid()");
  const again = await release(a, id);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(a.s.standIn.deliveries().length, 2, 'released once');
  assert.deepEqual(listed(a), [], 'the deferred message left nothing held');
});

test('the database down: a message that needs the store is deferred (71) with nothing delivered, other mail flows; restarted, it is used again', LIMIT, async () => {
  const { hosts, pg: p } = await site(1);
  const [a] = hosts as [Host];
  await hold(a, 'before');
  await p.stopServer();
  try {
    const held = await a.s.run({ message: message('while down'), to: ['rcpt@example.com', 'plain@example.com'], extraEnv: { NQQUEUE_REJECT: 'plain' } });
    assert.equal(held.code, 71, 'deferred: never accepted unchecked');
    assert.equal(a.s.standIn.calls().length, 0, "nothing queued, not even the plain recipient's copy");
    assert.match(held.logLines.join('\n'), /result=defer .* code=NQQ_ERR_KEEP reason="quarantine: the store cannot index the copy for <rcpt@example\.com>: the store postgres:\/\/\S+ is unreachable/);
    assert.deepEqual(itemDirs(a).length, 1, 'the copy was taken back: only the one held before');
    const plain = await a.s.run({ message: message('plain'), to: ['plain@example.com'] });
    assert.equal(plain.code, 0, plain.stderr);
    assert.deepEqual(plain.deliveries.map(rcptsOf), [['plain@example.com']], 'mail that does not need the store is unaffected');
    const list = a.s.command(['quarantine', 'list']);
    assert.equal(list.code, 1);
    assert.match(list.stderr, /is unreachable/);
    assert.doesNotMatch(list.stderr, /\n\s+at /);
  } finally {
    await p.start();
  }
  const after = await a.s.run({ message: message('after'), to: ['rcpt@example.com'] });
  assert.equal(after.code, 0, after.stderr);
  assert.equal(listed(a).length, 2, 'held before and after; nothing from while it was down');
});

test("one console for the site: it lists every host's items, releases one held elsewhere through its own qmail-queue, and says so when the store cannot be reached", LIMIT, async () => {
  const { hosts, pg: p, db } = await site(2);
  const [a, b] = hosts as [Host, Host];
  await hold(a, 'for alice on mx1', 'alice@example.com');
  await hold(b, 'for alice on mx2', 'alice@example.com');
  // The console runs on a third machine, which takes no mail itself.
  const c = make();
  installConsole(c, { global: `store = ${p.url(db)}\nstore_timeout = 3s\n` });
  const web = await startWeb(c);
  try {
    const alice = new Browser(web);
    assert.equal((await alice.login('alice@example.com', USERS['alice@example.com'])).status, 303);
    const list = await alice.get('/');
    assert.equal(list.status, 200);
    assert.match(list.body, /for alice on mx1/);
    assert.match(list.body, /for alice on mx2/);
    const ids = listed(a).map((r) => r[0]!);
    const onA = ids.find((id) => a.s.command(['quarantine', 'show', id]).stdout.includes('for alice on mx1'))!;
    const csrf = await alice.csrf();
    const done = await alice.post(`/item/${onA}/release`, { csrf });
    assert.equal(done.status, 200, done.body.slice(0, 300));
    assert.equal(c.standIn.deliveries().length, 1, "released through the console host's qmail-queue");
    assert.match(c.standIn.deliveries()[0]!.message.toString('latin1'), /for alice on mx1/);
    assert.equal(a.s.standIn.deliveries().length + b.s.standIn.deliveries().length, 0);
    await p.stopServer();
    try {
      const down = await alice.get('/');
      assert.equal(down.status, 503);
      assert.match(down.body, /cannot be reached right now/);
    } finally {
      await p.start();
    }
    let back = 0;
    for (let i = 0; i < 50 && back !== 200; i++) {
      back = (await alice.get('/')).status;
      if (back !== 200) await delay(100);
    }
    assert.equal(back, 200, 'the database back: the console works again without a restart');
    assert.doesNotMatch((await alice.get('/')).body, /for alice on mx1/, 'released: no longer listed');
  } finally {
    await web.stop();
  }
});
