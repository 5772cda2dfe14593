#!/usr/bin/env node
// `npm run bench`: what NQqueue costs per message, against a qmail-queue stand-in with the real one's fsync
// discipline (bench/qmail-queue-floor.c) and real clamd, spamd and rspamd. Every program under test is
// started the way qmail-smtpd starts it (bench/smtpd.c, qmail.c's qmail_open and qmail_close: real pipes on fd
// 0/1/2/6, vfork and execv, waitpid), with
// the node the build recorded (Node 22) and again with Node 24. Progress goes to stderr, the tables to stdout,
// bench-results/latest.{md,json}, the Figures section of bench/README.md and the summary in README.md's Speed. bench/README.md says what each row
// means.
//
//   npm run bench                     the whole run (~5-10 minutes on 2 cores)
//   npm run bench -- --quick          fewer messages, for trying the script out
//   npm run bench -- --node=22        one Node version only (22 or 24)
//   npm run bench -- --no-readme      leave README.md alone
//   npm run bench -- --only=big,kill  some sections only (backends, startup, rows, rspamd, throughput, breakdown, big, kill, metrics, lists, store, memory, qq, fildes, pipeline)
//   node scripts/bench.js --render    tables, latest.md and README again from bench-results/latest.json

import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  readSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { connect } from 'node:net';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { LISTS_ENTRIES, LISTS_TARGET_MS, listsRow, listsTable } from './bench-lists.js';
import { storeRow, storeTable } from './bench-store.js';
import { memoryRow, memoryTable, memoryTargets } from './bench-memory.js';
import { qqRow, qqTable, qqTargets } from './bench-qq.js';
import { startJudge, startOptionsRow, startTable } from './bench-start.js';
import { fildesRow, fildesTable } from './bench-fildes.js';
import { PIPELINE_TARGET, pipelineFigure, pipelineRow, pipelineTable } from './bench-pipeline.js';
import { breakdownRow, breakdownTable } from './bench-daemon-breakdown.js';
import { refNoPlugins, refRspamd10, rspamdTarget } from './bench-rspamd.js';
import { Smtpd } from './bench-smtpd.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const QUICK = argv.includes('--quick');
const ONLY_NODE = argv.find((a) => a.startsWith('--node='))?.slice('--node='.length);
const ONLY = argv.find((a) => a.startsWith('--only='))?.slice('--only='.length).split(',');
/** Only re-render the tables, README and latest.md from bench-results/latest.json (no measuring). */
const RENDER = argv.includes('--render');
const UPDATE_README = !argv.includes('--no-readme') && ONLY === undefined;
/** Sections: backends, startup, rows, rspamd (its rows alone), throughput, big, kill, metrics (--only=big,kill runs just those). */
const want = (section) => ONLY === undefined || ONLY.includes(section);

/** How many messages each kind of row times (warm-up runs excluded), and how long the burst rows last. */
const COUNTS = QUICK
  ? { fast: 10, spam: 4, warm: 2, memRuns: 1, throughputS: 3, killBurst: 40, killAfter: 12, bigMB: 10 }
  : { fast: 40, spam: 15, warm: 4, memRuns: 2, throughputS: 8, killBurst: 100, killAfter: 30, bigMB: 50 };
const INFLIGHT = 8;
const MESSAGE_BYTES = 10 * 1024;
const SENDER = 'sender@client.example';
const DIFF_RCPTS = Array.from({ length: 10 }, (_, i) => `d${String(i + 1).padStart(2, '0')}@example.com`);
const SAME_RCPTS = Array.from({ length: 10 }, (_, i) => `s${String(i + 1).padStart(2, '0')}@example.com`);
const BIG_RCPTS = [
  ...Array.from({ length: 10 }, (_, i) => `a${String(i + 1).padStart(2, '0')}@example.com`),
  ...Array.from({ length: 10 }, (_, i) => `b${String(i + 1).padStart(2, '0')}@example.com`),
];
const TARGETS = { daemonNoneMs: 1.0, clamavMs: 1.0, sameRatio: 1.2, diffRatio: 1.1, bigRssMB: 120, metricsMs: 0.1, throughputRatio: 0.9 };

const t0 = performance.now();
const progress = (text) => process.stderr.write(`[bench ${((performance.now() - t0) / 1000).toFixed(0).padStart(4)}s] ${text}\n`);

// ---------------------------------------------------------------------------------------------
// Build: the tests' helpers, the two C programs, Node 24

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}):\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

const early = [];
if (!RENDER) {
  progress('compiling the test helpers (tsc -p test/tsconfig.json)');
  // tsc emits even when some file has type errors: the bench needs only the helpers, so errors elsewhere
  // in test/ (a suite being edited) are reported but do not stop it.
  const tsc = spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'test', 'tsconfig.json')], { encoding: 'utf8' });
  if (tsc.status !== 0) {
    const files = [...new Set((tsc.stdout + tsc.stderr).split('\n').map((l) => /^([^(\s]+\.ts)\(/.exec(l)?.[1]).filter(Boolean))];
    const helpersBroken = files.some((f) => f.startsWith('test/helpers/'));
    if (helpersBroken || !existsSync(join(root, 'dist-test', 'test', 'helpers', 'smtpd.js'))) {
      process.stderr.write(tsc.stdout + tsc.stderr);
      throw new Error('the test helpers do not compile');
    }
    early.push(`tsc -p test/tsconfig.json reported type errors in ${files.join(', ')} (not used by the bench); the helpers were emitted and used`);
  }
}
const helper = (name) => import(pathToFileURL(join(root, 'dist-test', 'test', 'helpers', `${name}.js`)).href);
const dist = (path) => import(pathToFileURL(join(root, 'dist', path)).href);
let envelopeOf, NQQUEUE_BIN, daemonsMod, MemoryMessage, ClamdClient, SpamdClient, RspamdClient;
if (!RENDER) {
  ({ envelopeOf, NQQUEUE_BIN } = await helper('smtpd'));
  daemonsMod = await helper('daemons');
  ({ MemoryMessage } = await dist('intake/message.js'));
  ({ ClamdClient } = await dist('clients/clamd.js'));
  ({ SpamdClient } = await dist('clients/spamd.js'));
  ({ RspamdClient } = await dist('clients/rspamd.js'));
}

const work = mkdtempSync(join(tmpdir(), 'nqqueue-bench-'));
const QQ_BIN = join(root, 'bin', 'nqqueue-qq');

function cc(source, out, defines = []) {
  run('cc', ['-O2', '-Wall', ...defines, '-o', out, join(root, 'bench', source)]);
  return out;
}
const PEAKRSS = RENDER ? undefined : cc('peakrss.c', join(work, 'peakrss'));
/** qmail-smtpd's side of every program run (bench/smtpd.c, scripts/bench-smtpd.js), in /var/qmail's place. */
const SMTPD = RENDER ? undefined : new Smtpd(cc('smtpd.c', join(work, 'smtpd')));
const SMTPD_CWD = join(work, 'var-qmail');
if (!RENDER) mkdirSync(SMTPD_CWD);
const smtpdRun = (o) => SMTPD.run({ cwd: SMTPD_CWD, ...o });

/** A qmail-queue stand-in recording into its own directory (compiled in: NQqueue gives it no arguments). */
function makeFloor(name, withRss = false) {
  const dir = join(work, `floor-${name}`);
  mkdirSync(dir, { recursive: true });
  const defines = [`-DFLOOR_DIR="${dir}"`, ...(withRss ? ['-DFLOOR_RSS'] : [])];
  const bin = cc('qmail-queue-floor.c', join(work, `qmail-queue-${name}`), defines);
  return { dir, bin };
}

/** The delivery files of a floor directory (its own temp files and rss.log excluded). */
function floorFiles(floor) {
  return readdirSync(floor.dir).filter((n) => /^\d+\.\d+$/.test(n)).map((n) => join(floor.dir, n));
}
function clearFloor(floor) {
  for (const f of floorFiles(floor)) unlinkSync(f);
  rmSync(join(floor.dir, 'rss.log'), { force: true });
}

/** One delivery file: sizes from its header, the envelope's recipients, and the Message-ID (from the head). */
function readDelivery(file) {
  const fd = openSync(file, 'r');
  try {
    const head = Buffer.alloc(98);
    readSync(fd, head, 0, 98, 0);
    const m = /^nqq-stand-in-delivery message=(\d+) envelope=(\d+) reads=(\d+)\n$/.exec(head.toString('latin1'));
    if (!m) throw new Error(`${file}: not a floor delivery file`);
    const msgLen = Number(m[1]);
    const envLen = Number(m[2]);
    const top = Buffer.alloc(Math.min(msgLen, 8192));
    readSync(fd, top, 0, top.length, 98);
    const env = Buffer.alloc(envLen);
    readSync(fd, env, 0, envLen, 98 + msgLen);
    const parts = env.toString('latin1').split('\0');
    const recipients = parts.slice(1).filter((p) => p.startsWith('T')).map((p) => p.slice(1));
    const id = /^Message-ID: <([^>]+)>/im.exec(top.toString('latin1'))?.[1];
    return { msgLen, recipients, id };
  } finally {
    closeSync(fd);
  }
}

/** Node 24 from the npm registry's `node` package, installed once and kept in the temp dir. */
function findNode24() {
  const prefix = join(tmpdir(), 'nqqueue-node24');
  const bin = join(prefix, 'node_modules', 'node', 'bin', 'node');
  const version = () => {
    const r = spawnSync(bin, ['--version'], { encoding: 'utf8' });
    return r.status === 0 ? r.stdout.trim() : undefined;
  };
  let v = existsSync(bin) ? version() : undefined;
  if (!v?.startsWith('v24.')) {
    progress(`installing node@24 into ${prefix} (npm)`);
    const r = spawnSync('npm', ['install', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', 'node@24'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 300_000,
    });
    v = existsSync(bin) ? version() : undefined;
    if (!v?.startsWith('v24.')) return { why: `npm install node@24 failed: ${(r.stderr || r.stdout || String(r.error)).trim().split('\n').slice(-3).join(' ')}` };
  }
  return { bin, version: v };
}

// ---------------------------------------------------------------------------------------------
// Messages: distinct, so clamd's cache of clean files never helps

const WORDS = (
  'the of and to in is that for it as was with be by on not this are or from at which but have an they you were ' +
  'their has would when if so no more out up into do any your what some time can only other new could about than ' +
  'over these may like first then now after also made many before must through back years where much should well ' +
  'people down own just because good each those feel seem how high too place little world very still nation hand ' +
  'old life tell write become here show house both between need mean call develop under last right move thing ' +
  'general school never same another begin while number part turn real leave might want point form off child few ' +
  'small since against ask late home interest large person end open public follow during present without again ' +
  'hold govern around possible head consider word program problem however lead system set order eye plan run keep ' +
  'face fact group play stand increase early course change help line meeting invoice report schedule budget quarter'
).split(' ');

let seq = 0;
const runTag = `${Date.now().toString(36)}`;
function word() {
  return WORDS[Math.floor(Math.random() * WORDS.length)];
}
function newId(kind) {
  return `bench-${runTag}-${kind}-${++seq}@client.example`;
}
function headerBlock(id, to, subject) {
  return (
    'Received: from client.example (HELO helo.client.example) (192.0.2.7)\n' +
    `  by mx.example.com with SMTP; ${new Date().toUTCString().replace('GMT', '-0000')}\n` +
    'From: Sender <sender@client.example>\n' +
    `To: ${to}\n` +
    `Subject: ${subject}\n` +
    `Message-ID: <${id}>\n` +
    `Date: ${new Date().toUTCString().replace('GMT', '-0000')}\n` +
    'MIME-Version: 1.0\n'
  );
}
/** A plain-text message of about `size` bytes, different in every line from any other. */
function textMessage(kind, size = MESSAGE_BYTES) {
  const id = newId(kind);
  let text = headerBlock(id, 'rcpt@example.com', `${word()} ${word()} ${word()} ${seq}`) + 'Content-Type: text/plain; charset=us-ascii\n\n';
  const lines = [];
  let len = text.length;
  while (len < size) {
    let line = '';
    while (line.length < 64) line += `${word()} `;
    line = `${line}${Math.floor(Math.random() * 1e6)}`;
    lines.push(line);
    len += line.length + 1;
  }
  text += `${lines.join('\n')}\n`;
  return { id, buf: Buffer.from(text, 'latin1') };
}
/** A message of `bytes` with a base64 attachment of random bytes (the 50 MB row). */
function bigMessage(bytes) {
  const id = newId('big');
  const head =
    headerBlock(id, 'a01@example.com', 'the big one') +
    'Content-Type: multipart/mixed; boundary="bench-boundary"\n\n--bench-boundary\nContent-Type: text/plain\n\nSee attachment.\n\n' +
    '--bench-boundary\nContent-Type: application/octet-stream; name="data.bin"\nContent-Transfer-Encoding: base64\n\n';
  const tail = '\n--bench-boundary--\n';
  const lineBytes = 77;
  const nLines = Math.floor((bytes - head.length - tail.length) / lineBytes);
  const body = Buffer.alloc(nLines * lineBytes);
  const chunk = 1 << 20;
  for (let off = 0; off < body.length; off += chunk) {
    const raw = Buffer.alloc(Math.min(chunk, body.length - off));
    const rnd = randomBytes(Math.ceil((raw.length / lineBytes) * 57) + 57);
    const b64 = rnd.toString('base64');
    let p = 0;
    for (let i = 0; i + lineBytes <= raw.length; i += lineBytes, p += 76) {
      raw.write(b64.slice(p, p + 76), i, 'latin1');
      raw[i + 76] = 0x0a;
    }
    raw.copy(body, off);
  }
  return { id, buf: Buffer.concat([Buffer.from(head, 'latin1'), body, Buffer.from(tail, 'latin1')]) };
}

// ---------------------------------------------------------------------------------------------
// Statistics

function stats(samples) {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
  const mean = s.reduce((a, b) => a + b, 0) / (s.length || 1);
  return { n: s.length, median: s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN, p90: at(0.9), mean, min: s[0], max: s[s.length - 1] };
}
const r1 = (x) => (x === undefined || Number.isNaN(x) ? undefined : Math.round(x * 10) / 10);
const fmt = (x, d = 1) => (x === undefined || x === null || Number.isNaN(x) ? '—' : x.toFixed(d));
const signed = (x, d = 1) => (x === undefined || Number.isNaN(x) ? '—' : `${x < 0 ? '−' : '+'}${Math.abs(x).toFixed(d)}`);

// ---------------------------------------------------------------------------------------------
// Installations (control dir, home, floor) and the processes under test

function makeInstall(name, files, floorRss = false, extraEnv = {}) {
  const dir = join(work, `inst-${name}`);
  const control = join(dir, 'control');
  const home = join(dir, 'home');
  mkdirSync(control, { recursive: true });
  mkdirSync(home, { recursive: true, mode: 0o700 });
  writeFileSync(join(control, 'rcpthosts'), 'example.com\n');
  writeFileSync(join(control, 'me'), 'mx.example.com\n');
  for (const [f, content] of Object.entries(files)) writeFileSync(join(control, f), content);
  const floor = makeFloor(name, floorRss);
  const paths = { NQQUEUE_CONTROLDIR: control, NQQUEUE_HOME: home, NQQUEUE_QMAILQUEUE: floor.bin, ...extraEnv };
  return {
    name,
    dir,
    control,
    home,
    floor,
    paths,
    /** The environment qmail-smtpd would give (no PATH), plus where NQqueue's files are. */
    env(node) {
      return {
        ...paths,
        TCPREMOTEIP: '192.0.2.7',
        TCPREMOTEHOST: 'client.example',
        TCPLOCALIP: '198.51.100.1',
        PROTO: 'TCP',
        ...(node.nqqueueNode ? { NQQUEUE_NODE: node.nqqueueNode } : {}),
      };
    },
  };
}

const ours = new Set();
function killOurs() {
  for (const c of ours) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
}
process.once('exit', () => {
  killOurs();
  rmSync(work, { recursive: true, force: true });
});
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    killOurs();
    process.exit(130);
  });
}

/**
 * `bin/nqqueue serve` for an installation, as an administrator's run file starts it (the launcher and
 * its node flags), on the node under test (NQQUEUE_NODE); resolves once its socket answers.
 */
async function startServe(inst, node) {
  const log = openSync(join(inst.dir, 'serve.log'), 'a');
  const child = spawn(NQQUEUE_BIN, ['serve'], { env: { ...inst.paths, NQQUEUE_NODE: node.bin }, stdio: ['ignore', 'ignore', log] });
  closeSync(log);
  ours.add(child);
  child.once('exit', () => ours.delete(child));
  const sock = join(inst.home, 'nqqueue.sock');
  const started = performance.now();
  while (performance.now() - started < 15_000) {
    if (child.exitCode !== null || child.signalCode !== null) break;
    const ok = await new Promise((resolve) => {
      const c = connect(sock);
      c.once('connect', () => {
        c.destroy();
        resolve(true);
      });
      c.once('error', () => resolve(false));
    });
    if (ok) {
      return {
        pid: child.pid,
        child,
        startMs: performance.now() - started,
        stop: () => stopChild(child),
      };
    }
    await sleep(10);
  }
  child.kill('SIGKILL');
  throw new Error(`nqqueue serve did not start: ${readFileSync(join(inst.dir, 'serve.log'), 'utf8').slice(-2000)}`);
}

async function stopChild(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const done = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await done;
  clearTimeout(timer);
}

function procStatusKB(pid, field) {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** The ms= NQqueue's own log line reports (its time from start of processing to the decision and delivery). */
function ownMs(stderr) {
  const line = stderr.split('\n').find((l) => l.startsWith('nqqueue:') && / exit=/.test(l));
  const m = line && / ms=(\d+)/.exec(line);
  return m ? Number(m[1]) : undefined;
}

/** One message through `bin` (or the floor alone) the way qmail-smtpd hands it over. */
async function deliver(inst, node, bin, rcpts, message, extra = {}) {
  return smtpdRun({
    bin,
    args: extra.args ?? [],
    message,
    envelope: envelopeOf(SENDER, rcpts),
    env: inst.env(node),
    timeoutMs: extra.timeoutMs ?? 60_000,
  });
}

// ---------------------------------------------------------------------------------------------
// Rows

const results = {
  started: new Date().toISOString(),
  machine: {},
  nodes: {},
  backends: {},
  rows: [],
  big: [],
  throughput: [],
  kill: [],
  metrics: {},
  lists: [],
  store: [],
  memory: [],
  qq: [],
  fildes: [],
  pipeline: [],
  breakdown: [],
  startup: {},
  start: [],
  targets: [],
  notes: [],
};
const note = (text) => {
  const line = text.replace(/\s*\n\s*/g, ' / ');
  progress(`NOTE: ${line}`);
  results.notes.push(line);
};
for (const e of early) note(e);

/**
 * Time `n` distinct messages (after `warm` untimed ones) through one program, check every one was accepted
 * and reached the floor for every recipient, then measure peak memory on a few more.
 *
 * `refs` are reference measurements taken right after each timed message (the stand-in alone, clamd's own
 * scan, spamd's 10 requests at once, the same program with one recipient...): on a shared machine the load
 * changes from minute to minute, and a comparison is only fair between figures taken side by side.
 */
async function timeRow({ node, mode, scenario, rcptKey, inst, rcpts, n, warm, serve, refs = [] }) {
  const bin = mode === 'floor' ? inst.floor.bin : mode === 'daemon' ? QQ_BIN : NQQUEUE_BIN;
  const label = `${node.label} ${mode} ${scenario} ${rcptKey}`;
  for (let i = 0; i < warm; i++) {
    const r = await deliver(inst, node, bin, rcpts, textMessage('warm').buf);
    if (r.code !== 0) progress(`  warm-up of ${label}: exit ${r.code} ${r.stderr.trim().slice(0, 300)}`);
  }
  clearFloor(inst.floor);
  const samples = [];
  const own = [];
  const refSamples = Object.fromEntries(refs.map((ref) => [ref.name, []]));
  /** Per message: its time minus the sum of its references' times. */
  const overRefs = [];
  let refRecipients = 0;
  let fails = 0;
  let firstError;
  let viaDaemon = 0;
  for (let i = 0; i < n; i++) {
    const r = await deliver(inst, node, bin, rcpts, textMessage(scenario).buf);
    let refTotal = 0;
    for (const ref of refs) {
      const ms = await ref.run();
      refSamples[ref.name].push(ms);
      refTotal += ms;
      refRecipients += ref.floorRecipients ?? 0;
    }
    if (r.code !== 0 || r.timedOut) {
      fails++;
      firstError ??= `exit ${r.code}${r.signal ? ` ${r.signal}` : ''}: ${r.stderr.trim().slice(0, 400)}`;
      continue;
    }
    samples.push(r.ms);
    if (refs.length) overRefs.push(r.ms - refTotal);
    const o = ownMs(r.stderr);
    if (o !== undefined) own.push(o);
    if (/ via=daemon/.test(r.stderr)) viaDaemon++;
  }
  let covered = 0;
  for (const f of floorFiles(inst.floor)) covered += readDelivery(f).recipients.length;
  const expected = samples.length * rcpts.length + refRecipients;
  if (covered !== expected) note(`${label}: the floor recorded ${covered} recipient deliveries, expected ${expected}`);
  if (mode === 'daemon' && viaDaemon !== samples.length) note(`${label}: only ${viaDaemon} of ${samples.length} answered by the daemon (the rest fell back)`);
  clearFloor(inst.floor);

  // Peak memory, on messages of their own (the wrapper costs a fork: not in the timings above).
  const rss = {};
  for (let i = 0; i < COUNTS.memRuns; i++) {
    const out = join(work, `rss-${process.pid}`);
    rmSync(out, { force: true });
    const r = await deliver(inst, node, PEAKRSS, rcpts, textMessage('mem').buf, { args: [out, bin] });
    if (r.code === 0 && existsSync(out)) {
      const kb = Number(readFileSync(out, 'utf8').trim());
      rss.processKB = Math.max(rss.processKB ?? 0, kb);
    }
  }
  if (serve) rss.daemonHwmKB = procStatusKB(serve.pid, 'VmHWM');
  clearFloor(inst.floor);

  const st = stats(samples);
  const rounded = (x) => Object.fromEntries(Object.entries(stats(x)).map(([k, v]) => [k, k === 'n' ? v : r1(v)]));
  const row = {
    node: node.key,
    mode,
    scenario,
    rcpts: rcptKey,
    recipients: rcpts.length,
    ...rounded(samples),
    ownMedian: own.length ? r1(stats(own).median) : undefined,
    refs: refs.length ? Object.fromEntries(refs.map((ref) => [ref.name, rounded(refSamples[ref.name])])) : undefined,
    overRefsMedian: overRefs.length ? r1(stats(overRefs).median) : undefined,
    fails,
    firstError,
    rss,
  };
  results.rows.push(row);
  const refText = refs.map((ref) => ` ${ref.name} ${fmt(row.refs[ref.name].median)}`).join('');
  progress(
    `  ${label.padEnd(48)} median ${fmt(st.median)} ms  p90 ${fmt(st.p90)} ms  n=${st.n}${refText ? `  (side by side:${refText} ms)` : ''}${fails ? `  FAILED ${fails}: ${firstError}` : ''}` +
      `  rss ${rss.processKB ? (rss.processKB / 1024).toFixed(1) : '—'} MB${rss.daemonHwmKB ? ` daemon ${(rss.daemonHwmKB / 1024).toFixed(1)} MB` : ''}`,
  );
  return row;
}

/** The machine's CPU time so far, /proc/stat's first line (user nice system idle iowait irq softirq steal ...). */
function cpuTicks() {
  try {
    return readFileSync('/proc/stat', 'latin1').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  } catch {
    return undefined;
  }
}

/** CPU ms of a process so far (/proc/PID/stat, in USER_HZ ticks of 10 ms): its own and its waited-for children's. */
function cpuMs(pid) {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const v = f.slice(f.lastIndexOf(')') + 2).split(' ').map(Number);
    // fields 14-17 of stat(5): utime stime cutime cstime (v[0] is field 3)
    return { self: (v[11] + v[12]) * 10, children: (v[13] + v[14]) * 10 };
  } catch {
    return { self: 0, children: 0 };
  }
}

/** Messages per second with INFLIGHT messages in flight for a few seconds, and the CPU each cost. */
async function throughputRow(node, mode, inst, servePid) {
  const bin = mode === 'floor' ? inst.floor.bin : mode === 'daemon' ? QQ_BIN : NQQUEUE_BIN;
  for (let i = 0; i < 2; i++) await deliver(inst, node, bin, ['d01@example.com'], textMessage('warm').buf);
  clearFloor(inst.floor);
  let done = 0;
  let fails = 0;
  let firstError;
  const lat = [];
  // The CPU of what qmail-smtpd runs is the bench/smtpd processes' waited-for children (the program and,
  // in daemon mode, the qmail-queue it runs); the daemon's is its own. A runner started during the run
  // counts from 0.
  for (let i = SMTPD.all.length; i < INFLIGHT; i++) SMTPD.add();
  const before = new Map(SMTPD.all.map((r) => [r.proc.pid, cpuMs(r.proc.pid).children]));
  const daemonBefore = servePid ? cpuMs(servePid).self : 0;
  const started = performance.now();
  const end = started + COUNTS.throughputS * 1000;
  const worker = async () => {
    while (performance.now() < end) {
      const r = await deliver(inst, node, bin, ['d01@example.com'], textMessage('tput').buf);
      if (r.code === 0) {
        done++;
        lat.push(r.ms);
      } else {
        fails++;
        firstError ??= `exit ${r.code}: ${r.stderr.trim().slice(0, 300)}`;
      }
    }
  };
  await Promise.all(Array.from({ length: INFLIGHT }, worker));
  const seconds = (performance.now() - started) / 1000;
  const programsMs = SMTPD.all.reduce((sum, r) => sum + cpuMs(r.proc.pid).children - (before.get(r.proc.pid) ?? 0), 0);
  const daemonMs = servePid ? cpuMs(servePid).self - daemonBefore : 0;
  const delivered = floorFiles(inst.floor).length;
  if (delivered !== done) note(`throughput ${node.label} ${mode}: ${done} accepted but ${delivered} delivered`);
  clearFloor(inst.floor);
  const row = { node: node.key, mode, messages: done, seconds: r1(seconds), perSecond: r1(done / seconds), latencyMedian: r1(stats(lat).median), fails, firstError,
    cpuPrograms: done ? Math.round((1000 * programsMs) / done) / 1000 : undefined, cpuDaemon: servePid && done ? Math.round((1000 * daemonMs) / done) / 1000 : undefined };
  results.throughput.push(row);
  progress(`  throughput ${node.label} ${mode}: ${row.perSecond} msg/s (${done} in ${row.seconds} s, median latency ${row.latencyMedian} ms; CPU per message ${row.cpuPrograms} ms${servePid ? ` + the daemon ${row.cpuDaemon} ms` : ''})${fails ? ` FAILED ${fails}: ${firstError}` : ''}`);
}

/** Bytes held in memfds by running nqqueue-qq processes (found by their executable; only read, never signalled). */
function qqMemfdBytes() {
  let total = 0;
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (readlinkSync(`/proc/${pid}/exe`) !== QQ_BIN) continue;
      for (const fd of readdirSync(`/proc/${pid}/fd`)) {
        const p = `/proc/${pid}/fd/${fd}`;
        if (readlinkSync(p).startsWith('/memfd:')) total += statSync(p).size;
      }
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return total;
}

/** The 50 MB message to 20 recipients: peak RSS of every process involved, and the copies delivered. */
async function bigRow(node, inst) {
  const message = bigMessage(COUNTS.bigMB * 1_000_000);
  const row = { node: node.key, bytes: message.buf.length, recipients: BIG_RCPTS.length };
  const check = (what) => {
    const files = floorFiles(inst.floor).map(readDelivery);
    const rcpts = files.reduce((a, f) => a + f.recipients.length, 0);
    const ok = files.length >= 2 && rcpts === BIG_RCPTS.length && files.every((f) => f.msgLen >= message.buf.length);
    if (!ok) note(`${COUNTS.bigMB} MB ${node.label} ${what}: ${files.length} copies for ${rcpts} recipients (expected 2 copies, ${BIG_RCPTS.length} recipients)`);
    const rssLog = existsSync(join(inst.floor.dir, 'rss.log')) ? readFileSync(join(inst.floor.dir, 'rss.log'), 'utf8') : '';
    const standInKB = Math.max(0, ...rssLog.split('\n').filter(Boolean).map((l) => Number(l.split(' ')[1])));
    clearFloor(inst.floor);
    return { copies: files.length, standInKB };
  };
  const out = join(work, `rss-big-${process.pid}`);

  clearFloor(inst.floor);
  rmSync(out, { force: true });
  let r = await deliver(inst, node, PEAKRSS, BIG_RCPTS, message.buf, { args: [out, NQQUEUE_BIN], timeoutMs: 180_000 });
  row.standalone = { exit: r.code, ms: r1(r.ms), rssKB: existsSync(out) ? Number(readFileSync(out, 'utf8')) : undefined, ...check('standalone') };
  if (r.code !== 0) note(`${COUNTS.bigMB} MB standalone ${node.label}: exit ${r.code} ${r.stderr.trim().slice(0, 300)}`);

  if (daemonAvailable) {
    const serve = await startServe(inst, node);
    row.daemon = { startRssKB: procStatusKB(serve.pid, 'VmRSS') };
    rmSync(out, { force: true });
    // nqqueue-qq keeps its copy of the input in memfds (tmpfs pages: memory, but not in its RSS): sample them.
    let memfdMax = 0;
    const sampler = setInterval(() => {
      memfdMax = Math.max(memfdMax, qqMemfdBytes());
    }, 5);
    r = await deliver(inst, node, PEAKRSS, BIG_RCPTS, message.buf, { args: [out, QQ_BIN], timeoutMs: 180_000 });
    clearInterval(sampler);
    row.daemon.qqMemfdKB = Math.round(memfdMax / 1024);
    Object.assign(row.daemon, {
      exit: r.code,
      viaDaemon: / via=daemon/.test(r.stderr),
      ms: r1(r.ms),
      qqRssKB: existsSync(out) ? Number(readFileSync(out, 'utf8')) : undefined,
      daemonHwmKB: procStatusKB(serve.pid, 'VmHWM'),
      ...check('daemon'),
    });
    if (r.code !== 0) note(`${COUNTS.bigMB} MB daemon ${node.label}: exit ${r.code} ${r.stderr.trim().slice(0, 300)}`);
    await serve.stop();
  }
  results.big.push(row);
  const mb = (kb) => (kb ? `${(kb / 1024).toFixed(1)} MB` : '—');
  progress(
    `  ${COUNTS.bigMB} MB x 20 ${node.label}: standalone ${row.standalone.ms} ms rss ${mb(row.standalone.rssKB)}, stand-in ${mb(row.standalone.standInKB)}` +
      (row.daemon ? `; daemon ${row.daemon.ms} ms qq ${mb(row.daemon.qqRssKB)} daemon ${mb(row.daemon.daemonHwmKB)} stand-in ${mb(row.daemon.standInKB)}` : ''),
  );
}

/**
 * Daemon mode, a burst with INFLIGHT messages in flight; the daemon is SIGKILLed (by the PID started here)
 * after COUNTS.killAfter answers. Afterwards every message must be delivered exactly once with exit 0
 * (through the daemon or the fallback), or not delivered with exit 71.
 */
async function killRow(node, inst) {
  const serve = await startServe(inst, node);
  for (let i = 0; i < 2; i++) await deliver(inst, node, QQ_BIN, ['d01@example.com'], textMessage('warm').buf);
  clearFloor(inst.floor);
  const msgs = Array.from({ length: COUNTS.killBurst }, () => textMessage('kill'));
  const outcome = new Map();
  let next = 0;
  let answered = 0;
  let inFlight = 0;
  let killedAt;
  const worker = async () => {
    while (next < msgs.length) {
      const m = msgs[next++];
      inFlight++;
      const r = await deliver(inst, node, QQ_BIN, ['d01@example.com'], m.buf);
      inFlight--;
      outcome.set(m.id, { code: r.code, signal: r.signal, viaDaemon: / via=daemon/.test(r.stderr), stderr: r.stderr });
      answered++;
      if (killedAt === undefined && answered >= COUNTS.killAfter) {
        killedAt = { answered, inFlight };
        process.kill(serve.pid, 'SIGKILL');
      }
    }
  };
  await Promise.all(Array.from({ length: INFLIGHT }, worker));
  await serve.stop();
  // A qmail-queue the daemon started just before it died may still be finishing on its own.
  await sleep(2000);
  const count = new Map();
  for (const f of floorFiles(inst.floor)) {
    const d = readDelivery(f);
    count.set(d.id, (count.get(d.id) ?? 0) + 1);
  }
  clearFloor(inst.floor);
  const row = { node: node.key, messages: msgs.length, killedAfter: killedAt?.answered, inFlightAtKill: killedAt?.inFlight, accepted: 0, viaDaemon: 0, viaFallback: 0, deferred: 0, lost: 0, duplicated: 0, deferredButDelivered: 0, otherExit: 0, otherExits: [] };
  for (const m of msgs) {
    const o = outcome.get(m.id);
    const c = count.get(m.id) ?? 0;
    if (c > 1) row.duplicated++;
    if (o.code === 0) {
      row.accepted++;
      if (o.viaDaemon) row.viaDaemon++;
      else row.viaFallback++;
      if (c === 0) row.lost++;
    } else if (o.code === 71) {
      row.deferred++;
      if (c > 0) row.deferredButDelivered++;
    } else {
      row.otherExit++;
      row.otherExits.push(`${o.code ?? o.signal}: ${o.stderr.trim().slice(0, 200)}`);
    }
  }
  results.kill.push(row);
  progress(
    `  kill -9 ${node.label}: killed after ${row.killedAfter} answers (${row.inFlightAtKill} in flight); accepted ${row.accepted} (daemon ${row.viaDaemon}, fallback ${row.viaFallback}), deferred ${row.deferred}; lost ${row.lost}, duplicated ${row.duplicated}, deferred-but-delivered ${row.deferredButDelivered}, other exits ${row.otherExit}`,
  );
}

/**
 * What the metrics add to a message in daemon mode, measured in a process of the node under test
 * (bench/metrics-cost.mjs): the front door's facts, the backend counts, the record counted into the
 * registry and appended to the journal, and the rollup writer's reading of it later. A difference of
 * 0.1 ms between two end-to-end rows would be lost in their noise: it is timed where it is spent.
 */
function metricsRow(node) {
  const r = spawnSync(node.bin, [join(root, 'bench', 'metrics-cost.mjs'), join(root, 'dist')], { encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) throw new Error(`bench/metrics-cost.mjs failed (${r.status ?? r.signal}): ${r.stderr.slice(0, 500)}`);
  const m = JSON.parse(r.stdout.trim().split('\n').pop());
  results.metrics[node.key] = m;
  progress(`  metrics ${node.label}: ${fmt(m.perMessageMs * 1000, 1)} µs per message (${fmt(m.messageMs * 1000, 1)} counting, ${fmt(m.rollupMs * 1000, 1)} rolling up); a scrape ${fmt(m.scrapeMs, 1)} ms`);
}

/**
 * Where a standalone run's time goes before NQqueue does anything: the node binary's own start (to the
 * first line of a script) and loading NQqueue's queue-mode modules. Measured in plain processes.
 */
async function startupRow(node) {
  const probe = join(work, 'startup-probe.mjs');
  writeFileSync(
    probe,
    `const boot = performance.now();\nawait import(${JSON.stringify(pathToFileURL(join(root, 'dist', 'cli', 'queue-mode.js')).href)});\n` +
      'process.stdout.write(JSON.stringify({ boot, load: performance.now() - boot }));\n',
  );
  const boot = [];
  const load = [];
  for (let i = 0; i < COUNTS.fast / 2 + 2; i++) {
    const r = spawnSync(node.bin, [probe], { encoding: 'utf8', env: {} });
    if (r.status !== 0) throw new Error(`startup probe: ${r.stderr}`);
    if (i < 2) continue;
    const o = JSON.parse(r.stdout);
    boot.push(o.boot);
    load.push(o.load);
  }
  results.startup[node.key] = { bootMs: r1(stats(boot).median), loadMs: r1(stats(load).median), n: boot.length };
  progress(`  ${node.label}: node start ${results.startup[node.key].bootMs} ms, loading queue mode's modules ${results.startup[node.key].loadMs} ms`);
}

// Reference measurements taken side by side with a row's messages (see timeRow).
const clamdRefClient = { client: undefined };
const spamdRefClient = { client: undefined };
function timed(p) {
  const t = performance.now();
  return p.then(() => performance.now() - t);
}
const refFloor = (floorInst, node) => ({
  name: 'stand-in',
  run: async () => {
    const r = await deliver(floorInst, node, floorInst.floor.bin, ['d01@example.com'], textMessage('ref').buf);
    clearFloor(floorInst.floor);
    return r.ms;
  },
});
const refClamd = (socket) => ({
  name: 'clamd',
  run: () => {
    clamdRefClient.client ??= new ClamdClient({ addresses: [socket] });
    return timed(clamdRefClient.client.scan(new MemoryMessage(textMessage('ref-clamd').buf), { signal: AbortSignal.timeout(60_000) }));
  },
});
const refSpamd10 = (address) => ({
  name: 'spamd 10 at once',
  run: () => {
    spamdRefClient.client ??= new SpamdClient({ addresses: [address] });
    const m = new MemoryMessage(textMessage('ref-spamd10').buf);
    return timed(Promise.all(DIFF_RCPTS.map((user) => spamdRefClient.client.headers(m, { signal: AbortSignal.timeout(120_000), user }))));
  },
});
const refOneRecipient = (inst, node, bin) => ({
  name: '1 recipient',
  floorRecipients: 1,
  run: async () => (await deliver(inst, node, bin, ['d01@example.com'], textMessage('ref-one').buf)).ms,
});

/** Runs one part of the bench; a failure is noted and the rest goes on. */
async function guard(what, fn) {
  try {
    await fn();
  } catch (err) {
    note(`${what} failed: ${String(err?.stack ?? err).split('\n').slice(0, 3).join(' | ')}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Backends: their own cost, measured with the project's clients on fresh messages

async function measureBackends(backends) {
  const signal = () => AbortSignal.timeout(60_000);
  if (backends.clamd) {
    const client = new ClamdClient({ addresses: [backends.clamd.socket] });
    for (let i = 0; i < COUNTS.warm; i++) await client.scan(new MemoryMessage(textMessage('clamd-warm').buf), { signal: signal() });
    const ms = [];
    for (let i = 0; i < COUNTS.fast; i++) {
      const t = performance.now();
      await client.scan(new MemoryMessage(textMessage('clamd').buf), { signal: signal() });
      ms.push(performance.now() - t);
    }
    results.backends.clamd = { what: 'one INSTREAM scan, 10 KB, fresh message, Unix socket (ClamdClient)', ...roundStats(ms) };
    progress(`  clamd own scan: median ${fmt(results.backends.clamd.median, 2)} ms`);
  }
  if (backends.spamd) {
    const client = new SpamdClient({ addresses: [backends.spamd.address] });
    for (let i = 0; i < 2; i++) await client.headers(new MemoryMessage(textMessage('spamd-warm').buf), { signal: signal(), user: 'd01@example.com' });
    const one = [];
    for (let i = 0; i < COUNTS.spam; i++) {
      const t = performance.now();
      await client.headers(new MemoryMessage(textMessage('spamd').buf), { signal: signal(), user: 'd01@example.com' });
      one.push(performance.now() - t);
    }
    results.backends.spamd = { what: 'one HEADERS request, 10 KB (SpamdClient)', ...roundStats(one) };
    progress(`  spamd own scan: median ${fmt(results.backends.spamd.median)} ms`);
    // What spamd can do in parallel: the 10 recipients' requests at once, as NQqueue sends them for one
    // message to 10 users with their own settings.
    const batch = [];
    for (let i = 0; i < COUNTS.spam; i++) {
      const m = new MemoryMessage(textMessage('spamd10').buf);
      const t = performance.now();
      await Promise.all(DIFF_RCPTS.map((user) => client.headers(m, { signal: signal(), user })));
      batch.push(performance.now() - t);
    }
    const b = roundStats(batch);
    results.backends.spamd10 = { what: '10 HEADERS requests at once, 10 users, same 10 KB message (SpamdClient)', ...b, scansPerSecond: r1((10 * 1000) / b.median) };
    progress(`  spamd 10 in parallel: median ${fmt(b.median)} ms per batch = ${results.backends.spamd10.scansPerSecond} scans/s`);
  }
  if (backends.rspamd) {
    const client = new RspamdClient({ urls: [backends.rspamd.url] });
    const opts = (rcpt) => ({ signal: signal(), from: SENDER, rcpt: [rcpt], ip: '192.0.2.7', helo: 'helo.client.example', hostname: 'client.example' });
    for (let i = 0; i < COUNTS.warm; i++) await client.check(new MemoryMessage(textMessage('rspamd-warm').buf), opts('d01@example.com'));
    const ms = [];
    for (let i = 0; i < COUNTS.fast; i++) {
      const t = performance.now();
      await client.check(new MemoryMessage(textMessage('rspamd').buf), opts('d01@example.com'));
      ms.push(performance.now() - t);
    }
    results.backends.rspamd = { what: 'one POST /checkv2, 10 KB (RspamdClient, kept-alive connection)', ...roundStats(ms) };
    progress(`  rspamd own check: median ${fmt(results.backends.rspamd.median, 2)} ms`);
    // The 10 per-recipient requests of one message at once, each with its own client as each routing line
    // has its own (NQqueue's concurrency setting, 8 at a time, is not applied here).
    const clients = DIFF_RCPTS.map(() => new RspamdClient({ urls: [backends.rspamd.url] }));
    const batch = [];
    for (let i = 0; i < COUNTS.warm + COUNTS.fast / 2; i++) {
      const m = new MemoryMessage(textMessage('rspamd10').buf);
      const t = performance.now();
      await Promise.all(DIFF_RCPTS.map((rcpt, j) => clients[j].check(m, opts(rcpt))));
      if (i >= COUNTS.warm) batch.push(performance.now() - t);
    }
    for (const c of [client, ...clients]) c.close();
    results.backends.rspamd10 = { what: '10 POST /checkv2 at once, one per recipient, same 10 KB message', ...roundStats(batch) };
    progress(`  rspamd 10 in parallel: median ${fmt(results.backends.rspamd10.median, 2)} ms per batch`);
  }
}
function roundStats(samples) {
  const st = stats(samples);
  return Object.fromEntries(Object.entries(st).map(([k, v]) => [k, k === 'n' ? v : Math.round(v * 100) / 100]));
}

// ---------------------------------------------------------------------------------------------
// The run

const pluginBuilt = (name) => existsSync(join(root, 'dist', 'plugins', `${name}.js`));
let daemonAvailable = (() => {
  try {
    return (statSync(QQ_BIN).mode & 0o111) !== 0;
  } catch {
    return false;
  }
})();
const nodes = [];
if (RENDER) {
  const file = join(root, 'bench-results', 'latest.json');
  Object.assign(results, JSON.parse(readFileSync(file, 'utf8')));
  Object.assign(COUNTS, results.counts);
  daemonAvailable = results.daemonAvailable ?? results.rows.some((r) => r.mode === 'daemon');
  for (const [key, n] of Object.entries(results.nodes)) nodes.push({ key, ...n });
  progress(`rendering ${file} (run of ${results.started})`);
} else {
  results.counts = COUNTS;
  results.daemonAvailable = daemonAvailable;
  if (!daemonAvailable) note(`${QQ_BIN} is not built: daemon-mode rows skipped`);
  if (ONLY_NODE === undefined || ONLY_NODE === '22') {
    // The node the build recorded for bin/nqqueue (the 22 line, fetched when the system's is older).
    const bin = readFileSync(join(root, 'dist', 'node-path'), 'utf8').trim();
    const version = spawnSync(bin, ['--version'], { encoding: 'utf8' }).stdout.trim();
    nodes.push({ key: `node${version.slice(1).split('.')[0]}`, label: `Node ${version.slice(1).split('.')[0]}`, version, bin, nqqueueNode: bin });
  }
  if (ONLY_NODE === undefined || ONLY_NODE === '24') {
    const n24 = findNode24();
    if (n24.bin) nodes.push({ key: 'node24', label: 'Node 24', version: n24.version, bin: n24.bin, nqqueueNode: n24.bin });
    else note(`Node 24 rows skipped: ${n24.why}`);
  }
  for (const n of nodes) results.nodes[n.key] = { label: n.label, version: n.version, bin: n.bin };

  results.machine = {
    cpus: cpus().length,
    cpu: cpus()[0]?.model,
    memoryGB: Math.round(totalmem() / 2 ** 30),
    loadavgAtStart: loadavg().map((x) => Math.round(x * 100) / 100),
    cpuTicksAtStart: cpuTicks(),
    harness: 'bench/smtpd.c (qmail.c\'s qmail_open and qmail_close: vfork, execv, the pipes written in qmail\'s order, waitpid), one per message in flight',
  };

  progress('starting clamd, spamd, rspamd (private instances from test/daemons/)');
  const backends = {};
  let rspamdRef;
  {
    const names = ['clamd', 'spamd', 'rspamd'];
    const settled = await Promise.allSettled([daemonsMod.startClamd(), daemonsMod.startSpamd(), daemonsMod.startRspamd()]);
    settled.forEach((s, i) => {
      if (s.status === 'fulfilled') {
        backends[names[i]] = s.value;
        progress(`  ${names[i]} pid ${s.value.pid} ready in ${Math.round(s.value.startMs)} ms`);
      } else note(`${names[i]} could not be started: ${String(s.reason?.message ?? s.reason).split('\n')[0]} — its rows are skipped`);
    });
  }
  const versionOf = (cmd, args) => {
    const r = spawnSync(cmd, args, { encoding: 'utf8' });
    return (r.stdout || r.stderr || '').split('\n')[0].trim();
  };
  results.backends.versions = {
    clamd: backends.clamd ? versionOf(daemonsMod.findProgram('clamd'), ['--version']) : undefined,
    spamd: backends.spamd ? versionOf(daemonsMod.findProgram('spamd'), ['--version']) : undefined,
    rspamd: backends.rspamd ? versionOf(daemonsMod.findProgram('rspamd'), ['--version']) : undefined,
  };

  try {
    progress('the backends alone');
    if (want('backends')) await guard('measuring the backends', () => measureBackends(backends));

    // One installation per plugin set; its .cfb lines cover the three recipient cases:
    // d01..d10 each with a line of their own (and their own spamd user), s01..s10 sharing one line whose
    // plugins do not depend on the recipient (one scan for all).
    const sections = [];
    if (backends.clamd) sections.push(`[clamav]\nsocket = ${backends.clamd.socket}\n`);
    if (backends.spamd) sections.push(`[spamassassin]\nhost = ${backends.spamd.address}\n`);
    if (backends.rspamd) sections.push(`[rspamd]\nurl = ${backends.rspamd.url}\n`);
    const conf = sections.join('\n');
    const perUser = (own, shared) => [...DIFF_RCPTS.map((r) => `${r}:${own}`), `/^s\\d+@example\\.com$/:${shared}`, ''].join('\n');
    const scenarios = [
      { scenario: 'none', needs: [], files: {}, rcpts: ['1', '10'] },
      // The client's opt-in: the first copy's qmail-queue started once the daemon is connected.
      { scenario: 'none-early', needs: [], files: {}, rcpts: ['1'], daemonOnly: true, env: { NQQUEUE_QQ_EARLY: 'yes' } },
      { scenario: 'clamav', needs: ['clamav'], backends: ['clamd'], files: { 'general.cfb': ':clamav\n', 'nqqueue.conf': conf }, rcpts: ['1', '10'] },
      {
        scenario: 'clamav+spamassassin',
        needs: ['clamav', 'spamassassin'],
        backends: ['clamd', 'spamd'],
        spam: true,
        files: { 'general.cfb': ':clamav\n', 'nqqueue.cfb': perUser('spamassassin', 'spamassassin=user=global'), 'nqqueue.conf': conf },
        rcpts: ['1', '10same', '10diff'],
      },
      {
        scenario: 'rspamd',
        needs: ['rspamd'],
        backends: ['rspamd'],
        files: { 'nqqueue.cfb': perUser('rspamd', 'rspamd=settings=nqq_lenient'), 'nqqueue.conf': conf },
        rcpts: ['1', '10same', '10diff'],
      },
    ];
    const rcptsFor = { 1: ['d01@example.com'], 10: DIFF_RCPTS, '10same': SAME_RCPTS, '10diff': DIFF_RCPTS };
    const ready = scenarios.filter((s) => {
      const missingPlugin = s.needs.filter((p) => !pluginBuilt(p));
      const missingBackend = (s.backends ?? []).filter((b) => !backends[b]);
      if (missingPlugin.length) note(`${s.scenario}: plugin ${missingPlugin.join(', ')} not built (dist/plugins/) — rows skipped`);
      else if (missingBackend.length) note(`${s.scenario}: ${missingBackend.join(', ')} not running — rows skipped`);
      return missingPlugin.length === 0 && missingBackend.length === 0;
    });
    for (const s of ready) s.inst = makeInstall(s.scenario.replace('+', '-'), s.files, false, s.env);
    const floorInst = makeInstall('floor', {});
    const bigInst = makeInstall('big', {}, true);
    const tagger = join(bigInst.dir, 'tag-half.sh');
    writeFileSync(tagger, '#!/bin/sh\n# reads the whole message, as a real filter would, and tags this copy\ncat >/dev/null\necho "X-Bench-Copy: tagged"\n');
    chmodSync(tagger, 0o755);
    writeFileSync(join(bigInst.control, 'nqqueue.cfb'), `/^a\\d+@example\\.com$/:exec=${tagger},recipient=no\n`);
    const tputInst = makeInstall('throughput', {});
    rspamdRef = backends.rspamd && refRspamd10({ RspamdClient, MemoryMessage, textMessage, url: backends.rspamd.url, rcpts: DIFF_RCPTS, sender: SENDER });
    const killInst = makeInstall('kill', {});

    for (const node of nodes) {
      progress(`=== ${node.label} (${node.version})`);
    results.nodes[node.key].loadavgAtStart = loadavg().map((x) => Math.round(x * 100) / 100);
      if (want('startup')) await guard(`${node.label} start-up breakdown`, () => startupRow(node));
      if (want('startup')) await guard(`${node.label} start options`, () => results.start.push(startOptionsRow({ node, root, work, rounds: COUNTS.fast / 2 })));
      if (want('rows')) await guard(`${node.label} floor`, () =>
        timeRow({ node, mode: 'floor', scenario: 'floor', rcptKey: '1', inst: floorInst, rcpts: rcptsFor[1], n: COUNTS.fast, warm: COUNTS.warm }),
      );
      for (const s of want('rows') ? ready : want('rspamd') ? ready.filter((x) => x.scenario === 'rspamd') : []) {
        for (const rcptKey of s.rcpts) {
          const n = s.spam ? COUNTS.spam : COUNTS.fast;
          const warm = s.spam ? 2 : COUNTS.warm;
          const spec = { node, scenario: s.scenario, rcptKey, inst: s.inst, rcpts: rcptsFor[rcptKey], n, warm };
          const refsFor = (bin) => {
            if (rcptKey === '1' && (s.scenario === 'none' || s.scenario === 'none-early')) return [refFloor(floorInst, node)];
            if (rcptKey === '1' && s.scenario === 'clamav') return [refFloor(floorInst, node), refClamd(backends.clamd.socket)];
            if (rcptKey === '10same' && s.spam) return [refOneRecipient(s.inst, node, bin)];
            if (rcptKey === '10diff' && s.spam) return [refSpamd10(backends.spamd.address)];
            if (rcptKey === '10diff' && s.scenario === 'rspamd') return [rspamdRef, refNoPlugins(async (to) => (await deliver(s.inst, node, bin, to, textMessage('ref-bare').buf)).ms)];
            return [];
          };
          if (!s.daemonOnly) await guard(`${node.label} standalone ${s.scenario} ${rcptKey}`, () => timeRow({ ...spec, mode: 'standalone', refs: refsFor(NQQUEUE_BIN) }));
          if (daemonAvailable) {
            await guard(`${node.label} daemon ${s.scenario} ${rcptKey}`, async () => {
              const serve = await startServe(s.inst, node);
              try {
                await timeRow({ ...spec, mode: 'daemon', serve, refs: refsFor(QQ_BIN) });
              } finally {
                await serve.stop();
              }
            });
          }
        }
      }
      if (want('throughput')) {
        progress(`throughput, ${INFLIGHT} messages in flight for ${COUNTS.throughputS} s, no plugins`);
        await guard(`${node.label} throughput floor`, () => throughputRow(node, 'floor', tputInst));
        await guard(`${node.label} throughput standalone`, () => throughputRow(node, 'standalone', tputInst));
      }
      if (want('throughput') && daemonAvailable) {
        await guard(`${node.label} throughput daemon`, async () => {
          const serve = await startServe(tputInst, node);
          try {
            await throughputRow(node, 'daemon', tputInst, serve.pid);
          } finally {
            await serve.stop();
          }
        });
      }
      if (want('breakdown') && daemonAvailable) {
        await guard(`${node.label} daemon breakdown`, async () => {
          const row = await breakdownRow({ node, inst: makeInstall('breakdown', {}), deliver, startServe, QQ_BIN, n: COUNTS.fast, warm: COUNTS.warm, message: () => textMessage('breakdown').buf });
          results.breakdown.push(row);
          progress(`  daemon breakdown ${node.label}: ${row.stages.map((s) => fmt(s.median, 2)).join(' + ')} ms (outside main ${fmt(row.outside.median, 2)}; over the stand-in ${fmt(row.over.median, 2)})`);
        });
      }
      if (want('big')) {
        progress(`${COUNTS.bigMB} MB message to 20 recipients (two different copies)`);
        await guard(`${node.label} ${COUNTS.bigMB} MB row`, () => bigRow(node, bigInst));
      }
      if (want('fildes') && daemonAvailable && backends.clamd) {
        progress(`fildes: a ${COUNTS.bigMB} MB spilled message, clamd given the file or the bytes`);
        await guard(`${node.label} fildes row`, async () => {
          const eicar = (await helper('daemons')).eicar();
          const row = await fildesRow({ node, makeInstall, startServe, deliver, clearFloor, procStatusKB, QQ_BIN, clamdSocket: backends.clamd.socket, clamdPid: backends.clamd.pid, bigMessage: (b) => bigMessage(b).buf, smallMessage: () => textMessage('warm').buf, eicar, bytes: COUNTS.bigMB * 1_000_000, rounds: QUICK ? 1 : 3 });
          results.fildes.push(row);
          progress(`  fildes ${node.label}: ${fmt(row.fildes.ms, 0)} vs ${fmt(row.instream.ms, 0)} ms, serve peak ${(row.fildes.hwmKB / 1024).toFixed(0)} vs ${(row.instream.hwmKB / 1024).toFixed(0)} MB`);
        });
      }
      if (want('lists')) {
        progress(`lists: ${LISTS_ENTRIES} entries against an empty store`);
        await guard(`${node.label} lists row`, async () => {
          const row = await listsRow({ node, root, work, makeInstall, deliver, startServe, daemonAvailable, NQQUEUE_BIN, QQ_BIN, n: COUNTS.fast, warm: COUNTS.warm, message: () => textMessage('lists').buf });
          results.lists.push(row);
          progress(`  lists ${node.label}: lookup ${row.lookup.empty} → ${row.lookup.full} ms${row.daemon ? `, daemon plugin ${row.daemon.empty.pluginMedian} → ${row.daemon.full.pluginMedian} ms` : ''}`);
        });
      }
      if (want('kill') && daemonAvailable) {
        progress(`kill -9 of the daemon during a burst of ${COUNTS.killBurst}`);
        await guard(`${node.label} kill test`, () => killRow(node, killInst));
      }
      if (want('metrics')) await guard(`${node.label} metrics cost`, () => metricsRow(node));
      if (want('store')) {
        progress('the store: a quarantined message on SQLite and on PostgreSQL');
        await guard(`${node.label} store row`, async () => {
          const row = await storeRow({ node, root, helper });
          results.store.push(row);
          progress(`  store ${node.label}: sqlite ${row.sqlite?.median?.toFixed(2)} ms, postgres ${row.postgres?.median?.toFixed(2) ?? '-'} ms`);
        });
      }
      if (want('memory') && daemonAvailable) {
        progress('memory: nqqueue serve idle, and with 64 messages of 1 MB in flight');
        await guard(`${node.label} memory row`, async () => {
          const row = await memoryRow({ node, makeInstall, startServe, deliver, QQ_BIN, message: textMessage, clamdSocket: backends.clamd?.socket, floorFiles });
          results.memory.push(row);
          progress(`  memory ${node.label}: idle ${(row.idleAfterKB / 1024).toFixed(1)} MB, 64 × 1 MB peak ${(row.inFlightPeakKB / 1024).toFixed(1)} MB`);
        });
      }
      if (want('qq') && daemonAvailable && node === nodes[0]) {
        progress('the daemon-mode client alone');
        await guard('nqqueue-qq row', async () => {
          const row = { node: node.key, ...(await qqRow({ root, run: smtpdRun, envelopeOf, message: () => textMessage('qq').buf, n: COUNTS.fast })) };
          results.qq.push(row);
          progress(`  nqqueue-qq (${row.libc}): +${row.qqOverMs.toFixed(2)} ms, fallback +${row.fallbackOverMs.toFixed(2)} ms over /bin/true${row.muslSavesMs !== undefined ? `; linked against glibc ${row.glibcMs.toFixed(2)} ms against ${row.qqMs.toFixed(2)} (musl saves ${row.muslSavesMs.toFixed(2)})` : ''}`);
        });
      }
      if (want('pipeline')) {
        progress('the pipeline in one process: black, header, attach into an in-memory sink');
        await guard(`${node.label} pipeline row`, async () => {
          const row = pipelineRow({ node, root, quick: QUICK });
          results.pipeline.push(row);
          progress(`  pipeline ${node.label}: ${pipelineFigure(row, fmt)}`);
        });
      }
    }
  } finally {
    rspamdRef?.close();
    await Promise.all(Object.values(backends).map((d) => d.stop()));
    killOurs();
  }
  results.machine.loadavgAtEnd = loadavg().map((x) => Math.round(x * 100) / 100);
  // Steal: the time this virtual machine's CPUs were ready to run but the host ran something else.
  const ticks0 = results.machine.cpuTicksAtStart;
  const ticks1 = cpuTicks();
  if (ticks0 && ticks1) {
    const total = ticks1.reduce((a, b) => a + b, 0) - ticks0.reduce((a, b) => a + b, 0);
    results.machine.stealPercent = total > 0 ? Math.round((1000 * (ticks1[7] - ticks0[7])) / total) / 10 : undefined;
  }
  results.finished = new Date().toISOString();
  results.seconds = Math.round((performance.now() - t0) / 1000);
}

// ---------------------------------------------------------------------------------------------
// Targets and tables

const rowOf = (node, mode, scenario, rcpts) => results.rows.find((r) => r.node === node && r.mode === mode && r.scenario === scenario && r.rcpts === rcpts);
function judge() {
  const out = [];
  const add = (node, name, met, figure) => out.push({ node, target: name, met, figure });
  /** A target whose rows are missing or failed is reported as not measured, with why. */
  const missing = (rows) => {
    const bad = rows.filter(([, r]) => !r || r.n === 0);
    if (bad.length === 0) return undefined;
    return `not measured: ${bad.map(([what, r]) => (r ? `${what} failed (${r.firstError ?? 'no answer'})` : `no ${what} row`)).join('; ')}`;
  };
  for (const node of nodes) {
    const k = node.key;
    const L = node.label;
    const floor = rowOf(k, 'floor', 'floor', '1');
    const dNone = rowOf(k, 'daemon', 'none', '1');
    // The default, then the client's opt-in early qmail-queue (NQQUEUE_QQ_EARLY=yes) on a line of its
    // own: an administrator's choice, not what an installation does unless told.
    for (const [row, what, label] of [
      [dNone, 'daemon, no plugins', 'daemon no-plugin'],
      [rowOf(k, 'daemon', 'none-early', '1'), 'daemon, no plugins, with NQQUEUE_QQ_EARLY=yes (not the default)', 'daemon no-plugin early'],
    ]) {
      const name = `${what}: at most +${TARGETS.daemonNoneMs} ms over the stand-in's median`;
      const why = daemonAvailable ? missing([[label, row]]) : 'not measured: bin/nqqueue-qq is not built';
      if (why) add(L, name, undefined, why);
      else {
        const over = row.overRefsMedian;
        add(L, name, over <= TARGETS.daemonNoneMs, `${signed(over)} ms (median of each message's time − the stand-in's run beside it; medians ${fmt(row.median)} vs ${fmt(row.refs['stand-in'].median)} ms)`);
      }
    }
    {
      const dClam = rowOf(k, 'daemon', 'clamav', '1');
      const name = `daemon, clamav: at most +${TARGETS.clamavMs} ms over clamd's own scan time`;
      const why = !daemonAvailable ? 'not measured: bin/nqqueue-qq is not built' : missing([['daemon no-plugin', dNone], ['daemon clamav', dClam]]);
      if (why) add(L, name, undefined, why);
      else {
        const over = dClam.overRefsMedian - dNone.overRefsMedian;
        add(
          L,
          name,
          over <= TARGETS.clamavMs,
          `${signed(over, 2)} ms (clamav row over stand-in + clamd beside it: ${signed(dClam.overRefsMedian)} ms; no-plugin row over the stand-in: ${signed(dNone.overRefsMedian)} ms; clamd's scan ${fmt(dClam.refs.clamd.median, 2)} ms)`,
        );
      }
    }
    for (const mode of daemonAvailable ? ['daemon', 'standalone'] : ['standalone']) {
      const same = rowOf(k, mode, 'clamav+spamassassin', '10same');
      const diff = rowOf(k, mode, 'clamav+spamassassin', '10diff');
      {
        const name = `${mode}: 10 recipients, same spam settings, at most ${TARGETS.sameRatio}× one recipient`;
        const why = missing([[`${mode} clamav+spamassassin 10 same`, same]]);
        if (why) add(L, name, undefined, why);
        else {
          const one = same.refs['1 recipient'];
          const ratio = same.median / one.median;
          add(L, name, ratio <= TARGETS.sameRatio, `${fmt(ratio, 3)}× (${fmt(same.median)} vs ${fmt(one.median)} ms for one recipient, side by side)`);
        }
      }
      {
        const name = `${mode}: 10 recipients, different spamd users, within 10% of spamd's own parallel capacity`;
        const why = missing([[`${mode} clamav+spamassassin 10 different`, diff]]);
        if (why) add(L, name, undefined, why);
        else {
          const sp = diff.refs['spamd 10 at once'];
          const ratio = diff.median / sp.median;
          add(
            L,
            name,
            ratio <= TARGETS.diffRatio,
            `${fmt(ratio, 3)}× (${fmt(diff.median)} ms per message = ${fmt((10 * 1000) / diff.median)} scans/s; spamd alone, 10 requests at once beside it: ${fmt(sp.median)} ms = ${fmt((10 * 1000) / sp.median)} scans/s)`,
          );
        }
      }
      rspamdTarget(mode, rowOf(k, mode, 'rspamd', '10diff'), (name, met, figure) => add(L, name, met, figure), fmt);
    }
    {
      const tf = results.throughput.find((t) => t.node === k && t.mode === 'floor');
      const td = results.throughput.find((t) => t.node === k && t.mode === 'daemon');
      const name = `throughput, ${INFLIGHT} in flight: daemon mode at least ${TARGETS.throughputRatio}× the stand-in alone`;
      if (!tf || !td || !tf.messages || !td.messages) add(L, name, undefined, daemonAvailable ? 'not measured' : 'not measured: bin/nqqueue-qq is not built');
      else add(L, name, td.perSecond >= TARGETS.throughputRatio * tf.perSecond, `${fmt(td.perSecond / tf.perSecond, 2)}× (${fmt(td.perSecond)} against ${fmt(tf.perSecond)} messages/s in the same run${td.cpuPrograms !== undefined && tf.cpuPrograms !== undefined ? `; CPU per message ${fmt(td.cpuPrograms + td.cpuDaemon, 2)} ms against the stand-in's ${fmt(tf.cpuPrograms, 2)}: nqqueue-qq and the daemon add ${fmt(td.cpuPrograms + td.cpuDaemon - tf.cpuPrograms, 2)}, the target allows ${fmt(tf.cpuPrograms * (1 / TARGETS.throughputRatio - 1), 2)}` : ''})`);
    }
    const big = results.big.find((b) => b.node === k);
    {
      const name = `${COUNTS.bigMB} MB to 20 recipients: under ${TARGETS.bigRssMB} MB peak RSS in every NQqueue process`;
      if (!big) add(L, name, undefined, 'not measured');
      else {
        const procs = [['nqqueue (standalone)', big.standalone?.exit === 0 ? big.standalone.rssKB : undefined]];
        if (big.daemon) procs.push(['nqqueue-qq', big.daemon.exit === 0 ? big.daemon.qqRssKB : undefined], ['nqqueue serve', big.daemon.exit === 0 ? big.daemon.daemonHwmKB : undefined]);
        const known = procs.filter(([, kb]) => kb !== undefined);
        const worst = Math.max(...known.map(([, kb]) => kb));
        const figure = procs.map(([n, kb]) => `${n} ${kb ? `${(kb / 1024).toFixed(1)} MB` : 'not measured (run failed)'}`).join(', ');
        add(L, name, known.length === procs.length ? worst / 1024 < TARGETS.bigRssMB : undefined, figure);
      }
    }
    {
      const m = (results.metrics ?? {})[k];
      const name = `metrics in daemon mode: at most ${TARGETS.metricsMs} ms per message`;
      if (!m) add(L, name, undefined, 'not measured');
      else add(L, name, m.perMessageMs <= TARGETS.metricsMs, `${fmt(m.perMessageMs, 3)} ms (${fmt(m.messageMs, 3)} counting and journaling, ${fmt(m.rollupMs, 3)} rolling up; mean of ${m.n})`);
    }
    const lists = (results.lists ?? []).find((x) => x.node === k);
    {
      const name = `a list of ${LISTS_ENTRIES.toLocaleString('en')} entries adds < ${LISTS_TARGET_MS} ms to a message (daemon mode: the lists plugin's median, and the store's lookup alone)`;
      if (!lists) add(L, name, undefined, 'not measured');
      else {
        const d = lists.daemon;
        const figures = [d ? `daemon plugin median +${d.addsMs} ms (${d.empty.pluginMedian} → ${d.full.pluginMedian})` : 'daemon: not measured', `lookup alone +${lists.lookup.addsMs} ms (${lists.lookup.empty} → ${lists.lookup.full})`];
        add(L, name, d?.addsMs === undefined ? undefined : d.addsMs < LISTS_TARGET_MS && lists.lookup.addsMs < LISTS_TARGET_MS, figures.join('; '));
      }
    }
    const memory = (results.memory ?? []).find((x) => x.node === k);
    if (memory) for (const [name, met, figure] of memoryTargets(memory)) add(L, name, met, figure);
    const qq = (results.qq ?? []).find((x) => x.node === k);
    if (qq) for (const [name, met, figure] of qqTargets(qq, fmt)) add(L, name, met, figure);
    const start = (results.start ?? []).find((x) => x.node === k);
    if (start) add(L, 'standalone start: the adopted option saves at least a third (of node start + loading queue mode)', startJudge(start).met, startJudge(start).figure);
    const fd = (results.fildes ?? []).find((x) => x.node === k);
    {
      const name = `a ${COUNTS.bigMB} MB spilled message handed to clamd as its file (FILDES): nqqueue serve copies none of it to clamd (reads and writes ${2 * COUNTS.bigMB} MB less than INSTREAM), with no larger a peak`;
      if (!fd) add(L, name, undefined, 'not measured');
      else {
        const savedMB = fd.instream.serveIoMB - fd.fildes.serveIoMB;
        add(L, name, savedMB >= 1.8 * COUNTS.bigMB && fd.fildes.hwmKB <= fd.instream.hwmKB + 2048, `serve I/O ${fmt(fd.fildes.serveIoMB, 0)} vs ${fmt(fd.instream.serveIoMB, 0)} MB, CPU ${fmt(fd.fildes.serveCpuMs, 0)} vs ${fmt(fd.instream.serveCpuMs, 0)} ms, peak ${(fd.fildes.hwmKB / 1024).toFixed(0)} vs ${(fd.instream.hwmKB / 1024).toFixed(0)} MB; clamav ${fmt(fd.fildes.clamavMs, 0)} vs ${fmt(fd.instream.clamavMs, 0)} ms (medians of ${fd.rounds})`);
      }
    }
    const pipeline = (results.pipeline ?? []).find((x) => x.node === k);
    add(L, `NQqueue's own pipeline (black, header, attach; 10 KB, one recipient, in one process): at least ${PIPELINE_TARGET.toLocaleString('en')} messages per second per core`, pipeline?.met, pipeline ? pipelineFigure(pipeline, fmt) : 'not measured');
    const kill = results.kill.find((x) => x.node === k);
    {
      const name = `kill -9 of the daemon during a burst of ${COUNTS.killBurst}: none lost, none duplicated`;
      if (!kill) add(L, name, undefined, daemonAvailable ? 'not measured' : 'not measured: bin/nqqueue-qq is not built');
      else {
        const ok = kill.lost === 0 && kill.duplicated === 0 && kill.deferredButDelivered === 0 && kill.otherExit === 0;
        add(
          L,
          name,
          ok,
          `lost ${kill.lost}, duplicated ${kill.duplicated}, deferred but delivered ${kill.deferredButDelivered}, other exits ${kill.otherExit}; accepted ${kill.accepted} (daemon ${kill.viaDaemon}, fallback ${kill.viaFallback}), deferred ${kill.deferred}`,
        );
      }
    }
  }
  return out;
}
results.targets = judge();

const RCPT_LABEL = { 1: '1', 10: '10', '10same': '10, same settings', '10diff': '10, different users' };
function cell(r) {
  if (!r) return '—';
  if (r.n === 0) return `failed (${r.fails})`;
  return `${fmt(r.median)} / ${fmt(r.p90)}${r.fails ? ` (${r.fails} failed)` : ''}`;
}
function memCell(r) {
  if (!r) return '—';
  const p = r.rss.processKB ? `${(r.rss.processKB / 1024).toFixed(0)}` : '?';
  if (r.mode === 'daemon') return `${p} + ${r.rss.daemonHwmKB ? (r.rss.daemonHwmKB / 1024).toFixed(0) : '?'}`;
  return p;
}
function tables() {
  const L = [];
  const cols = nodes.flatMap((n) => [`${n.label} standalone`, ...(daemonAvailable ? [`${n.label} daemon`] : [])]);
  const modes = daemonAvailable ? ['standalone', 'daemon'] : ['standalone'];
  const scenarioRows = [];
  scenarioRows.push(['qmail-queue stand-in alone (floor)', 'floor', '1']);
  const scenarioLabel = { none: 'no plugins', 'none-early': 'no plugins, `NQQUEUE_QQ_EARLY=yes`' };
  for (const s of ['none', 'none-early', 'clamav', 'clamav+spamassassin', 'rspamd']) {
    for (const rc of ['1', '10', '10same', '10diff']) if (results.rows.some((r) => r.scenario === s && r.rcpts === rc)) scenarioRows.push([scenarioLabel[s] ?? s, s, rc]);
  }
  L.push('Per message, 10 KB, distinct messages: **median / p90 ms** from spawn to exit status as qmail-smtpd sees it.');
  L.push('');
  L.push(`| plugins | recipients | ${cols.join(' | ')} |`);
  L.push(`|---|---|${cols.map(() => '---:').join('|')}|`);
  for (const [label, s, rc] of scenarioRows) {
    const cells = nodes.flatMap((n) => modes.map((m) => cell(rowOf(n.key, s === 'floor' ? 'floor' : m, s, rc))));
    L.push(`| ${label} | ${RCPT_LABEL[rc]} | ${cells.join(' | ')} |`);
  }
  const nOf = (s) => results.rows.find((r) => r.scenario === s && r.n > 0)?.n;
  L.push('');
  L.push(
    `Messages timed per cell: ${nOf('none') ?? COUNTS.fast} (spamassassin rows ${nOf('clamav+spamassassin') ?? COUNTS.spam}), after ${COUNTS.warm} untimed warm-up messages. ` +
      'Daemon cells: `bin/nqqueue-qq` talking to a freshly started `nqqueue serve`.',
  );
  L.push('');
  L.push(`Peak RSS, MB (standalone: \`bin/nqqueue\`; daemon: \`nqqueue-qq\` + the daemon's VmHWM over the row):`);
  L.push('');
  L.push(`| plugins | recipients | ${cols.join(' | ')} |`);
  L.push(`|---|---|${cols.map(() => '---:').join('|')}|`);
  for (const [label, s, rc] of scenarioRows) {
    const cells = nodes.flatMap((n) => modes.map((m) => memCell(rowOf(n.key, s === 'floor' ? 'floor' : m, s, rc))));
    L.push(`| ${label} | ${RCPT_LABEL[rc]} | ${cells.join(' | ')} |`);
  }
  if (Object.keys(results.startup).length) {
    L.push('');
    L.push('Where the standalone time goes (no plugins, 1 recipient, medians in ms):');
    L.push('');
    L.push('| | node starts (to a script\'s first line) | loading queue mode\'s modules | NQqueue\'s own work (its log\'s ms=) | the rest (launcher, spawn, exit) | total |');
    L.push('|---|---:|---:|---:|---:|---:|');
    for (const n of nodes) {
      const st = results.startup[n.key];
      const row = rowOf(n.key, 'standalone', 'none', '1');
      if (!st || !row || !row.n) continue;
      const rest = row.median - st.bootMs - st.loadMs - (row.ownMedian ?? 0);
      L.push(`| ${n.label} | ${fmt(st.bootMs)} | ${fmt(st.loadMs)} | ${fmt(row.ownMedian)} | ${fmt(rest)} | ${fmt(row.median)} |`);
    }
  }
  L.push('');
  L.push("The backends alone (the project's own clients, fresh messages):");
  L.push('');
  L.push('| backend | what | median ms | p90 ms |');
  L.push('|---|---|---:|---:|');
  for (const k of ['clamd', 'spamd', 'spamd10', 'rspamd', 'rspamd10']) {
    const b = results.backends[k];
    if (b) L.push(`| ${k.replace(/10$/, '')} | ${b.what}${b.scansPerSecond ? ` → **${b.scansPerSecond} scans/s**` : ''} | ${fmt(b.median, 2)} | ${fmt(b.p90, 2)} |`);
  }
  if (results.throughput.length) {
    /** A table of the three throughput modes, one column a node; `cell(row)` undefined: a dash. */
    const modes = (title, floorLabel, cell) => {
      L.push('', title, '', `| | ${nodes.map((n) => n.label).join(' | ')} |`, `|---|${nodes.map(() => '---:').join('|')}|`);
      for (const m of ['floor', 'standalone', 'daemon']) {
        const cells = nodes.map((n) => {
          const t = results.throughput.find((x) => x.node === n.key && x.mode === m);
          return (t && cell(t)) ?? '—';
        });
        if (cells.some((c) => c !== '—')) L.push(`| ${m === 'floor' ? floorLabel : m} | ${cells.join(' | ')} |`);
      }
    };
    modes(
      `Throughput, ${INFLIGHT} messages in flight for ${COUNTS.throughputS} s, no plugins, 1 recipient (messages/s; median latency):`,
      'stand-in alone (the harness\'s ceiling with the stand-in)',
      (t) => `${fmt(t.perSecond)} msg/s (${fmt(t.latencyMedian)} ms)${t.fails ? `, ${t.fails} failed` : ''}`,
    );
    modes(
      'CPU per message in those runs (ms, user + system; /proc/PID/stat of the bench/smtpd processes, whose waited-for children are the program and the qmail-queue it runs, and of the daemon): what the 2 cores are shared out by, with 8 in flight:',
      'stand-in alone',
      (t) => {
        if (t.cpuPrograms === undefined) return undefined;
        if (t.mode !== 'daemon') return `**${fmt(t.cpuPrograms, 2)}**`;
        return `${fmt(t.cpuPrograms, 2)} (nqqueue-qq + the stand-in) + ${fmt(t.cpuDaemon, 2)} (nqqueue serve) = **${fmt(t.cpuPrograms + t.cpuDaemon, 2)}**`;
      },
    );
  }
  if (results.big.length) {
    const mb = (kb) => (kb ? (kb / 1024).toFixed(1) : '—');
    L.push('');
    L.push(`${COUNTS.bigMB} MB message to 20 recipients, two different copies (an \`exec\` plugin tags 10 of them), peak RSS in MB:`);
    L.push('');
    L.push('| | wall ms | nqqueue | nqqueue-qq | nqqueue serve | stand-in |');
    L.push('|---|---:|---:|---:|---:|---:|');
    for (const b of results.big) {
      const n = results.nodes[b.node].label;
      L.push(`| ${n} standalone | ${fmt(b.standalone?.ms, 0)} | ${mb(b.standalone?.rssKB)} | | | ${mb(b.standalone?.standInKB)} |`);
      if (b.daemon) {
        const memfd = b.daemon.qqMemfdKB ? ` (+ ${mb(b.daemon.qqMemfdKB)} in memfds)` : '';
        L.push(`| ${n} daemon | ${fmt(b.daemon.ms, 0)} | | ${mb(b.daemon.qqRssKB)}${memfd} | ${mb(b.daemon.daemonHwmKB)} (${mb(b.daemon.startRssKB)} at start) | ${mb(b.daemon.standInKB)} |`);
      }
    }
  }
  if (results.kill.length) {
    L.push('');
    L.push(`\`kill -9\` of the daemon during a burst (${INFLIGHT} in flight, 1 recipient each):`);
    L.push('');
    L.push('| | messages | killed after | accepted (daemon / fallback) | deferred 71 | lost | duplicated | deferred but delivered | other exits |');
    L.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const k of results.kill) {
      L.push(`| ${results.nodes[k.node].label} | ${k.messages} | ${k.killedAfter} | ${k.accepted} (${k.viaDaemon} / ${k.viaFallback}) | ${k.deferred} | ${k.lost} | ${k.duplicated} | ${k.deferredButDelivered} | ${k.otherExit} |`);
    }
  }
  if (Object.keys(results.metrics ?? {}).length) {
    L.push('');
    L.push('Metrics in daemon mode, per message (mean of 20,000 in the daemon\'s own process; `bench/metrics-cost.mjs`), in µs:');
    L.push('');
    L.push('| | counting + journal record | registry alone (metrics_journal = no) | rolling the record up later | total | a /metrics scrape |');
    L.push('|---|---:|---:|---:|---:|---:|');
    for (const n of nodes) {
      const m = results.metrics[n.key];
      if (m) L.push(`| ${n.label} | ${fmt(m.messageMs * 1000, 1)} | ${fmt(m.registryOnlyMs * 1000, 1)} | ${fmt(m.rollupMs * 1000, 1)} | **${fmt(m.perMessageMs * 1000, 1)}** | ${fmt(m.scrapeMs, 1)} ms |`);
    }
  }
  L.push(...listsTable(results.lists ?? [], (k) => results.nodes[k].label, (x) => (x === undefined ? '—' : fmt(x))));
  L.push(...storeTable(results.store ?? [], (k) => results.nodes[k].label, (x) => (x === undefined ? '—' : fmt(x))));
  L.push(...memoryTable(results.memory ?? [], (k) => results.nodes[k].label, (x) => (x === undefined ? '—' : fmt(x))));
  L.push(...qqTable(results.qq ?? [], (k) => results.nodes[k].label, fmt));
  L.push(...startTable(results.start ?? [], (k) => results.nodes[k].label, (x) => (x === undefined ? '—' : fmt(x))));
  L.push(...fildesTable(results.fildes ?? [], (k) => results.nodes[k].label, (x, d) => (x === undefined || Number.isNaN(x) ? '—' : fmt(x, d))));
  L.push(...pipelineTable(results.pipeline ?? [], (k) => results.nodes[k].label, fmt));
  L.push(...breakdownTable(results.breakdown ?? [], (k) => results.nodes[k].label, fmt));
  L.push(...summaryLines());
  return L.join('\n');
}

/** What the README keeps of a run: the reading of its figures, the targets and the run's line. */
function summaryLines() {
  const L = [];
  const read = reading();
  if (read) {
    L.push('');
    L.push('Reading:');
    L.push('');
    L.push(read);
  }
  if (results.targets.length) {
    L.push('');
    L.push('Targets:');
    L.push('');
    L.push('| | target | met | figure |');
    L.push('|---|---|---|---|');
    for (const t of results.targets) L.push(`| ${t.node} | ${t.target} | ${t.met === undefined ? '?' : t.met ? 'yes' : '**no**'} | ${t.figure.replace(/\|/g, '\\|')} |`);
  }
  if (results.notes.length) {
    L.push('');
    L.push('Notes from this run:');
    L.push('');
    for (const n of results.notes) L.push(`- ${n}`);
  }
  L.push('');
  const m = results.machine;
  L.push(
    `Run ${results.started.slice(0, 16).replace('T', ' ')} UTC, ${results.seconds} s: ${m.cpus} × ${m.cpu}, ${m.memoryGB} GB; load average ${m.loadavgAtStart.join(' ')} at start, ` +
      nodes.map((n) => (results.nodes[n.key]?.loadavgAtStart ? `${results.nodes[n.key].loadavgAtStart.join(' ')} when the ${n.label} rows began, ` : '')).join('') +
      `${m.loadavgAtEnd.join(' ')} at end; ` +
      (m.stealPercent !== undefined ? `CPU steal ${m.stealPercent}% of the run (/proc/stat: time the host gave these CPUs to others); ` : '') +
      `${nodes.map((n) => `${n.label} = ${n.version}`).join(', ')}; ${Object.values(results.backends.versions).filter(Boolean).join(', ')}.`,
  );
  return L;
}

/** A few sentences that read the figures of this run (written with the tables, so they never go stale). */
function reading() {
  const out = [];
  const ms = (x) => `${fmt(x)} ms`;
  const per = (f) => nodes.map((n) => f(n)).filter(Boolean).join('; ');
  const floor = (n) => rowOf(n.key, 'floor', 'floor', '1');
  const ok = (r) => r && r.n > 0;
  const s1 = per((n) => {
    const f = floor(n);
    const sa = rowOf(n.key, 'standalone', 'none', '1');
    const st = results.startup[n.key];
    if (!ok(f) || !ok(sa)) return undefined;
    const start = st ? `, ${ms(st.bootMs + st.loadMs)} of it node's start and loading NQqueue's modules, ${ms(sa.ownMedian)} NQqueue's own work` : '';
    const over = sa.refs ? sa.overRefsMedian : sa.median - f.median;
    const fl = sa.refs ? sa.refs['stand-in'].median : f.median;
    return `${n.label}: ${ms(sa.median)}, ${signed(over)} ms over the stand-in (${ms(fl)})${start}`;
  });
  if (s1) out.push(`- **Standalone** (\`bin/nqqueue\`, no plugins): ${s1}. A JavaScript runtime per message is the cost; daemon mode exists to avoid it.`);
  const s2 = per((n) => {
    const d = rowOf(n.key, 'daemon', 'none', '1');
    const c = rowOf(n.key, 'daemon', 'clamav', '1');
    if (!ok(d) || !d.refs) return undefined;
    const e = rowOf(n.key, 'daemon', 'none-early', '1');
    const clam = ok(c) && c.refs ? `; with clamav ${ms(c.median)}: ${signed(c.overRefsMedian)} ms over the stand-in plus clamd's own scan (${ms(c.refs.clamd.median)})` : '';
    const early = ok(e) && e.refs ? `; with \`NQQUEUE_QQ_EARLY=yes\` ${ms(e.median)}: ${signed(e.overRefsMedian)} ms over the stand-in (${ms(e.refs['stand-in'].median)})` : '';
    return `${n.label}: ${ms(d.median)}, ${signed(d.overRefsMedian)} ms over the stand-in run beside it (${ms(d.refs['stand-in'].median)})${early}${clam}`;
  });
  if (s2) out.push(`- **Daemon mode** (\`nqqueue-qq\` + \`nqqueue serve\`, no plugins): ${s2}.`);
  const s3 = per((n) => {
    const mode = rowOf(n.key, 'daemon', 'clamav+spamassassin', '10same') ? 'daemon' : 'standalone';
    const same = rowOf(n.key, mode, 'clamav+spamassassin', '10same');
    const diff = rowOf(n.key, mode, 'clamav+spamassassin', '10diff');
    if (!ok(same) || !same.refs) return undefined;
    const one = same.refs['1 recipient'];
    const sp = diff?.refs?.['spamd 10 at once'];
    const d = ok(diff) && sp ? `; to 10 different spamd users ${ms(diff.median)} against ${ms(sp.median)} for spamd alone with the same 10 requests at once (${fmt(diff.median / sp.median, 2)}×)` : '';
    return `${n.label} ${mode}: 10 recipients sharing one scan ${ms(same.median)} against ${ms(one.median)} for one (${fmt(same.median / one.median, 2)}×)${d}`;
  });
  if (s3) out.push(`- **Per-recipient spam scanning**: ${s3}.`);
  const s4 = per((n) => {
    const b = results.big.find((x) => x.node === n.key);
    if (!b) return undefined;
    const mb = (kb) => (kb ? `${(kb / 1024).toFixed(0)} MB` : '?');
    return `${n.label}: nqqueue ${mb(b.standalone?.rssKB)}${b.daemon ? `, nqqueue-qq ${mb(b.daemon.qqRssKB)}, the daemon ${mb(b.daemon.daemonHwmKB)}` : ''}`;
  });
  if (s4) out.push(`- **${COUNTS.bigMB} MB to 20 recipients**, peak RSS: ${s4}.`);
  const s5 = per((n) => {
    const sa = results.throughput.find((t) => t.node === n.key && t.mode === 'standalone');
    const d = results.throughput.find((t) => t.node === n.key && t.mode === 'daemon');
    if (!sa) return undefined;
    return `${n.label}: standalone ${fmt(sa.perSecond)}/s${d ? `, daemon ${fmt(d.perSecond)}/s` : ''}`;
  });
  if (s5) out.push(`- **Throughput** with ${INFLIGHT} in flight on ${results.machine.cpus} cores: ${s5}.`);
  const s6 = per((k) => {
    const x = results.kill.find((y) => y.node === k.key);
    return x ? `${k.label}: ${x.accepted} accepted (${x.viaFallback} through the fallback), ${x.deferred} deferred, ${x.lost} lost, ${x.duplicated} duplicated` : undefined;
  });
  if (s6) out.push(`- **kill -9 of the daemon** mid-burst: ${s6}.`);
  return out.join('\n');
}

/** Replace what is between the markers `<!-- NAME:begin ... -->` and `<!-- NAME:end -->` of a file. */
function replaceBlock(file, name, body) {
  const text = readFileSync(file, 'utf8');
  const begin = `<!-- ${name}:begin (written by npm run bench) -->`;
  const end = `<!-- ${name}:end -->`;
  const b = text.indexOf(begin);
  const e = text.indexOf(end);
  if (b < 0 || e < b) throw new Error(`${file} has no ${begin} ... ${end} block`);
  writeFileSync(file, `${text.slice(0, b)}${begin}\n${body}\n${text.slice(e)}`);
}

const table = tables();
process.stdout.write(`${table}\n`);
const outDir = join(root, 'bench-results');
mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, 'latest.md'), `# npm run bench — latest figures\n\n${table}\n`);
writeFileSync(join(outDir, 'latest.json'), `${JSON.stringify(results, null, 2)}\n`);
progress(`wrote ${join('bench-results', 'latest.md')} and latest.json`);

if (UPDATE_README && !(QUICK || results.counts?.fast < 40) && (ONLY_NODE === undefined || RENDER)) {
  // bench/README.md's Figures get every table; README.md's Speed keeps the summary (reading, targets).
  replaceBlock(join(root, 'bench', 'README.md'), 'bench', table);
  replaceBlock(join(root, 'README.md'), 'bench-summary', summaryLines().join('\n').trim());
  progress('bench/README.md figures and the README.md summary updated');
}
rmSync(work, { recursive: true, force: true });
process.exit(0);
