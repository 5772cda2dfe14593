// Nothing run as root leaves root-owned files in a home that belongs to someone else: queue mode, the
// daemon, `flush` and `quarantine release/delete` switch to the home's owner (here uid 65534, `nobody`)
// before they write; a user who is not the owner is refused with the user to run as. Checked with stat
// on disk. Needs root (the test machine runs as root); skipped otherwise.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, lstatSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { DAEMON_MODE, pluginDir, rcptsOf, setupsForThisFile, type Setup } from '../helpers/nqq.js';
import { NQQUEUE_BIN } from '../helpers/smtpd.js';

const make = setupsForThisFile();
const NOBODY = 65534;
const asRoot = process.geteuid?.() === 0;
const skip = asRoot ? false : 'needs root (switching users)';

const FLAGGER =
  "export default { name: 'flagger', version: '1.0', stages: ['per-user'], configure() { return {}; }, scope(_c, r) { return r; }, async run() { return { verdict: 'accept', flagged: true }; } };\n";

function chownTree(path: string, uid: number, gid: number): void {
  chownSync(path, uid, gid);
  if (!lstatSync(path).isDirectory()) return;
  for (const name of readdirSync(path)) chownTree(join(path, name), uid, gid);
}

/** Every file and directory under `dir` (itself included) with its owner. */
function owners(dir: string): { path: string; uid: number; gid: number }[] {
  const st = lstatSync(dir);
  const out = [{ path: dir, uid: st.uid, gid: st.gid }];
  if (st.isDirectory()) for (const name of readdirSync(dir)) out.push(...owners(join(dir, name)));
  return out;
}

function assertOwnedBy(dir: string, uid: number): void {
  const wrong = owners(dir).filter((o) => o.uid !== uid || o.gid === 0);
  assert.deepEqual(wrong, [], `files under ${dir} not owned by uid ${uid} (or with group root)`);
}

/**
 * An installation whose home belongs to nobody (as qmaild's would), readable by nobody: the test dir
 * traversable, the stand-in's record directory nobody's (the stand-in runs as the user that calls it).
 */
function nobodysInstallation(o: Parameters<typeof make>[0] = {}, createHome = true): Setup {
  const s = make(o);
  chmodSync(s.dir, 0o755);
  chownTree(s.standIn.dir, NOBODY, NOBODY);
  chmodSync(s.standIn.dir, 0o755);
  if (createHome) {
    mkdirSync(s.home, { mode: 0o700 });
    chownSync(s.home, NOBODY, NOBODY);
  }
  return s;
}

function runAs(s: Setup, args: string[], uid?: number, extraEnv: Record<string, string> = {}) {
  const r = spawnSync(NQQUEUE_BIN, args, {
    env: { ...s.env, ...extraEnv },
    cwd: '/',
    encoding: 'utf8',
    timeout: 60_000,
    ...(uid === undefined ? {} : { uid, gid: uid }),
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('queue mode run as root (qmail-inject from root cron): the spool it writes belongs to the home owner; a root flush keeps it so', { skip }, async () => {
  const s = nobodysInstallation({ rcpthosts: ['example.com'], standIn: { failOn: [{ call: 2, code: 53 }] } });
  s.write('nqqueue.cfb', 'a@example.com:header=X-A:/never/\n');
  // A small spill threshold: the message is kept in a working file under the home too.
  s.write('nqqueue.conf', 'spill = 10\n');
  const r = await s.run({ to: ['a@example.com', 'b@example.com'] });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.deliveries.length, 1);
  assert.equal(readdirSync(join(s.home, 'spool', 'new')).length, 1);
  assertOwnedBy(s.home, NOBODY);

  // The cron job: root runs flush. It delivers, and what it creates (spool/cur) is nobody's.
  const f = runAs(s, ['flush']);
  assert.equal(f.code, 0, f.stderr);
  assert.match(f.stderr, /running as nobody, the owner of /);
  assert.match(f.stderr, /1 delivered, 0 kept/);
  assert.deepEqual(s.standIn.deliveries().flatMap(rcptsOf).sort(), ['a@example.com', 'b@example.com']);
  assertOwnedBy(s.home, NOBODY);
});

test('a root flush on a home with no spool/ yet creates it for the owner, so the owner can spool later', { skip }, async () => {
  const s = nobodysInstallation({ rcpthosts: ['example.com'], standIn: { failOn: [{ call: 2, code: 53 }] } });
  const f = runAs(s, ['flush']);
  assert.equal(f.code, 0, f.stderr);
  assert.equal(statSync(join(s.home, 'spool')).uid, NOBODY);
  assertOwnedBy(s.home, NOBODY);
  // The owner (what qmail-smtpd runs as) can still spool a partial failure: exit 0, not 71.
  s.write('nqqueue.cfb', 'a@example.com:header=X-A:/never/\n');
  const r = await s.run({ to: ['a@example.com', 'b@example.com'] });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(readdirSync(join(s.home, 'spool', 'new')).length, 1);
  assertOwnedBy(s.home, NOBODY);
});

test('a missing home whose parent belongs to nobody: root creates it as nobody (0700)', { skip }, () => {
  const s = nobodysInstallation({}, false);
  chownSync(s.dir, NOBODY, NOBODY);
  const f = runAs(s, ['flush']);
  assert.equal(f.code, 0, f.stderr);
  const st = statSync(s.home);
  assert.equal(st.uid, NOBODY);
  assert.equal(st.mode & 0o777, 0o700);
  assertOwnedBy(s.home, NOBODY);
});

test('a missing home is created on first use by the user running, 0700, when its parent allows', { skip }, () => {
  const s = nobodysInstallation({}, false);
  chownSync(s.dir, NOBODY, NOBODY);
  const f = runAs(s, ['flush'], NOBODY);
  assert.equal(f.code, 0, f.stderr);
  assert.equal(statSync(s.home).uid, NOBODY);
  assert.equal(statSync(s.home).mode & 0o777, 0o700);
  // A parent nobody may not write to: refused, saying how to create it.
  const t = nobodysInstallation({}, false);
  const g = runAs(t, ['flush'], NOBODY);
  assert.equal(g.code, 1);
  assert.match(g.stderr, new RegExp(`cannot create NQQUEUE_HOME ${t.home}: ${t.dir} is not writable by nobody \\(uid 65534\\); .*install -d -m 0700 -o qmaild`));
});

test('commands started at the same moment on a missing home: one makes it, every one runs (none refuses it as already there)', { skip }, async () => {
  const s = nobodysInstallation({}, false);
  chownSync(s.dir, NOBODY, NOBODY);
  const runs = await Promise.all(
    Array.from({ length: 12 }, () =>
      new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const c = spawn(NQQUEUE_BIN, ['flush'], { env: s.env, uid: NOBODY, gid: NOBODY, stdio: ['ignore', 'ignore', 'pipe'] });
        let stderr = '';
        c.stderr.on('data', (d: Buffer) => (stderr += d));
        c.on('close', (code) => resolve({ code, stderr }));
      }),
    ),
  );
  assert.deepEqual(runs.filter((r) => r.code !== 0), []);
  assert.equal(statSync(s.home).uid, NOBODY);
  assert.equal(statSync(s.home).mode & 0o777, 0o700);
});

test('quarantine release and delete run as root switch to the home owner', { skip }, async () => {
  const s = nobodysInstallation({ rcpthosts: ['example.com'] });
  const dir = pluginDir(s, { flagger: FLAGGER });
  s.write('nqqueue.conf', `plugin_dir = ${dir}\n`);
  s.write('nqqueue.cfb', ':flagger;quarantine=all\n');
  const r = await s.run({ to: ['a@example.com', 'b@example.com'] });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.deliveries.length, 0);
  const list = runAs(s, ['quarantine', 'list']);
  assert.equal(list.code, 0, list.stderr);
  const ids = list.stdout.trim().split('\n').map((l) => l.split('\t')[0]!);
  assert.equal(ids.length, 2);
  const rel = runAs(s, ['quarantine', 'release', ids[0]!]);
  assert.equal(rel.code, 0, rel.stderr);
  assert.equal(s.standIn.deliveries().length, 1);
  const del = runAs(s, ['quarantine', 'delete', ids[1]!]);
  assert.equal(del.code, 0, del.stderr);
  assert.equal(runAs(s, ['quarantine', 'list']).stdout, '');
  assertOwnedBy(s.home, NOBODY);
});

test('not the owner and not root: refused, naming the user to run as', { skip }, () => {
  const s = nobodysInstallation();
  chownSync(s.home, 1, 1); // daemon
  for (const args of [['flush'], ['quarantine', 'delete', '0123456789abcdef']]) {
    const r = runAs(s, args, NOBODY);
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stderr,
      new RegExp(`NQQUEUE_HOME ${s.home} belongs to daemon \\(uid 1\\), not to nobody \\(uid 65534\\): run "nqqueue ${args.slice(0, 2).join(' ').replace(/ 0123.*/, '')}[^"]*" as daemon \\(or as root, which switches to it\\)`),
    );
  }
  assert.deepEqual(readdirSync(s.home), [], 'nothing written');
});

test('root and a home of a uid with no passwd entry and group root: refused, nothing written', { skip }, async () => {
  const s = nobodysInstallation();
  chownSync(s.home, 54321, 0);
  const f = runAs(s, ['flush']);
  assert.equal(f.code, 1);
  assert.match(f.stderr, /is uid 54321, which has no passwd entry, and its group is root: give it the group of the user qmail-smtpd runs as/);
  if (DAEMON_MODE) return; // the daemon refuses to start the same way (exit 111): no daemon to talk to
  const r = await s.run({ to: ['a@example.com'] });
  assert.equal(r.code, 82);
  assert.match(r.errorText.toString(), /^Z/);
  assert.match(r.logLines.join('\n'), /code=NQQ_ERR_OWNER .*no passwd entry/);
  assert.deepEqual(readdirSync(s.home), [], 'nothing written');
});

test('a root-owned home (left by an older release run as root): the owner is told to chown it', { skip }, () => {
  const s = nobodysInstallation();
  chownSync(s.home, 0, 0);
  const r = runAs(s, ['flush'], NOBODY);
  assert.equal(r.code, 1);
  assert.match(
    r.stderr,
    new RegExp(`NQQUEUE_HOME ${s.home} belongs to root, not to nobody \\(uid 65534\\): give it to the user qmail-smtpd runs as \\(chown -R qmaild:nofiles ${s.home}\\), or run "nqqueue flush" as root`),
  );
});

test('nqqueue test (a dry run) as root spills a large message as the home owner', { skip }, () => {
  const s = nobodysInstallation();
  s.write('nqqueue.conf', 'spill = 1K\n');
  const r = spawnSync(NQQUEUE_BIN, ['test', '--from', 'a@client.example', '--to', 'rcpt@example.com'], {
    env: s.env,
    cwd: '/',
    encoding: 'utf8',
    input: `Subject: x\n\n${'y'.repeat(5000)}\n`,
    timeout: 60_000,
  });
  assert.equal(r.status, 0, r.stderr);
  assertOwnedBy(s.home, NOBODY);
  assert.deepEqual(readdirSync(join(s.home, 'tmp')), []);
});

test('root flush with no home yet in a root-owned directory: nothing to flush, and no root-owned home made', { skip }, () => {
  const s = nobodysInstallation({}, false);
  const f = runAs(s, ['flush']);
  assert.equal(f.code, 0, f.stderr);
  assert.match(f.stderr, new RegExp(`nothing to flush: NQQUEUE_HOME ${s.home} does not exist yet \\(not created as root: .*install -d -m 0700 -o qmaild -g nofiles ${s.home}\\)`));
  assert.throws(() => statSync(s.home), /ENOENT/);
  const q = runAs(s, ['quarantine', 'delete', '0123456789abcdef']);
  assert.equal(q.code, 1);
  assert.match(q.stderr, /does not exist yet \(not created as root/);
  assert.throws(() => statSync(s.home), /ENOENT/);
});
