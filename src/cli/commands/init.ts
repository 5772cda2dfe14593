// `nqqueue init`: a commented starter configuration in the control directory (src/ops/starter.ts, with
// the backends found running: src/ops/discover.ts), the home for the user qmail-smtpd runs as, and the
// exact next steps. Never overwrites: a file or home that exists is left alone, and said so.

import {
  closeSync,
  constants,
  existsSync,
  fchmodSync,
  fchownSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  statSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { describeError } from '../../errors.js';
import { CLAMD_CONF, discover } from '../../ops/discover.js';
import { describeUid, userByName, userByUid, type PasswdEntry } from '../../ops/owner.js';
import { groupName } from '../../ops/probe.js';
import { STARTER_FILES, starterFiles, type Backends, type Found } from '../../ops/starter.js';
import { pathsFrom, type Paths } from '../../queue/services.js';
import { visible } from '../../text/visible.js';
import { parseCommand, usageFailure } from '../args.js';
import { parseEndpoint } from '../../clients/socket.js';
import { createWhole, entryExists } from '../../intake/files.js';

export const USAGE = `usage: nqqueue init [--user NAME] [--dry-run] [--clamd-conf FILE]
                    [--spamd ADDRESS] [--rspamd URL]
  Writes a commented starter configuration into the control directory ($NQQUEUE_CONTROLDIR, default
  /var/qmail/control): general.cfb (clamav for every message), nqqueue.cfb (SpamAssassin per recipient,
  spam kept in the quarantine) and nqqueue.conf (the backends found running: clamd's socket from its
  clamd.conf or /run/clamav/clamd.ctl, spamd on 127.0.0.1:783, rspamd on 127.0.0.1:11333; one not
  running is left commented out, saying so). Creates $NQQUEUE_HOME (default /var/qmail/nqqueue), 0700,
  for the user qmail-smtpd runs as, and prints the next steps (the check to run, the tcprules line, the
  daemontools and systemd services of daemon mode). A file or home that exists is left alone, and said
  so: running it again changes nothing.
  --user NAME        the user qmail-smtpd runs as, who owns the home (default: qmaild as root, else
                     yourself; not being root, the home is made for yourself)
  --dry-run          print what would be written and created, and write nothing
  --clamd-conf FILE  clamd's configuration, read for its LocalSocket or TCPSocket (default
                     ${CLAMD_CONF})
  --spamd ADDRESS    where spamd listens, HOST:PORT or a socket path (default 127.0.0.1:783)
  --rspamd URL       rspamd's normal worker (default http://127.0.0.1:11333)
  -h, --help         this text
  Exit 0 when everything is written or left alone, 2 on a usage error, 111 when something could not be
  written (each with its path and why).
`;

const OPTIONS = {
  user: { type: 'string' },
  'dry-run': { type: 'boolean' },
  'clamd-conf': { type: 'string' },
  spamd: { type: 'string' },
  rspamd: { type: 'string' },
} as const;

const PREFIX = 'nqqueue init:';
/** The checkout (or installed package) this program runs from: bin/nqqueue is in it. */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const DEFAULTS = { NQQUEUE_CONTROLDIR: '/var/qmail/control', NQQUEUE_HOME: '/var/qmail/nqqueue', NQQUEUE_QMAILQUEUE: '/var/qmail/bin/qmail-queue' };

function errCode(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? describeError(err);
}

function whyNot(err: unknown): string {
  const code = errCode(err);
  const text: Record<string, string> = {
    EACCES: 'permission denied',
    EPERM: 'operation not permitted',
    ENOENT: 'no such directory',
    ENOTDIR: 'a part of the path is not a directory',
    ENOSPC: 'no space left on the device',
    EROFS: 'read-only file system',
    EDQUOT: 'disk quota exceeded',
  };
  return text[code] ? `${text[code]} (${code})` : describeError(err);
}

/** A shell word: as it is when it needs no quoting, else in single quotes. */
function sh(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** A new file, whole or not at all, never over an existing one (a symlink there counts as one). */
function writeNew(path: string, text: string): 'wrote' | 'exists' {
  try {
    lstatSync(path);
    return 'exists';
  } catch (err) {
    if (errCode(err) !== 'ENOENT') throw err;
  }
  // 0644 whatever the umask: qmail-smtpd's user reads it.
  return createWhole(path, Buffer.from(text), 0o644);
}

/** The home, 0700, for `owner` (chowned when root). Returns 'exists' when there is one already. */
function makeHome(home: string, owner: PasswdEntry | undefined): 'created' | 'exists' {
  try {
    mkdirSync(home, { mode: 0o700 });
  } catch (err) {
    if (errCode(err) === 'EEXIST') return 'exists';
    throw err;
  }
  const fd = openSync(home, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  try {
    fchmodSync(fd, 0o700);
    if (owner) fchownSync(fd, owner.uid, owner.gid);
  } finally {
    closeSync(fd);
  }
  return 'created';
}

/** What is wrong with a home that exists, for its owner-to-be (undefined when nothing). */
function homeProblem(home: string, uid: number, owner: string): string | undefined {
  const st = lstatSync(home);
  if (st.isSymbolicLink() || !st.isDirectory()) return `it is not a directory (symlinks are refused); fix: rm ${sh(home)} and run nqqueue init again`;
  if (st.uid !== uid) return `it belongs to ${describeUid(st.uid)}, not to ${describeUid(uid)}; fix: chown -R ${owner} ${sh(home)}`;
  if ((st.mode & 0o777) !== 0o700) return `its mode is ${(st.mode & 0o777).toString(8).padStart(4, '0')}, not 0700; fix: chmod 0700 ${sh(home)}`;
  return undefined;
}

/** A `sed` substitution taking `from` (literal) to `to` everywhere. */
function sedExpr(from: string, to: string): string {
  const pattern = from.replace(/[.[\]*^$\\|]/g, '\\$&');
  const replacement = to.replace(/[\\&|]/g, '\\$&');
  return `-e ${sh(`s|${pattern}|${replacement}|g`)}`;
}

/** The command that installs `file` of the checkout as `dest`, with `subs` (literal from → to) applied. */
function installCommand(file: string, dest: string, subs: [string, string][]): string | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  const needed = subs.filter(([from, to]) => from !== to && text.includes(from));
  if (needed.length === 0) return `cp ${sh(file)} ${sh(dest)}`;
  return `sed ${needed.map(([f, t]) => sedExpr(f, t)).join(' ')} < ${sh(file)} > ${sh(dest)}`;
}

interface Plan {
  readonly paths: Paths;
  /** The user qmail-smtpd runs as (named in the steps). */
  readonly user: PasswdEntry;
  /** Whom the home is made for. */
  readonly homeOwner: PasswdEntry;
  readonly root: boolean;
}

function nextSteps(plan: Plan, backends: Backends, rcpthostsMissing: boolean): string[] {
  const { paths, user } = plan;
  const bin = join(ROOT, 'bin', 'nqqueue');
  const qq = join(ROOT, 'bin', 'nqqueue-qq');
  const group = groupName(user.gid);
  // What differs from the defaults is set where qmail-smtpd and the daemon get their environment.
  const vars: [string, string][] = [
    ['NQQUEUE_CONTROLDIR', paths.controlDir],
    ['NQQUEUE_HOME', paths.home],
    ['NQQUEUE_QMAILQUEUE', paths.qmailQueue],
  ];
  const extra = vars.filter(([k, v]) => v !== DEFAULTS[k as keyof typeof DEFAULTS]);
  const out: string[] = ['', 'Next steps:'];
  let n = 0;
  const step = (lines: string[]) => {
    n++;
    out.push(`  ${n}. ${lines[0]}`, ...lines.slice(1).map((l) => `     ${l}`));
  };
  if (rcpthostsMissing) {
    step([`List your domains in ${join(paths.controlDir, 'rcpthosts')}, one a line (qmail-smtpd needs it too):`, `without it every message is deferred.`]);
  }
  const probeEnv = extra.map(([k, v]) => `${k}=${sh(v)} `).join('');
  step([
    `Run this next: it checks, as ${user.name}, everything a message will need (the home, qmail-queue, each backend):`,
    `  ${probeEnv}${sh(bin)} check-config --probe --user ${sh(user.name)} --env QMAILQUEUE=${sh(bin)}`,
  ]);
  const notRunning = (['clamd', 'spamd'] as const).filter((s) => !backends[s].answered);
  if (notRunning.length > 0) {
    out.push(`     Until ${notRunning.join(' and ')} answer${notRunning.length === 1 ? 's' : ''}, mail is deferred (never delivered unscanned): start ${notRunning.length === 1 ? 'it' : 'them'}, then set the address in nqqueue.conf.`);
  }
  const rule = (program: string) => [`QMAILQUEUE="${program}"`, ...extra.map(([k, v]) => `${k}="${v}"`)].join(',');
  step([
    `Point qmail-smtpd at NQqueue: in /etc/tcp.smtp, add to each allow rule (keep what they set already):`,
    `  127.:allow,RELAYCLIENT="",${rule(bin)}`,
    `  :allow,${rule(bin)}`,
    `then rebuild the rules (tcpserver -x reads the cdb at each connection: no restart needed):`,
    `  tcprules /etc/tcp.smtp.cdb /etc/tcp.smtp.tmp < /etc/tcp.smtp`,
  ]);
  const subs: [string, string][] = [
    ['/opt/nqqueue/bin/nqqueue', bin],
    ...vars.map(([k, v]): [string, string] => [`${k}=${DEFAULTS[k as keyof typeof DEFAULTS]}`, `${k}=${v}`]),
    ['setuidgid qmaild ', `setuidgid ${user.name} `],
    ['User=qmaild', `User=${user.name}`],
    ['Group=nofiles', `Group=${group}`],
  ];
  const svc = '/var/qmail/supervise/nqqueue';
  const dtRun = installCommand(join(ROOT, 'etc', 'daemontools', 'run'), `${svc}/run`, subs);
  const dtLog = installCommand(join(ROOT, 'etc', 'daemontools', 'log', 'run'), `${svc}/log/run`, subs);
  const unit = installCommand(join(ROOT, 'etc', 'systemd', 'nqqueue.service'), '/etc/systemd/system/nqqueue.service', subs);
  const daemon = [
    `For a busy server, daemon mode: \`nqqueue serve\` as ${user.name}, under daemontools or systemd, and`,
    existsSync(qq)
      ? `QMAILQUEUE="${qq}" in the rules above instead (it falls back to bin/nqqueue when the daemon is down).`
      : `QMAILQUEUE="${qq}" in the rules above instead (not built: it needs a C compiler; then npm run build).`,
  ];
  if (dtRun && dtLog) {
    daemon.push(
      'daemontools:',
      `  mkdir -p ${svc}/log/main && chown qmaill ${svc}/log/main`,
      `  ${dtRun}`,
      `  ${dtLog}`,
      `  chmod 755 ${svc}/run ${svc}/log/run && ln -s ${svc} /service/nqqueue`,
    );
  }
  if (unit) daemon.push('systemd:', `  ${unit}`, '  systemctl daemon-reload && systemctl enable --now nqqueue');
  step(daemon);
  return out;
}

function foundLine(service: string, f: Found, conf: 'wrote' | 'exists' | 'dry-run' | 'failed'): string {
  const where = `${f.address}${f.source ? ` (${f.source})` : ''}`;
  const written = conf === 'wrote' || conf === 'dry-run';
  if (f.answered) return `  ${service.padEnd(11)} answered at ${where}${written ? '' : ' (nqqueue.conf was not written: set it there yourself)'}`;
  return `  ${service.padEnd(11)} did not answer at ${where}: ${f.why ?? 'no answer'}${written ? ' (commented out in nqqueue.conf)' : ''}`;
}

/** Who the steps name and who gets the home; a string is a usage error. */
function whoFor(name: string | undefined): { user: PasswdEntry; homeOwner: PasswdEntry; note?: string } | string {
  const root = process.geteuid?.() === 0;
  const me = userByUid(process.geteuid?.() ?? -1) ?? { name: `uid ${process.geteuid?.()}`, uid: process.geteuid?.() ?? -1, gid: process.getegid?.() ?? -1, home: '' };
  if (!root && name === undefined) return { user: me, homeOwner: me };
  const wanted = name ?? 'qmaild';
  const entry = userByName(wanted);
  if (!entry) {
    return name === undefined
      ? `qmail-smtpd's usual user qmaild is not in /etc/passwd: name the user qmail-smtpd runs as with --user NAME`
      : `--user ${name}: no such user in /etc/passwd; name the user qmail-smtpd runs as (e.g. qmaild)`;
  }
  if (entry.uid === 0) return `--user ${wanted}: qmail-smtpd never runs as root, and a home of root's would defer mail: name the user qmail-smtpd runs as`;
  if (root || entry.uid === me.uid) return { user: entry, homeOwner: entry };
  return {
    user: entry,
    homeOwner: me,
    note: `not root: the home is made for ${me.name}, not for ${entry.name}; as root: chown -R ${entry.name}:${groupName(entry.gid)} HOME`,
  };
}

export async function run(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const parsed = parseCommand('init', USAGE, args, OPTIONS);
  if (typeof parsed === 'number') return parsed;
  const dryRun = parsed.values['dry-run'] === true;
  let paths: Paths;
  try {
    paths = pathsFrom(env);
  } catch (err) {
    return usageFailure('init', USAGE, describeError(err));
  }
  const who = whoFor(parsed.values.user as string | undefined);
  if (typeof who === 'string') return usageFailure('init', USAGE, who);
  const plan: Plan = { paths, user: who.user, homeOwner: who.homeOwner, root: process.geteuid?.() === 0 };

  const clamdConf = parsed.values['clamd-conf'] as string | undefined;
  if (clamdConf !== undefined) {
    try {
      readFileSync(clamdConf, 'utf8');
    } catch (err) {
      return usageFailure('init', USAGE, `--clamd-conf ${clamdConf}: cannot read it: ${whyNot(err)}`);
    }
  }

  const where: { spamd?: string; rspamd?: string } = {};
  const spamd = parsed.values.spamd as string | undefined;
  if (spamd !== undefined) {
    try {
      where.spamd = parseEndpoint(spamd).text;
    } catch (err) {
      return usageFailure('init', USAGE, `--spamd: ${describeError(err)}`);
    }
  }
  const rspamd = parsed.values.rspamd as string | undefined;
  if (rspamd !== undefined) {
    const url = URL.canParse(rspamd) ? new URL(rspamd) : undefined;
    if (url === undefined || url.protocol !== 'http:' || url.username !== '' || url.password !== '') {
      return usageFailure('init', USAGE, `--rspamd: not an http:// URL of rspamd's normal worker: ${JSON.stringify(visible(rspamd))}`);
    }
    where.rspamd = rspamd;
  }

  const control = paths.controlDir;
  try {
    if (!statSync(control).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
  } catch (err) {
    const code = errCode(err);
    const why = code === 'ENOENT' ? 'it does not exist' : code === 'ENOTDIR' ? 'it is not a directory' : whyNot(err);
    process.stderr.write(`${PREFIX} cannot write into the control directory ${visible(control)}: ${why}; set NQQUEUE_CONTROLDIR to qmail's control directory (/var/qmail/control)\n`);
    return 111;
  }

  const backends = await discover(clamdConf, where);
  const files = starterFiles(backends);
  const out: string[] = [];
  const failures: string[] = [];
  out.push(`${PREFIX} ${dryRun ? 'dry run, nothing is written: ' : ''}the starter configuration in ${control}, for qmail-smtpd's user ${plan.user.name}`);
  let confState: 'wrote' | 'exists' | 'dry-run' | 'failed' = 'failed';
  const contents: string[] = [];
  for (const name of STARTER_FILES) {
    const path = join(control, name);
    let state: 'wrote' | 'exists' | 'dry-run' | 'failed';
    if (dryRun) {
      state = entryExists(path) ? 'exists' : 'dry-run';
      if (state === 'dry-run') contents.push(`--- ${path} (would be written) ---`, ...files[name].trimEnd().split('\n'));
    } else {
      try {
        state = writeNew(path, files[name]);
      } catch (err) {
        state = 'failed';
        failures.push(`cannot write ${path}: ${whyNot(err)}`);
      }
    }
    if (name === 'nqqueue.conf') confState = state;
    if (state === 'wrote') out.push(`  wrote       ${path}`);
    else if (state === 'dry-run') out.push(`  would write ${path}`);
    else if (state === 'exists') out.push(`  left alone  ${path} (it exists; the starter file is ${join(ROOT, 'etc', 'examples', name)})`);
    else out.push(`  not written ${path} (below)`);
  }

  const owner = plan.homeOwner;
  const ownerText = `${owner.name}:${groupName(owner.gid)}`;
  const home = paths.home;
  const homeExists = entryExists(home);
  if (homeExists) {
    let problem: string | undefined;
    try {
      problem = homeProblem(home, owner.uid, `${plan.user.name}:${groupName(plan.user.gid)}`);
    } catch (err) {
      problem = whyNot(err);
    }
    out.push(`  left alone  ${home} (it exists${problem ? `; but ${problem}` : ''})`);
  } else if (dryRun) {
    out.push(`  would make  ${home} (0700, ${ownerText})`);
  } else {
    try {
      makeHome(home, plan.root ? owner : undefined);
      out.push(`  created     ${home} (0700, ${ownerText})`);
    } catch (err) {
      const why = errCode(err) === 'ENOENT' ? `${dirname(home)} does not exist (create it, or set NQQUEUE_HOME)` : whyNot(err);
      failures.push(`cannot create the home ${home}: ${why}`);
      out.push(`  not made    ${home} (below)`);
    }
  }
  if (who.note) out.push(`  note: ${who.note.replace(/HOME$/, sh(home))}`);
  out.push(foundLine('clamd', backends.clamd, confState), foundLine('spamd', backends.spamd, confState), foundLine('rspamd', backends.rspamd, confState));

  const rcpthostsMissing = !entryExists(join(control, 'rcpthosts'));
  out.push(...nextSteps(plan, backends, rcpthostsMissing));
  if (dryRun && contents.length > 0) out.push('', ...contents);
  process.stdout.write(`${out.map((l) => visible(l)).join('\n')}\n`);
  for (const f of failures) process.stderr.write(`${PREFIX} ${visible(f)}\n`);
  if (failures.length > 0) {
    process.stderr.write(`${PREFIX} ${failures.length} thing${failures.length === 1 ? '' : 's'} could not be written: fix and run nqqueue init again (it leaves alone what it wrote)\n`);
    return 111;
  }
  return 0;
}

