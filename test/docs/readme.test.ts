// The README's command lines, run: every ```sh block, in order, as one administrator's walk through it
// (install, configure, check, operate, migrate), on a host of its own in a temp directory, and the
// command of every ```crontab line. A block that cannot run here says why in a `<!-- not run: ... -->`
// line above it. So the README cannot drift from the program: a renamed option, a command that now
// fails, a path that moved, and this test fails with the block and what it printed.
//
// The host: the README's absolute paths (/var/qmail, /opt/nqqueue, /usr/local/bin, /etc, /service,
// /home) are the same paths under the temp directory, and NQQUEUE_CONTROLDIR, NQQUEUE_HOME and
// NQQUEUE_QMAILQUEUE name them (the program's defaults cannot move). It has what a qmail host has
// before NQqueue: control/me, rcpthosts, a simscan simcontrol, a user's SpamAssassin user_prefs,
// clamd.conf naming the test clamd's socket, a qmail-queue (the stand-in). /opt/nqqueue is this
// checkout. qmail-smtpd's user qmaild and multilog's qmaill are nobody (the group nofiles nogroup),
// spamd's and rspamd's usual addresses are the test daemons', and `logger` (a stand-in on PATH) writes
// what it is given to stderr, as there is no syslog on the test host.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import { findProgram, requireDaemon } from '../helpers/daemons.js';
import { REPO } from '../helpers/nqq.js';
import { makeStandIn } from '../helpers/stand-in.js';

const README = join(REPO, 'README.md');
const asRoot = process.geteuid?.() === 0;

export interface Block {
  /** The fence's info string: sh, crontab, text... ('' for none). */
  readonly info: string;
  readonly text: string;
  /** The README line of the opening fence. */
  readonly line: number;
  /** The reason of a `<!-- not run: REASON -->` line just above it, if any. */
  readonly notRun?: string;
}

/** Every fenced block of a Markdown text, with the `not run` reason written above it. */
export function blocksOf(markdown: string): Block[] {
  const lines = markdown.split('\n');
  const out: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)\s*$/.exec(lines[i]!);
    if (!open) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && lines[i] !== '```'; i++) body.push(lines[i]!);
    if (i >= lines.length) throw new Error(`README.md:${start + 1}: a fenced block that never ends`);
    let j = start - 1;
    while (j >= 0 && lines[j]!.trim() === '') j--;
    const mark = j >= 0 ? /^<!-- not run: (.+?) -->$/.exec(lines[j]!) : null;
    out.push({ info: open[1]!, text: body.join('\n'), line: start + 1, ...(mark ? { notRun: mark[1]!.trim() } : {}) });
  }
  return out;
}

/** A line of a non-shell block that reads as a command of NQqueue's (its output starts `nqqueue X: `). */
export function looksLikeCommand(line: string): boolean {
  return /^(?:\/\S*\/)?nqqueue(?:-qq)? +[a-z-]+/.test(line) && !/: /.test(line);
}

/** The command of a crontab line: what follows the five time fields. */
export function cronCommand(line: string): string | undefined {
  const m = /^\s*(?:\S+\s+){5}(.+)$/.exec(line);
  return line.trim() === '' || line.trim().startsWith('#') ? undefined : m?.[1];
}

test('the checker: blocks, their not-run reasons, commands outside sh blocks, crontab commands', () => {
  const md = 'x\n\n<!-- not run: needs systemd -->\n```sh\nsystemctl start x\n```\n\n```sh\nnqqueue test\n```\n```\nnqqueue flush: done\n```\n';
  const b = blocksOf(md);
  assert.deepEqual(
    b.map((x) => [x.info, x.text, x.line, x.notRun]),
    [
      ['sh', 'systemctl start x', 4, 'needs systemd'],
      ['sh', 'nqqueue test', 8, undefined],
      ['', 'nqqueue flush: done', 11, undefined],
    ],
  );
  assert.throws(() => blocksOf('```sh\nnqqueue\n'), /never ends/);
  assert.equal(looksLikeCommand('nqqueue flush: NQQUEUE_HOME /x belongs to qmaild'), false);
  assert.equal(looksLikeCommand('nqqueue check-config --probe: 2 problems as qmaild'), false);
  assert.equal(looksLikeCommand('/opt/nqqueue/bin/nqqueue init --user qmaild'), true);
  assert.equal(looksLikeCommand('nqqueue lists show --json'), true);
  assert.equal(cronCommand('*/5 * * * * /opt/nqqueue/bin/nqqueue flush 2>&1 | logger -t nqqueue'), '/opt/nqqueue/bin/nqqueue flush 2>&1 | logger -t nqqueue');
  assert.equal(cronCommand('# a comment'), undefined);
});

test('every command of the README is in an sh block (or a crontab line), and every sh block runs or says why not', () => {
  const blocks = blocksOf(readFileSync(README, 'utf8'));
  const stray = blocks.filter((b) => b.info !== 'sh' && b.info !== 'crontab').flatMap((b) => b.text.split('\n').filter(looksLikeCommand).map((l) => `README.md:${b.line}: ${l}`));
  assert.deepEqual(stray, [], 'command lines outside ```sh blocks: put them in one (run by this test) or mark why not');
  const sh = blocks.filter((b) => b.info === 'sh');
  const run = sh.filter((b) => b.notRun === undefined);
  // Most of the README's commands run; what does not is the few a test host cannot do (systemd, svscan).
  assert.ok(run.length >= 10, `only ${run.length} sh blocks are run`);
  assert.ok(sh.length - run.length <= 10, `${sh.length - run.length} sh blocks are not run: ${sh.filter((b) => b.notRun).map((b) => `README.md:${b.line} (${b.notRun})`).join('; ')}`);
});

test("the README's test command installs what .ci/run installs", () => {
  const readme = readFileSync(README, 'utf8');
  const ci = readFileSync(join(REPO, '.ci', 'run'), 'utf8');
  const ciPackages = /^apt-get install -y -q (.+)$/m.exec(ci)?.[1]?.trim().split(/\s+/);
  const readmeLine = /^apt-get install -y (.+?) && npm ci && npm test$/m.exec(readme)?.[1]?.trim().split(/\s+/);
  assert.ok(ciPackages && readmeLine, 'both have an apt-get install line');
  assert.deepEqual([...readmeLine].sort(), [...ciPackages].sort());
});

test("the README's sh blocks and crontab commands, run in order as one administrator would, all succeed", { skip: asRoot ? false : 'needs root (the home is made for qmail-smtpd\'s user)', timeout: 300_000 }, (t) => {
  const clamd = requireDaemon('NQQ_TEST_CLAMD_SOCKET', t);
  const spamd = requireDaemon('NQQ_TEST_SPAMD', t);
  const rspamd = requireDaemon('NQQ_TEST_RSPAMD_URL', t);
  if (!clamd || !spamd || !rspamd) return;
  for (const program of ['tcprules']) {
    if (findProgram(program)) continue;
    const why = `${program} is not installed (Debian's ucspi-tcp)`;
    if (process.env.CI === 'true') assert.fail(`${why}: in CI it must be`);
    process.stderr.write(`\n!!! SKIPPED "${t.name}": ${why}\n`);
    t.skip(why);
    return;
  }

  const root = mkdtempSync(join(tmpdir(), 'nqq-readme-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  chmodSync(root, 0o755);
  const standIn = makeStandIn();
  t.after(() => standIn.cleanup());
  chmodSync(standIn.dir, 0o755);
  const put = (path: string, text: string) => {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), text);
  };
  for (const d of ['var/qmail/bin', 'var/qmail/control', 'opt', 'etc/systemd/system', 'service', 'bin', 'usr/local/bin', 'work']) mkdirSync(join(root, d), { recursive: true });
  symlinkSync(REPO.replace(/\/$/, ''), join(root, 'opt', 'nqqueue'));
  put('bin/logger', '#!/bin/sh\n# logger -t TAG: each line to stderr, as TAG: LINE\nwhile IFS= read -r line; do printf \'%s: %s\\n\' "$2" "$line" >&2; done\n');
  chmodSync(join(root, 'bin/logger'), 0o755);
  symlinkSync(standIn.path, join(root, 'var/qmail/bin/qmail-queue'));
  put('var/qmail/control/me', 'mx.example.com\n');
  put('var/qmail/control/rcpthosts', 'example.com\n');
  put('var/qmail/control/simcontrol', ':clam=yes,spam=yes,spam_hits=12,attach=.exe:.scr\nexample.com:clam=yes,spam=yes,spam_hits=8\nbob@example.com:clam=yes,spam=no\n');
  put('etc/clamav/clamd.conf', `# clamd.conf\nLocalSocket ${clamd}\n`);
  put('home/bob/.spamassassin/user_prefs', 'whitelist_from *@partner.example\nblacklist_from spammer@bad.example\nrequired_score 6\n');

  // One pass over the text, so what one rule wrote is never rewritten by another (the temp root itself
  // may be under /home or /etc).
  const path = (p: string) => `(?<![\\w.~/-])${p.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`;
  const rules: [string, string][] = [
    [path('/opt/nqqueue'), join(root, 'opt/nqqueue')],
    [path('/var/qmail'), join(root, 'var/qmail')],
    [path('/usr/local/bin/'), `${join(root, 'usr/local/bin')}/`],
    [path('/etc/'), `${join(root, 'etc')}/`],
    [path('/service/'), `${join(root, 'service')}/`],
    [path('/home/'), `${join(root, 'home')}/`],
    ['http://127\\.0\\.0\\.1:11333', rspamd],
    ['127\\.0\\.0\\.1:783\\b', spamd],
    ['\\bqmaild\\b', 'nobody'],
    ['\\bqmaill\\b', 'nobody'],
    ['\\bnofiles\\b', 'nogroup'],
  ];
  const all = new RegExp(rules.map(([re]) => `(${re})`).join('|'), 'g');
  const onHost = (text: string) => text.replace(all, (...m: unknown[]) => rules[m.slice(1, rules.length + 1).findIndex((g) => g !== undefined)]![1]);
  assert.equal(onHost('/opt/nqqueue/etc/x /etc/tcp.smtp qmaild:nofiles'), `${join(root, 'opt/nqqueue')}/etc/x ${join(root, 'etc')}/tcp.smtp nobody:nogroup`);
  const env = {
    // The README's /usr/local/bin first (its own `ln -s` puts nqqueue there), test stand-ins next.
    PATH: `${join(root, 'usr/local/bin')}:${join(root, 'bin')}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
    HOME: join(root, 'work'),
    LANG: 'C.UTF-8',
    NQQUEUE_CONTROLDIR: join(root, 'var/qmail/control'),
    NQQUEUE_HOME: join(root, 'var/qmail/nqqueue'),
    NQQUEUE_QMAILQUEUE: join(root, 'var/qmail/bin/qmail-queue'),
    ...(process.env.NQQUEUE_NODE ? { NQQUEUE_NODE: process.env.NQQUEUE_NODE } : {}),
  };
  const sh = (script: string, where: string) => {
    const r = spawnSync('bash', ['--norc', '--noprofile', '-e', '-u', '-o', 'pipefail', '-c', script], { cwd: join(root, 'work'), env, encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 0, `${where} failed (exit ${r.status}${r.signal ? `, ${r.signal}` : ''}):\n${script}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
    return r.stdout + r.stderr;
  };

  const blocks = blocksOf(readFileSync(README, 'utf8'));
  let ran = 0;
  const said: string[] = [];
  for (const b of blocks) {
    if (b.notRun !== undefined) continue;
    if (b.info === 'sh') {
      said.push(sh(onHost(b.text), `README.md:${b.line}`));
      ran++;
    } else if (b.info === 'crontab') {
      for (const line of b.text.split('\n')) {
        const command = cronCommand(line);
        if (command === undefined) continue;
        sh(onHost(command), `README.md:${b.line} (crontab: ${command})`);
        ran++;
      }
    }
  }
  assert.ok(ran >= 14, `${ran} blocks and crontab commands ran`);

  // What the commands said: the probe found everything in order, and the dry run asked the scanners.
  const output = said.join('\n');
  assert.match(output, /check-config --probe: all good as nobody/);
  assert.match(output, /clamav/);
  assert.match(output, /spamassassin/);
  // What the walk left is what the README says it leaves.
  const control = join(root, 'var/qmail/control');
  for (const f of ['general.cfb', 'nqqueue.cfb', 'nqqueue.conf']) assert.ok(existsSync(join(control, f)), `nqqueue init wrote ${f}`);
  assert.match(readFileSync(join(control, 'nqqueue.conf'), 'utf8'), new RegExp(`^host = ${spamd.replace(/\./g, '\\.')}$`, 'm'));
  assert.match(readFileSync(join(root, 'etc/tcp.smtp'), 'utf8'), /QMAILQUEUE="[^"]*\/opt\/nqqueue\/bin\/nqqueue-qq"/);
  assert.ok(existsSync(join(root, 'etc/tcp.smtp.cdb')), 'tcprules built the cdb');
  assert.ok(existsSync(join(root, 'service/nqqueue/run')), 'the daemontools service is linked');
  assert.ok(existsSync(join(root, 'work/simscan-import/general.cfb')), 'import-simscan --out wrote its files');
  const lists = sh('nqqueue lists show --json', 'lists after the walk');
  assert.match(lists, /friend@partner\.example/);
  assert.match(lists, /partner\.example/);
});
