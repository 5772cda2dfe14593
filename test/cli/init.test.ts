// `nqqueue init`, run as a separate process: a fresh control directory gets the three starter files
// (which check-config passes) and a 0700 home; a second run leaves every file alone and says so; a clamd
// that answers is named in nqqueue.conf, backends that do not are commented out; as root with
// --user nobody the home belongs to nobody; nothing is ever overwritten; a write that fails is exit 111.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';

import { requireDaemon } from '../helpers/daemons.js';
import { REPO, setupsForThisFile, type Setup } from '../helpers/nqq.js';
import { NQQUEUE_BIN } from '../helpers/smtpd.js';

const make = setupsForThisFile();
const NOBODY = 65534;
const asRoot = process.geteuid?.() === 0;
const FILES = ['general.cfb', 'nqqueue.cfb', 'nqqueue.conf'];

function init(s: Setup, args: string[], o: { uid?: number; env?: Record<string, string> } = {}) {
  const r = spawnSync(NQQUEUE_BIN, ['init', ...args], {
    env: { ...s.env, ...(o.env ?? {}) },
    cwd: '/',
    encoding: 'utf8',
    timeout: 60_000,
    ...(o.uid === undefined ? {} : { uid: o.uid, gid: o.uid }),
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A clamd.conf naming a socket nothing listens on (so only the usual places are left to find). */
function deadClamdConf(s: Setup): string {
  const p = join(s.dir, 'clamd-dead.conf');
  writeFileSync(p, `# nothing listens here\nLocalSocket ${join(s.dir, 'no-clamd.sock')}\n`);
  return p;
}

function answers(address: string): Promise<boolean> {
  return new Promise((resolve) => {
    const [host, port] = address.startsWith('/') ? [address, undefined] : address.split(':');
    const c = port === undefined ? connect(host!) : connect(Number(port), host);
    c.on('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.on('error', () => resolve(false));
  });
}

/** The "without any backend" cases need the usual places empty; a host running a real daemon skips them. */
async function usualPlacesEmpty(t: TestContext): Promise<boolean> {
  const busy: string[] = [];
  for (const a of ['/run/clamav/clamd.ctl', '/var/run/clamav/clamd.ctl', '127.0.0.1:783', '127.0.0.1:11333']) if (await answers(a)) busy.push(a);
  if (busy.length === 0) return true;
  process.stderr.write(`\n!!! SKIPPED "${t.name}": something listens at ${busy.join(', ')}\n`);
  t.skip(`something listens at ${busy.join(', ')}`);
  return false;
}

function checkConfig(s: Setup) {
  return s.command(['check-config']);
}

test('a fresh control directory: the three files, which check-config passes, and a 0700 home', { skip: asRoot ? false : 'needs root (--user nobody)' }, async (t) => {
  if (!(await usualPlacesEmpty(t))) return;
  const s = make({ rcpthosts: ['example.com'] });
  const r = init(s, ['--user', 'nobody', '--clamd-conf', deadClamdConf(s)]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
  for (const name of FILES) {
    assert.match(r.stdout, new RegExp(`^  wrote +${join(s.control, name).replace(/[.]/g, '\\.')}$`, 'm'));
    const st = statSync(join(s.control, name));
    assert.equal(st.mode & 0o777, 0o644, name);
  }
  assert.deepEqual(readdirSync(s.control).sort(), ['general.cfb', 'me', 'nqqueue.cfb', 'nqqueue.conf', 'rcpthosts'], 'no temporary file left');
  const st = lstatSync(s.home);
  assert.ok(st.isDirectory());
  assert.equal(st.mode & 0o777, 0o700);
  assert.match(r.stdout, new RegExp(`created +${s.home} \\(0700, nobody:`));

  const c = checkConfig(s);
  assert.equal(c.code, 0, c.stderr);
  assert.match(c.stdout, /check-config: OK \(.*nqqueue\.conf; 2 \.cfb files, 2 lines\)/);

  // What it wrote: clamav for every message, SpamAssassin per recipient with the quarantine.
  assert.match(readFileSync(join(s.control, 'general.cfb'), 'utf8'), /^:clamav$/m);
  assert.match(readFileSync(join(s.control, 'nqqueue.cfb'), 'utf8'), /^:spamassassin=pass;quarantine=spamassassin$/m);
  const explain = s.command(['explain', '--from', 'x@client.example', '--to', 'alice@example.com']);
  assert.equal(explain.code, 0, explain.stderr);
  assert.match(explain.stdout, /clamav/);
  assert.match(explain.stdout, /spamassassin[^]*quarantine/);

  // No backend answered: every section is commented out, and each says so.
  const conf = readFileSync(join(s.control, 'nqqueue.conf'), 'utf8');
  assert.doesNotMatch(conf, /^\[/m, 'no section is active');
  assert.doesNotMatch(conf, /^[a-z]/m, 'no key is active');
  assert.match(conf, /^# \[clamav\]\n# socket = .*no-clamd\.sock$/m);
  assert.match(conf, /^# \[spamassassin\]\n# host = 127\.0\.0\.1:783$/m);
  assert.match(conf, /^# \[rspamd\]\n# url = http:\/\/127\.0\.0\.1:11333$/m);
  assert.equal(conf.match(/did not answer/g)?.length, 3, conf);
  assert.match(r.stdout, /^  spamd +did not answer at 127\.0\.0\.1:783: connection refused \(commented out in nqqueue\.conf\)$/m);
  assert.match(r.stdout, /Until clamd and spamd answer, mail is deferred/);
});

test('a second run leaves every file and the home alone, says so, and changes no byte', { skip: asRoot ? false : 'needs root (--user nobody)' }, () => {
  const s = make();
  const first = init(s, ['--user', 'nobody']);
  assert.equal(first.code, 0, first.stderr);
  // An administrator's own edit must survive.
  s.write('nqqueue.cfb', ':spamassassin\n');
  const before = Object.fromEntries(FILES.map((n) => [n, readFileSync(join(s.control, n), 'utf8')]));
  const homeBefore = statSync(s.home);
  const again = init(s, ['--user', 'nobody']);
  assert.equal(again.code, 0, again.stderr);
  for (const name of FILES) {
    assert.match(again.stdout, new RegExp(`^  left alone +${join(s.control, name).replace(/[.]/g, '\\.')} \\(it exists`, 'm'));
    assert.equal(readFileSync(join(s.control, name), 'utf8'), before[name], name);
  }
  assert.doesNotMatch(again.stdout, /wrote|created/);
  assert.match(again.stdout, new RegExp(`left alone +${s.home} \\(it exists\\)`));
  assert.equal(statSync(s.home).ino, homeBefore.ino);
  assert.equal(readFileSync(join(s.control, 'nqqueue.cfb'), 'utf8'), ':spamassassin\n');
});

test('with a clamd running, nqqueue.conf names its socket (from clamd.conf) and check-config passes', { skip: asRoot ? false : 'needs root (--user nobody)' }, (t) => {
  const socket = requireDaemon('NQQ_TEST_CLAMD_SOCKET', t);
  if (!socket) return;
  const s = make();
  const conf = join(s.dir, 'clamd.conf');
  writeFileSync(conf, `# clamd.conf\nForeground yes\nLocalSocket ${socket}\nLocalSocketMode 666\n`);
  const r = init(s, ['--user', 'nobody', '--clamd-conf', conf]);
  assert.equal(r.code, 0, r.stderr);
  const text = readFileSync(join(s.control, 'nqqueue.conf'), 'utf8');
  assert.match(text, new RegExp(`^\\[clamav\\]\\nsocket = ${socket.replace(/[.]/g, '\\.')}$`, 'm'));
  assert.match(r.stdout, new RegExp(`clamd +answered at ${socket.replace(/[.]/g, '\\.')} \\(LocalSocket in ${conf.replace(/[.]/g, '\\.')}\\)`));
  const c = checkConfig(s);
  assert.equal(c.code, 0, c.stderr);
  // The section is read as written: a dry run scans with clamd at that socket (as nobody, the home's
  // owner, which root becomes: the test directory must let nobody in).
  chmodSync(s.dir, 0o755);
  const dry = s.command(['test', '--from', 'x@client.example', '--to', 'someone@elsewhere.example'], 'Subject: hi\n\nhello\n');
  assert.equal(dry.code, 0, dry.stdout + dry.stderr);
  assert.match(dry.stdout, /clamav/, dry.stdout + dry.stderr);
  assert.doesNotMatch(dry.stdout + dry.stderr, /ENOENT|cannot connect/);
});

test('--spamd and --rspamd name where they listen: nqqueue.conf gets the addresses that answered', { skip: asRoot ? false : 'needs root (--user nobody)' }, (t) => {
  const spamd = requireDaemon('NQQ_TEST_SPAMD', t);
  const rspamd = requireDaemon('NQQ_TEST_RSPAMD_URL', t);
  if (!spamd || !rspamd) return;
  const s = make();
  const r = init(s, ['--user', 'nobody', '--clamd-conf', deadClamdConf(s), '--spamd', spamd, '--rspamd', rspamd]);
  assert.equal(r.code, 0, r.stderr);
  const text = readFileSync(join(s.control, 'nqqueue.conf'), 'utf8');
  assert.match(text, new RegExp(`^\\[spamassassin\\]\\nhost = ${spamd.replace(/[.]/g, '\\.')}$`, 'm'));
  assert.match(text, new RegExp(`^\\[rspamd\\]\\nurl = ${rspamd.replace(/[.]/g, '\\.')}$`, 'm'));
  assert.match(r.stdout, new RegExp(`spamd +answered at ${spamd.replace(/[.]/g, '\\.')} \\(--spamd\\)`));
  // clamd did not answer: left commented out, so check-config still passes (no section is wrong).
  assert.match(text, /^# \[clamav\]$/m);
  const c = checkConfig(s);
  assert.equal(c.code, 0, c.stderr);
});

test('--spamd with a socket path: nqqueue.conf names it as socket =, which check-config takes', { skip: asRoot ? false : 'needs root (--user nobody)' }, () => {
  const s = make();
  const sock = join(s.dir, 'spamd.sock');
  const r = init(s, ['--user', 'nobody', '--clamd-conf', deadClamdConf(s), '--spamd', sock]);
  assert.equal(r.code, 0, r.stderr);
  const text = readFileSync(join(s.control, 'nqqueue.conf'), 'utf8');
  // Nothing answers there: left commented out, with the key that takes a socket path.
  assert.match(text, new RegExp(`^# socket = ${sock.replace(/[.]/g, '\\.')}$`, 'm'));
  // Uncommented as the comment says, the file is right.
  s.write('nqqueue.conf', text.replace(/^# \[spamassassin\]$/m, '[spamassassin]').replace(`# socket = ${sock}`, `socket = ${sock}`));
  const c = checkConfig(s);
  assert.equal(c.code, 0, c.stderr);
});

test('as root with --user nobody the home belongs to nobody (and its group), 0700; the files stay root\'s', { skip: asRoot ? false : 'needs root' }, () => {
  const s = make();
  const r = init(s, ['--user', 'nobody']);
  assert.equal(r.code, 0, r.stderr);
  const st = lstatSync(s.home);
  assert.equal(st.uid, NOBODY);
  assert.notEqual(st.gid, 0);
  assert.equal(st.mode & 0o777, 0o700);
  for (const name of FILES) assert.equal(statSync(join(s.control, name)).uid, 0, name);
  // The next steps name that user, and the probe to run next.
  assert.match(r.stdout, /check-config --probe --user nobody --env QMAILQUEUE=\S*\/bin\/nqqueue$/m);
  assert.match(r.stdout, /:allow,QMAILQUEUE="[^"]*\/bin\/nqqueue",NQQUEUE_CONTROLDIR="[^"]+",NQQUEUE_HOME="[^"]+",NQQUEUE_QMAILQUEUE="[^"]+"$/m);
  assert.match(r.stdout, /tcprules \/etc\/tcp\.smtp\.cdb \/etc\/tcp\.smtp\.tmp < \/etc\/tcp\.smtp/);
});

test('the daemontools and systemd steps, run as printed, give run files with this installation\'s paths and user', { skip: asRoot ? false : 'needs root (--user nobody)' }, () => {
  const s = make();
  const r = init(s, ['--user', 'nobody', '--dry-run']);
  assert.equal(r.code, 0, r.stderr);
  const out = join(s.dir, 'service');
  mkdirSync(out);
  const sedLines = r.stdout.split('\n').filter((l) => /^ +sed /.test(l));
  assert.equal(sedLines.length, 2, r.stdout);
  for (const line of sedLines) {
    const command = line.trim().replace(/> \S+$/, (m) => `> ${join(out, m.slice(2).replace(/\//g, '_'))}`);
    const run = spawnSync('sh', ['-c', command], { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
  }
  const runFile = readFileSync(join(out, '_var_qmail_supervise_nqqueue_run'), 'utf8');
  const unit = readFileSync(join(out, '_etc_systemd_system_nqqueue.service'), 'utf8');
  for (const text of [runFile, unit]) {
    assert.ok(text.includes(`NQQUEUE_CONTROLDIR=${s.control}`), text);
    assert.ok(text.includes(`NQQUEUE_HOME=${s.home}`), text);
    assert.ok(text.includes(`NQQUEUE_QMAILQUEUE=${s.env.NQQUEUE_QMAILQUEUE}`), text);
    assert.ok(text.includes(`${join(REPO, 'bin', 'nqqueue')} serve`), text);
    assert.doesNotMatch(text, /\/opt\/nqqueue|qmaild|\/var\/qmail\/(control|nqqueue)/);
  }
  assert.match(runFile, /setuidgid nobody /);
  assert.match(unit, /^User=nobody$/m);
  assert.match(unit, /^Group=nogroup$/m);
});

test('--dry-run prints what it would write and writes nothing, not even the home', () => {
  const s = make();
  const r = init(s, ['--dry-run', ...(asRoot ? ['--user', 'nobody'] : [])]);
  assert.equal(r.code, 0, r.stderr);
  for (const name of FILES) assert.equal(existsSync(join(s.control, name)), false, name);
  assert.equal(existsSync(s.home), false);
  assert.match(r.stdout, /dry run, nothing is written/);
  assert.match(r.stdout, new RegExp(`^--- ${join(s.control, 'general.cfb').replace(/[.]/g, '\\.')} \\(would be written\\) ---\\n# general\\.cfb`, 'm'));
  assert.match(r.stdout, /^:clamav$/m);
  assert.match(r.stdout, /^:spamassassin=pass;quarantine=spamassassin$/m);
  assert.match(r.stdout, new RegExp(`would make +${s.home} \\(0700, `));
});

test('files that exist are never overwritten, even when only some do; the others are written', { skip: asRoot ? false : 'needs root (--user nobody)' }, () => {
  const s = make();
  s.write('general.cfb', ':black=a@b.example\n');
  // A dangling symlink is a file too: writing through it would create its target.
  symlinkSync(join(s.dir, 'elsewhere.conf'), join(s.control, 'nqqueue.conf'));
  const r = init(s, ['--user', 'nobody']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(readFileSync(join(s.control, 'general.cfb'), 'utf8'), ':black=a@b.example\n');
  assert.equal(existsSync(join(s.dir, 'elsewhere.conf')), false, 'nothing written through the symlink');
  assert.match(r.stdout, /left alone +\S+\/general\.cfb/);
  assert.match(r.stdout, /left alone +\S+\/nqqueue\.conf/);
  assert.match(r.stdout, /wrote +\S+\/nqqueue\.cfb/);
});

test('a control directory that does not exist, or one the user cannot write: exit 111 with the path and why', { skip: asRoot ? false : 'needs root (runs as nobody)' }, () => {
  const s = make();
  const missing = join(s.dir, 'no-such-control');
  const r = init(s, ['--user', 'nobody'], { env: { NQQUEUE_CONTROLDIR: missing } });
  assert.equal(r.code, 111);
  assert.ok(r.stderr.includes(`nqqueue init: cannot write into the control directory ${missing}: it does not exist`), r.stderr);
  assert.equal(existsSync(s.home), false, 'nothing done');

  // Run as nobody on root's control directory: each file is refused with its path; the home (in a
  // directory nobody may write) too.
  chmodSync(s.dir, 0o755);
  const denied = init(s, [], { uid: NOBODY });
  assert.equal(denied.code, 111, denied.stdout + denied.stderr);
  for (const name of FILES) assert.ok(denied.stderr.includes(`nqqueue init: cannot write ${join(s.control, name)}: permission denied (EACCES)`), denied.stderr);
  assert.ok(denied.stderr.includes(`cannot create the home ${s.home}: permission denied (EACCES)`), denied.stderr);
  assert.match(denied.stderr, /nqqueue init: 4 things could not be written/);
  for (const name of FILES) assert.equal(existsSync(join(s.control, name)), false);
});

test('usage: an unknown user, root as the user, a clamd.conf that cannot be read: exit 2, nothing written', () => {
  const s = make();
  for (const [args, why] of [
    [['--user', 'no-such-user-here'], /--user no-such-user-here: no such user/],
    [['--user', 'root'], /qmail-smtpd never runs as root/],
    [['--clamd-conf', join(s.dir, 'missing.conf')], /--clamd-conf \S+missing\.conf: cannot read it: no such directory \(ENOENT\)/],
    [['stray'], /unexpected argument "stray"/],
    [['--spamd', 'spamd.example'], /--spamd: not a socket path or HOST:PORT: "spamd\.example"/],
    [['--rspamd', 'ftp://127.0.0.1:11333'], /--rspamd: not an http:\/\/ URL/],
    [['--rspamd', 'https://127.0.0.1:11333'], /--rspamd: not an http:\/\/ URL/],
  ] as const) {
    const r = init(s, [...args, ...(asRoot && args[0] !== '--user' ? ['--user', 'nobody'] : [])]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, why);
    assert.match(r.stderr, /\nusage: nqqueue init /);
  }
  assert.deepEqual(readdirSync(s.control).sort(), ['me', 'rcpthosts']);
  assert.equal(existsSync(s.home), false);
});

test('as root without --user, qmail-smtpd\'s usual user qmaild is the owner; when there is none, exit 2 saying so', { skip: asRoot ? false : 'needs root' }, (t) => {
  const s = make();
  const qmaild = readFileSync('/etc/passwd', 'utf8').split('\n').some((l) => l.startsWith('qmaild:'));
  const r = init(s, []);
  if (qmaild) {
    t.diagnostic('this host has a qmaild user');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /for qmail-smtpd's user qmaild/);
    return;
  }
  assert.equal(r.code, 2);
  assert.match(r.stderr, /qmail-smtpd's usual user qmaild is not in \/etc\/passwd: name the user qmail-smtpd runs as with --user NAME/);
  assert.equal(existsSync(join(s.control, 'general.cfb')), false);
});

test('rcpthosts missing: the files are written, and the first step says to list the domains', { skip: asRoot ? false : 'needs root (--user nobody)' }, () => {
  const s = make();
  rmSync(join(s.control, 'rcpthosts'));
  const r = init(s, ['--user', 'nobody']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`  1\\. List your domains in ${join(s.control, 'rcpthosts').replace(/[.]/g, '\\.')}, one a line`));
});
