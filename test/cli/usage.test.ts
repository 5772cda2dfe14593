// Every subcommand behaves like a Unix command: --help shows its usage and never runs it; an unknown
// option or a stray argument is exit 2 with the usage on stderr.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { Spool } from '../../src/delivery/spool.js';
import { MemoryMessage } from '../../src/intake/message.js';
import { encodeEnvelope } from '../../src/qmail/envelope.js';
import { SAMPLE, setupsForThisFile } from '../helpers/nqq.js';
import { NQQUEUE_BIN } from '../helpers/smtpd.js';

const make = setupsForThisFile();

/** Each subcommand as typed, with an argument list that would make it do its work. */
const COMMANDS: { name: string; args: string[]; usage: RegExp }[] = [
  { name: 'explain', args: ['explain', '--from', 'a@example.com', '--to', 'b@example.com'], usage: /^usage: nqqueue explain / },
  { name: 'test', args: ['test', '--from', 'a@example.com', '--to', 'b@example.com'], usage: /^usage: nqqueue test / },
  { name: 'check-config', args: ['check-config'], usage: /^usage: nqqueue check-config / },
  { name: 'quarantine list', args: ['quarantine', 'list'], usage: /^usage: nqqueue quarantine / },
  { name: 'quarantine show', args: ['quarantine', 'show', '0123456789abcdef0123'], usage: /^usage: nqqueue quarantine / },
  { name: 'quarantine release', args: ['quarantine', 'release', '0123456789abcdef0123'], usage: /^usage: nqqueue quarantine / },
  { name: 'quarantine delete', args: ['quarantine', 'delete', '0123456789abcdef0123'], usage: /^usage: nqqueue quarantine / },
  { name: 'quarantine expire', args: ['quarantine', 'expire'], usage: /^usage: nqqueue quarantine / },
  { name: 'quarantine audit', args: ['quarantine', 'audit'], usage: /^usage: nqqueue quarantine / },
  { name: 'flush', args: ['flush'], usage: /^usage: nqqueue flush/ },
  { name: 'digest', args: ['digest'], usage: /^usage: nqqueue digest/ },
  { name: 'demo', args: ['demo'], usage: /^usage: nqqueue demo/ },
  { name: 'init', args: ['init', '--user', 'nobody'], usage: /^usage: nqqueue init/ },
  { name: 'serve', args: ['serve'], usage: /^usage: nqqueue serve/ },
  { name: 'import-simscan', args: ['import-simscan', '--write'], usage: /^usage: nqqueue import-simscan / },
];

for (const c of COMMANDS) {
  test(`${c.name}: --help and -h print the usage on stdout, exit 0, and run nothing`, () => {
    const s = make();
    for (const help of ['--help', '-h']) {
      const r = s.command([...c.args, help], SAMPLE);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, c.usage);
      assert.equal(r.stderr, '');
      assert.doesNotMatch(r.stdout, /^dry run of|^sender <|check-config: OK|delivered,|^NQqueue demo|listening on/m);
    }
    assert.equal(s.standIn.calls().length, 0, 'no qmail-queue ran');
    assert.equal(existsSync(join(s.home, 'nqqueue.sock')), false, 'no socket');
  });

  test(`${c.name}: an unknown option is exit 2 with the usage on stderr`, () => {
    const s = make();
    const r = s.command([...c.args, '--frobnicate'], SAMPLE);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /^nqqueue [a-z -]+: Unknown option '--frobnicate'\n/);
    assert.match(r.stderr.split('\n').slice(1).join('\n'), c.usage);
    assert.equal(r.stdout, '');
    assert.equal(s.standIn.calls().length, 0);
  });

  test(`${c.name}: a stray argument is exit 2 with the usage on stderr`, () => {
    const s = make();
    const r = s.command([...c.args, 'stray'], SAMPLE);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /^nqqueue [a-z -]+: unexpected argument "stray"\n/);
    assert.match(r.stderr.split('\n').slice(1).join('\n'), c.usage);
    assert.equal(r.stdout, '');
  });
}

test('flush --help with an entry in the retry spool leaves it there and runs no qmail-queue', async () => {
  const s = make();
  const spool = new Spool(join(s.home, 'spool'));
  await spool.put(new MemoryMessage(Buffer.from(SAMPLE)), encodeEnvelope(Buffer.from('a@example.com'), [Buffer.from('b@example.com')]), 'test');
  const before = spool.list();
  assert.equal(before.length, 1);
  for (const args of [['flush', '--help'], ['flush', '-h'], ['flush', '--frobnicate'], ['flush', 'now']]) {
    const r = s.command(args);
    assert.notEqual(r.code, 1, r.stderr);
    assert.deepEqual(spool.list(), before, args.join(' '));
  }
  assert.equal(s.standIn.calls().length, 0);
  // The same spool is delivered by a plain flush: the test above could have failed.
  const r = s.command(['flush']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(spool.list(), []);
  assert.equal(s.standIn.calls().length, 1);
});

test('serve --help does not start a daemon: it exits at once and makes no socket', () => {
  const s = make();
  const r = s.command(['serve', '--help']);
  assert.equal(r.code, 0);
  assert.equal(existsSync(join(s.home, 'nqqueue.sock')), false);
  assert.equal(existsSync(s.home) ? readdirSync(s.home).length : 0, 0, 'nothing under the home');
});

test('quarantine: operands are counted, and a missing or unknown subcommand is a usage error', () => {
  const s = make();
  for (const args of [['quarantine'], ['quarantine', 'show'], ['quarantine', 'list', 'x'], ['quarantine', 'frob'], ['quarantine', 'delete', 'a', 'b'], ['quarantine', 'expire', 'x'], ['quarantine', 'audit', '--limit', 'lots']]) {
    const r = s.command(args);
    assert.equal(r.code, 2, args.join(' '));
    assert.match(r.stderr, /\nusage: nqqueue quarantine /, args.join(' '));
  }
  assert.equal(s.command(['quarantine', '--help']).code, 0);
});

test('explain and check-config take --env NAME=VALUE (repeatable); a malformed one is a usage error', () => {
  const s = make({ rcpthosts: ['example.com'] });
  s.write('nqqueue.cfb', 'a@example.com:black=x@y.example\n');
  // RELAYCLIENT given with --env is stripped from the recipient as qmail-smtpd's suffix would be.
  const r = s.command(['explain', '--from', '', '--to', 'a@example.com!r', '--env', 'RELAYCLIENT=!r', '--env', 'X=1']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /recipient <a@example\.com> \(local\)/);
  const without = s.command(['explain', '--from', '', '--to', 'a@example.com!r']);
  assert.match(without.stdout, /recipient <a@example\.com!r> \(remote/);
  for (const bad of ['NOEQUALS', '=x', '1X=y']) {
    for (const cmd of [['explain', '--from', '', '--to', 'a@example.com'], ['check-config']]) {
      const b = s.command([...cmd, '--env', bad]);
      assert.equal(b.code, 2, `${cmd[0]} --env ${bad}`);
      assert.match(b.stderr, /--env wants NAME=VALUE/);
    }
  }
  const ok = s.command(['check-config', '--probe', '--user', 'qmaild', '--env', 'RELAYCLIENT=', '--env', 'A=b=c']);
  assert.notEqual(ok.code, 2, ok.stderr);
});

test('nqqueue with no arguments on a terminal prints the usage (exit 2) instead of a read error', () => {
  // script(1) gives the program a real terminal on fd 0, as when someone types `nqqueue` at a prompt.
  const probe = spawnSync('script', ['--version'], { encoding: 'utf8' });
  if (probe.status !== 0) throw new Error('script(1) from util-linux is needed for this test');
  const r = spawnSync('script', ['-qec', `${NQQUEUE_BIN}; echo "exit=$?"`, '/dev/null'], { encoding: 'utf8', env: { PATH: '/usr/bin:/bin' }, timeout: 30_000 });
  const out = r.stdout.replace(/\r/g, '');
  assert.match(out, /not a terminal\nusage:\n/);
  assert.match(out, /exit=2\n/);
  assert.doesNotMatch(out, /read error|result=/);
});

test('unknown top-level options and commands are exit 2 with the usage', () => {
  for (const args of [['--frobnicate'], ['frob'], ['--version', 'x'], ['help', 'frob']]) {
    const r = spawnSync(NQQUEUE_BIN, args, { env: {}, encoding: 'utf8' });
    assert.equal(r.status, 2, args.join(' '));
    assert.match(r.stderr, /\nusage:\n/);
  }
  const h = spawnSync(NQQUEUE_BIN, ['help', 'flush'], { env: {}, encoding: 'utf8' });
  assert.equal(h.status, 0);
  assert.match(h.stdout, /^usage: nqqueue flush/);
});
