// A quarantined copy is never lost: it is durable and listed before the message is accepted (before
// exit 0; in daemon mode before the client is told to queue anything), it survives the process being
// killed from then on, a store that cannot take it defers the message, and it is taken back when the
// message ends up deferred. A recipient whose Maildir is missing gets its copy in the global store.
// Partial files that killed runs left under $NQQUEUE_HOME (and in Maildir tmp/) are swept by a later run.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { test } from 'node:test';

import { DAEMON_MODE, pluginDir, rcptsOf, setupsForThisFile, type Setup } from '../helpers/nqq.js';

const make = setupsForThisFile();
const LIMIT = { timeout: 120_000 };

/** Flags every message (quarantine=all counts it); tags the copy so it is a group of its own. */
const PLUGINS = {
  flagger:
    "export default { name: 'flagger', version: '1', stages: ['per-user'], configure() { return {}; }, async run() { return { verdict: 'accept', flagged: true, details: { result: 'flagged by test' } }; } };\n",
  tagger:
    "export default { name: 'tagger', version: '1', stages: ['per-user'], configure() { return {}; }, async run() { return { verdict: 'accept', headers: [{ name: 'X-Tag', value: 'tagged' }] }; } };\n",
};

function withPlugins(s: Setup, extra = '', more: Record<string, string> = {}): void {
  const dir = pluginDir(s, { ...PLUGINS, ...more });
  s.write('nqqueue.conf', `plugin_dir = ${dir}\nhostname = mx.example.com\n${extra}`);
}

/** Item directories in the global store. */
function ids(s: Setup): string[] {
  const dir = join(s.home, 'quarantine');
  return existsSync(dir) ? readdirSync(dir).filter((n) => n !== 'tmp').sort() : [];
}

/** What `nqqueue quarantine list` shows: one line per item. */
function listed(s: Setup): string[] {
  const r = s.command(['quarantine', 'list']);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.split('\n').filter((l) => l !== '');
}

function pending(s: Setup): string[] {
  const dir = join(s.home, 'quarantine', 'tmp');
  return existsSync(dir) ? readdirSync(dir) : [];
}

async function until<T>(what: string, probe: () => T | undefined, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await delay(20);
  }
}

/**
 * A qmail-queue that writes its parent's PID, then blocks until the test opens the gate, then runs the
 * stand-in (which reads the message and envelope and records the delivery). Its parent is the program
 * that runs qmail-queue: bin/nqqueue standalone, nqqueue-qq in daemon mode.
 */
function gatedQueue(s: Setup) {
  const ppid = join(s.dir, 'qq.ppid');
  const gate = join(s.dir, 'gate.open');
  const path = s.script('gated-qmail-queue', `#!/bin/sh\necho "$PPID" > ${ppid}\nwhile [ ! -e ${gate} ]; do /bin/sleep 0.02; done\nexec ${s.standIn.path}\n`);
  return {
    path,
    parent: () =>
      until('qmail-queue to start', () => {
        const t = existsSync(ppid) ? readFileSync(ppid, 'utf8') : '';
        return /^\d+\n$/.test(t) ? Number(t) : undefined;
      }),
    open: () => writeFileSync(gate, ''),
  };
}

function daemonPid(s: Setup): number {
  const m = /listening on .* \(pid (\d+)\)/.exec(readFileSync(join(s.dir, 'serve.log'), 'utf8'));
  assert.ok(m, 'the daemon said its pid');
  return Number(m[1]);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * One message for keep@ (quarantined) and other@ (queued through the gated qmail-queue); `victim` is
 * killed (SIGKILL) while qmail-queue runs, then qmail-queue is let go and queues other@'s copy.
 */
async function killWhileQueueing(t: { after(fn: () => Promise<void>): void }, victim: 'program' | 'daemon'): Promise<void> {
  const s = make();
  withPlugins(s);
  s.write('nqqueue.cfb', 'keep@example.com:flagger;quarantine=all\n');
  const qq = gatedQueue(s);
  const running = s.run({ to: ['keep@example.com', 'other@example.com'], extraEnv: { NQQUEUE_QMAILQUEUE: qq.path } });
  // Whatever fails below, the run is let go and waited for before the setup is removed.
  t.after(async () => {
    qq.open();
    await running.catch(() => undefined);
  });
  const parent = await qq.parent();
  // qmail-queue runs for other@ and has not finished: keep@'s copy is already in its place.
  const during = listed(s);
  assert.equal(during.length, 1, 'listed before the client was told to queue anything');
  assert.match(during[0]!, /\t<keep@example\.com>\tflagger: flagged by test$/);
  const [id] = ids(s);
  // The program that runs qmail-queue (bin/nqqueue, or nqqueue-qq in daemon mode), or the daemon.
  const pid = victim === 'daemon' ? daemonPid(s) : parent;
  process.kill(pid, 'SIGKILL');
  await until('the kill', () => (alive(pid) ? undefined : true));
  if (DAEMON_MODE && victim === 'program') {
    // The daemon sees its client gone in the middle of queueing: the copy must stay.
    await until('the daemon to notice', () => (/protocol error/.test(readFileSync(join(s.dir, 'serve.log'), 'utf8')) ? true : undefined));
  }
  qq.open();
  const r = await running;
  if (victim === 'daemon') {
    assert.equal(r.code, 0, `the client queued every announced copy: ${r.stderr}`);
  } else {
    assert.equal(r.signal, 'SIGKILL');
  }
  const delivered = await until('the delivery to other@', () => (s.standIn.deliveries().length === 1 ? s.standIn.deliveries() : undefined));
  assert.deepEqual(delivered.map(rcptsOf), [['other@example.com']]);
  // Whatever runs later (a listing, the next message) finds the copy still there.
  assert.deepEqual(ids(s), [id]);
  assert.equal(listed(s).length, 1);
  const next = await s.run({ to: ['other@example.com'] });
  assert.equal(next.code, 0, next.stderr);
  assert.deepEqual(ids(s), [id]);
  assert.deepEqual(pending(s), []);
}

test('the copy is listed before anything is queued, and survives the program being killed while qmail-queue runs', LIMIT, async (t) => {
  await killWhileQueueing(t, 'program');
});

test('daemon mode: the copy is listed before the client is told to queue, and survives the daemon being killed while the client queues', LIMIT, async (t) => {
  if (!DAEMON_MODE) return t.skip('standalone run: no daemon');
  await killWhileQueueing(t, 'daemon');
});

test('a crash at the commit point, after the copy is stored and before anything is queued, leaves one copy too many, never none', LIMIT, async (t) => {
  const s = make();
  const pids = join(s.dir, 'commit.pids');
  const gate = join(s.dir, 'commit.open');
  // other@'s chain registers its commit action a second after keep@'s quarantine did (so it runs once
  // keep@'s copy is stored) and holds the commit point until the gate opens.
  const blocker =
    "import { appendFileSync, existsSync } from 'node:fs';\n" +
    "export default { name: 'blocker', version: '1', stages: ['per-user'], configure() { return {}; }, async run(ctx) {\n" +
    '  await new Promise((r) => setTimeout(r, 1000));\n' +
    `  ctx.onCommit(async () => { appendFileSync(${JSON.stringify(pids)}, process.pid + '\\n'); while (!existsSync(${JSON.stringify(gate)})) await new Promise((r) => setTimeout(r, 20)); });\n` +
    "  return { verdict: 'accept' }; } };\n";
  withPlugins(s, '', { blocker });
  s.write('nqqueue.cfb', 'keep@example.com:flagger;quarantine=all\nother@example.com:blocker\n');
  const running = s.run({ to: ['keep@example.com', 'other@example.com'] });
  t.after(async () => {
    writeFileSync(gate, '');
    await running.catch(() => undefined);
  });
  const first = await until('the commit point', () => (existsSync(pids) && /^\d+\n/.test(readFileSync(pids, 'utf8')) ? Number(readFileSync(pids, 'utf8').split('\n')[0]) : undefined));
  assert.equal(listed(s).length, 1, 'stored before anything is queued');
  assert.equal(s.standIn.calls().length, 0);
  if (DAEMON_MODE) assert.equal(first, daemonPid(s), 'the daemon holds the commit point');
  process.kill(first, 'SIGKILL');
  await until('the kill', () => (alive(first) ? undefined : true));
  writeFileSync(gate, '');
  const r = await running;
  if (DAEMON_MODE) {
    // The client was told nothing yet: it runs the standalone program, which keeps its own copy.
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.deliveries.map(rcptsOf), [['other@example.com']]);
    assert.equal(listed(s).length, 2, 'one copy too many');
  } else {
    assert.equal(r.signal, 'SIGKILL');
    assert.equal(s.standIn.calls().length, 0, 'nothing queued: the sender retries');
    assert.equal(listed(s).length, 1, 'one copy too many once the retry keeps its own');
  }
  assert.deepEqual(pending(s), []);
});

function chattr(flag: '+i' | '-i', path: string): boolean {
  return spawnSync('/usr/bin/chattr', [flag, path], { stdio: 'ignore' }).status === 0;
}

test('a quarantine directory that cannot take the copy defers the message (71): nothing queued, the log names the store and the path', LIMIT, async (t) => {
  const s = make();
  withPlugins(s);
  // onerror=accept must not turn a lost copy into a delivered one.
  s.write('nqqueue.cfb', 'keep@example.com:flagger;quarantine=all\nsoft@example.com:flagger;quarantine=all,onerror=accept\n');
  const q = join(s.home, 'quarantine');
  mkdirSync(join(q, 'tmp'), { recursive: true, mode: 0o700 });
  chmodSync(s.home, 0o700);
  chmodSync(q, 0o700);
  const check = (r: Awaited<ReturnType<Setup['run']>>, what: string) => {
    assert.equal(r.code, 71, `${what}: ${r.stderr}`);
    assert.equal(s.standIn.calls().length, 0, `${what}: nothing queued`);
    assert.match(r.logLines.join('\n'), /code=NQQ_ERR_KEEP reason="quarantine store failed/, what);
    assert.ok(r.logLines.join('\n').includes(q), `${what}: the path is in the log: ${r.logLines.join('\n')}`);
    assert.doesNotMatch(r.logLines.join('\n'), /mail scanner unavailable/, what);
  };
  if (chattr('+i', q)) {
    try {
      for (const rcpt of ['keep@example.com', 'soft@example.com']) {
        const r = await s.run({ to: [rcpt, 'other@example.com'], extraEnv: { NQQUEUE_REJECT: 'plain' } });
        check(r, `immutable ${q}, ${rcpt}`);
      }
    } finally {
      chattr('-i', q);
    }
    assert.deepEqual(ids(s), []);
    assert.deepEqual(pending(s), [], 'the copy written under tmp/ was taken back');
  } else {
    t.diagnostic('chattr +i is not supported here: only the file-in-the-way case runs');
  }
  // A file where the store's directory should be.
  const home2 = make();
  withPlugins(home2);
  home2.write('nqqueue.cfb', 'keep@example.com:flagger;quarantine=all\nsoft@example.com:flagger;quarantine=all,onerror=accept\n');
  mkdirSync(home2.home, { recursive: true, mode: 0o700 });
  writeFileSync(join(home2.home, 'quarantine'), 'not a directory');
  for (const rcpt of ['keep@example.com', 'soft@example.com']) {
    const r = await home2.run({ to: [rcpt, 'other@example.com'], extraEnv: { NQQUEUE_REJECT: 'plain' } });
    assert.equal(r.code, 71, `${rcpt}: ${r.stderr}`);
    assert.equal(home2.standIn.calls().length, 0, `${rcpt}: nothing queued`);
    const log = r.logLines.join('\n');
    assert.match(log, /code=NQQ_ERR_KEEP reason="quarantine store failed/);
    assert.ok(log.includes(join(home2.home, 'quarantine')), log);
    assert.doesNotMatch(log, /mail scanner unavailable/);
  }
});

test('a message deferred after its copy was stored leaves no copy: qmail-queue failing first, a later tempfail, the retry spool failing', LIMIT, async () => {
  const s = make({ standIn: { failOn: [{ call: 1, code: 53 }] } });
  withPlugins(s);
  const later = s.script('later.sh', '#!/bin/sh\ncat >/dev/null\necho "try later"\nexit 111\n');
  s.write('nqqueue.cfb', `keep@example.com:flagger;quarantine=all\nslow@example.com:exec=${later}\ntagged@example.com:tagger\n`);
  const first = await s.run({ to: ['keep@example.com', 'other@example.com'] });
  assert.equal(first.code, 53, first.stderr);
  assert.deepEqual(ids(s), [], 'qmail-queue failed on the only copy: deferred, nothing kept');
  assert.deepEqual(pending(s), []);

  const tempfail = await s.run({ to: ['keep@example.com', 'slow@example.com'], extraEnv: { NQQUEUE_REJECT: 'plain' } });
  assert.equal(tempfail.code, 71, tempfail.stderr);
  assert.deepEqual(ids(s), []);
  assert.deepEqual(pending(s), []);

  // Two copies to queue: the first is queued, the second fails and the retry spool cannot take it.
  s.standIn.setOptions({ failOn: [{ call: 3, code: 53 }] });
  // (In daemon mode `nqqueue serve` made spool/ when it flushed at start: it is replaced by a file.)
  rmSync(join(s.home, 'spool'), { recursive: true, force: true });
  writeFileSync(join(s.home, 'spool'), 'not a directory');
  const spool = await s.run({ to: ['keep@example.com', 'other@example.com', 'tagged@example.com'], extraEnv: { NQQUEUE_REJECT: 'plain' } });
  assert.equal(spool.code, 71, spool.stderr);
  assert.equal(spool.deliveries.length, 1, 'one copy was queued before the failure');
  assert.deepEqual(ids(s), [], 'deferred: the copy is taken back (the retry keeps it)');
  assert.deepEqual(pending(s), []);
  assert.deepEqual(listed(s), []);

  // Accepted in the end: kept once.
  s.standIn.setOptions({});
  const ok = await s.run({ to: ['keep@example.com', 'other@example.com'] });
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(ids(s).length, 1);
});

test('q=maildir: a recipient whose Maildir is missing has its copy in the global quarantine (logged); the others are handled', LIMIT, async (t) => {
  const s = make();
  const mail = join(s.dir, 'mail');
  mkdirSync(join(mail, 'example.com', 'has', 'Maildir'), { recursive: true });
  withPlugins(s, `[quarantine]\nmaildir = ${mail}/%d/%u/Maildir/.Quarantine\n`);
  s.write('nqqueue.cfb', 'has@example.com:flagger;quarantine=all,q=maildir\ngone@example.com:flagger;quarantine=all,q=maildir\n');
  const r = await s.run({ to: ['has@example.com', 'gone@example.com', 'plain@example.com'] });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.deliveries.map(rcptsOf), [['plain@example.com']]);
  const folder = join(mail, 'example.com', 'has', 'Maildir', '.Quarantine');
  assert.equal(readdirSync(join(folder, 'new')).length, 1);
  assert.deepEqual(readdirSync(join(folder, 'tmp')), []);
  assert.equal(existsSync(join(mail, 'example.com', 'gone')), false, 'no Maildir is made up for gone@');
  const list = listed(s);
  assert.equal(list.length, 1);
  assert.match(list[0]!, /\t<gone@example\.com>\tflagger: flagged by test$/);
  const id = list[0]!.split('\t')[0]!;
  const show = s.command(['quarantine', 'show', id]);
  assert.match(show.stdout, new RegExp(`^note: .*${join(mail, 'example.com', 'gone', 'Maildir')}.*: kept in the global quarantine instead$`, 'm'));
  assert.match(r.logLines[0]!, /quarantine <gone@example\.com>: .*global quarantine/);

  // A folder that exists but cannot take the file at the commit point: the global store too, logged.
  const stuck = join(mail, 'example.com', 'stuck', 'Maildir', '.Quarantine');
  for (const d of ['tmp', 'new', 'cur']) mkdirSync(join(stuck, d), { recursive: true, mode: 0o700 });
  s.write('nqqueue.cfb', 'stuck@example.com:flagger;quarantine=all,q=maildir\n');
  if (!chattr('+i', join(stuck, 'new'))) {
    t.diagnostic('chattr +i is not supported here: the commit-time fallback is not tried');
    return;
  }
  try {
    const r2 = await s.run({ to: ['stuck@example.com', 'plain@example.com'] });
    assert.equal(r2.code, 0, r2.stderr);
    assert.deepEqual(r2.deliveries.slice(1).map(rcptsOf), [['plain@example.com']]);
    assert.match(r2.logLines[0]!, new RegExp(`quarantine <stuck@example\\.com>: cannot write to the Maildir folder ${stuck.replace(/\./g, '\\.')}: EPERM.*: kept in the global quarantine instead as [0-9a-z]+`));
  } finally {
    chattr('-i', join(stuck, 'new'));
  }
  assert.deepEqual(readdirSync(join(stuck, 'tmp')), []);
  assert.deepEqual(readdirSync(join(stuck, 'new')), []);
  const after = listed(s);
  assert.equal(after.length, 2);
  assert.match(after.join('\n'), /\t<stuck@example\.com>\tflagger: flagged by test/);
});

/** A Maildir unique name as NQqueue writes it (see src/quarantine/maildir.ts). */
function maildirName(pid: number, host: string, sec = Math.floor(Date.now() / 1000)): string {
  return `${sec}.M123456P${pid}Q1R${Math.random().toString(16).slice(2, 10).padEnd(16, '0')}.${host}`;
}

function deadPid(): number {
  const p = spawnSync('/bin/true');
  assert.ok(p.pid && !alive(p.pid));
  return p.pid;
}

test('partial files left by killed runs (spool/tmp, quarantine/tmp, Maildir tmp/) are removed by a later run; fresh ones of live runs are kept', LIMIT, async () => {
  const s = make({ standIn: { failOn: [{ call: 2, code: 53 }] } });
  const mail = join(s.dir, 'mail');
  const folder = join(mail, 'example.com', 'keep', 'Maildir', '.Quarantine');
  for (const d of ['tmp', 'new', 'cur']) mkdirSync(join(folder, d), { recursive: true, mode: 0o700 });
  withPlugins(s, `[quarantine]\nmaildir = ${mail}/%d/%u/Maildir/.Quarantine\n`);
  s.write('nqqueue.cfb', 'keep@example.com:flagger;quarantine=all,q=maildir\nglob@example.com:flagger;quarantine=all\ntagged@example.com:tagger\n');
  const live = process.pid;
  const dead = deadPid();
  const old = new Date(Date.now() - 7 * 3600_000);
  const age = (p: string) => utimesSync(p, old, old);

  const spoolTmp = join(s.home, 'spool', 'tmp');
  mkdirSync(spoolTmp, { recursive: true, mode: 0o700 });
  const spoolFiles = { stale: `${live}.old1.aaaa.spool`, orphan: `${dead}.new1.bbbb.spool`, fresh: `${live}.new2.cccc.spool` };
  for (const n of Object.values(spoolFiles)) writeFileSync(join(spoolTmp, n), 'partial');
  age(join(spoolTmp, spoolFiles.stale));

  const qTmp = join(s.home, 'quarantine', 'tmp');
  const qEntries = {
    stale: `${live}.aaaaaaaaaaaaaaaa0001.new`,
    orphan: `${dead}.aaaaaaaaaaaaaaaa0002.new`,
    fresh: `${live}.aaaaaaaaaaaaaaaa0003.new`,
    dropped: `${dead}.aaaaaaaaaaaaaaaa0004.drop`,
    junk: 'leftover.partial',
  };
  for (const [k, n] of Object.entries(qEntries)) {
    if (k === 'junk') {
      mkdirSync(qTmp, { recursive: true, mode: 0o700 });
      writeFileSync(join(qTmp, n), 'x');
    } else {
      mkdirSync(join(qTmp, n), { recursive: true, mode: 0o700 });
      writeFileSync(join(qTmp, n, 'message'), 'partial');
    }
  }
  age(join(qTmp, qEntries.stale));
  age(join(qTmp, qEntries.junk));

  const mTmp = join(folder, 'tmp');
  const mFiles = {
    stale: maildirName(live, 'mx.example.com'),
    orphan: maildirName(dead, 'mx.example.com'),
    fresh: maildirName(live, 'mx.example.com'),
    otherHost: maildirName(dead, 'mx2.example.com'),
    foreign: '1700000000.M1P2.mda.example.com',
  };
  for (const n of Object.values(mFiles)) writeFileSync(join(mTmp, n), 'partial');
  age(join(mTmp, mFiles.stale));
  age(join(mTmp, mFiles.foreign));

  const r = await s.run({ to: ['keep@example.com', 'glob@example.com', 'other@example.com', 'tagged@example.com'] });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.deliveries.length, 1);
  assert.match(r.logLines[0]!, /spooled/);

  const spoolLeft = readdirSync(spoolTmp).sort();
  assert.deepEqual(spoolLeft, [spoolFiles.fresh], 'spool/tmp: the stale and the orphaned partial files are gone, the live one stays');
  assert.deepEqual(readdirSync(qTmp).sort(), [qEntries.fresh], 'quarantine/tmp: only the live run\'s fresh entry stays');
  assert.deepEqual(readdirSync(mTmp).sort(), [mFiles.otherHost, mFiles.foreign, mFiles.fresh].sort(), "Maildir tmp/: NQqueue's own leftovers are gone; other hosts' fresh files and other programs' files stay");
  assert.equal(readdirSync(join(folder, 'new')).length, 1);
  assert.equal(ids(s).length, 1);
});
