// NQqueue's own pipeline in one process, without processes or qmail-queue: what a message costs from the
// bytes read to the delivery plan acted on, on one event loop. Run by scripts/bench-pipeline.js with each
// node:
//   node --max-semi-space-size=1 bench/pipeline-cost.mjs DIST_ROOT [N] [PROFILE_OUT]   → one line of JSON
// (the young generation bin/nqqueue gives node)
//
// Each message goes through the front door both modes share (what src/daemon/server.ts serveOne and
// src/cli/queue-mode.ts do once the bytes are in): MessageCollector, EnvelopeParser + toEnvelope,
// clientFrom/heloFrom, processJob — routing, the general and per-user chains, the decision, the commit
// point, deliverGroups — with an in-memory QueueSink in place of qmail-queue (JobInput.sink, the seam the
// daemon uses for its client), then the log line. Only the socket or pipe reads and the metrics record
// (its own row) are left out.
//
// Two installations side by side, in alternating rounds: `plugins` (a general.cfb with black, header and
// attach, and a per-user black line) and `none` (empty routing), so the plugins' share is a difference
// measured in the same run. Each message is 10 KB and different (multipart: a text part and a small
// base64 attachment), one recipient: N messages are made once, and before each pass every one of them
// gets a new number in its Subject and Message-ID and new bytes in its attachment, written in place
// (making messages in the timed loop, or between rounds, would leave its garbage to the pipeline's
// collections). Rounds run sequentially and with 4 in flight. CPU time is
// process.cpuUsage() (user + system) over the round. Then one more sequential pass of the `plugins`
// installation under V8's CPU profiler (node:inspector, the profiler `node --cpu-prof` uses, started
// and stopped around the loop only): the top self-time functions.

import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';

const [dist, nArg, profileOut] = process.argv.slice(2);
const N = Number(nArg ?? 1000);
const load = (p) => import(pathToFileURL(join(dist, p)).href);
const [{ MessageCollector }, { EnvelopeParser, encodeEnvelope, toEnvelope }, { makeLogger }, { processJob }, { clientFrom, heloFrom, makeServices, pathsFrom, readSettings }] = await Promise.all([
  load('intake/message.js'),
  load('qmail/envelope.js'),
  load('log.js'),
  load('queue/process.js'),
  load('queue/services.js'),
]);

const SENDER = 'sender@client.example';
const RCPT = 'd01@example.com';
const ENV = Object.freeze({ TCPREMOTEIP: '192.0.2.7', TCPREMOTEHOST: 'client.example', TCPLOCALIP: '198.51.100.1', PROTO: 'TCP' });
const ROUNDS = 5;
const INFLIGHT = 4;

// A site's routing as simscan sites write it: senders refused, header rules, dangerous attachments for
// mail from outside; the site's own trusted senders get the attachment rule only; a per-user line.
const ROUTING = {
  'general.cfb':
    '# mail from outside\n' +
    ':black=@spam.example,bulk@marketing.example,<>;header=Subject:/lottery|you have won|viagra/i,From:/casino/i;header=X-Mailer:/BulkBlaster/;attach=.exe:.vbs:.scr:.pif:.bat:.com:.cmd:.js:.jar\n' +
    '# our own, authenticated\n' +
    'example.com:attach=.exe:.vbs:.scr\n',
  'nqqueue.cfb': 'example.com:black=@ex-partner.example,former@partner.example\n',
};

const WORDS = 'the of and to in is that for it as was with be by on not this are or from at which but have an they you were their has would when if so no more out up into do any your what some time can only other new could about than over these may like first then now after also made many before must through back years where much should well people down own just because good each those feel seem how high too place little world very still nation hand invoice report schedule budget quarter meeting'.split(' ');
const word = () => WORDS[Math.floor(Math.random() * WORDS.length)];
let seq = 0;
const tag = Date.now().toString(36);

const B64 = Buffer.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/');
const NUMBER = 10;
const SPAN = 24;

/** Make the message new: the next number in its Subject and Message-ID, new bytes in its attachment. */
function restamp(m) {
  let n = ++seq;
  for (let i = NUMBER - 1; i >= 0; i--, n = Math.floor(n / 10)) m.buf[m.subject + i] = m.buf[m.msgid + i] = 0x30 + (n % 10);
  for (let i = 0; i < SPAN; i++) m.buf[m.span + i] = B64[Math.floor(Math.random() * 64)];
  return m.buf;
}

/** A 10 KB message: a text part and a small base64 attachment; restamp() makes it new. */
function message() {
  const n = '#'.repeat(NUMBER);
  const date = new Date().toUTCString().replace('GMT', '-0000');
  const head =
    'Received: from client.example (HELO helo.client.example) (192.0.2.7)\n' +
    `  by mx.example.com with SMTP; ${date}\n` +
    'From: =?UTF-8?Q?J=C3=BCrgen_Sender?= <sender@client.example>\n' +
    `To: ${RCPT}\n` +
    `Subject: ${word()} ${word()} ${word()} ${n}\n` +
    `Message-ID: <bench-${tag}-pipeline-${n}@client.example>\n` +
    `Date: ${date}\n` +
    'MIME-Version: 1.0\n' +
    'Content-Type: multipart/mixed; boundary="bench-boundary"\n\n' +
    '--bench-boundary\nContent-Type: text/plain; charset=us-ascii\n\n';
  const attach = `\n--bench-boundary\nContent-Type: application/pdf; name="report.pdf"\nContent-Disposition: attachment; filename="report.pdf"\nContent-Transfer-Encoding: base64\n\n`;
  const b64 = randomBytes(1500).toString('base64').replace(/.{76}/g, '$&\n');
  const at = (text, what) => text.indexOf(what);
  const tail = `${b64}\n--bench-boundary--\n`;
  const lines = [];
  let len = head.length + attach.length + tail.length;
  while (len < 10 * 1024) {
    let line = '';
    while (line.length < 64) line += `${word()} `;
    line += Math.floor(Math.random() * 1e6);
    lines.push(line);
    len += line.length + 1;
  }
  const text = `${head}${lines.join('\n')}${attach}${tail}`;
  const subject = at(text, `${n}\nMessage-ID`);
  const m = { buf: Buffer.from(text, 'latin1'), subject, msgid: at(text, `${n}@client.example`), span: text.length - tail.length + 80 };
  restamp(m);
  return m;
}

/** qmail-queue's place: every copy read to its end, as qmail-queue reads its fd 0; kept as counts. */
class MemorySink {
  name = 'memory sink';
  copies = 0;
  bytes = 0;
  async deliver(view, envelope) {
    for await (const chunk of view.chunks()) this.bytes += chunk.length;
    if (envelope.length === 0) throw new Error('empty envelope');
    this.copies++;
    return { ok: true };
  }
}

const work = mkdtempSync(join(tmpdir(), 'nqq-bench-pipeline-'));
function install(name, files) {
  const control = join(work, name, 'control');
  const home = join(work, name, 'home');
  mkdirSync(control, { recursive: true });
  mkdirSync(home, { recursive: true, mode: 0o700 });
  writeFileSync(join(control, 'rcpthosts'), 'example.com\n');
  writeFileSync(join(control, 'me'), 'mx.example.com\n');
  for (const [f, text] of Object.entries(files)) writeFileSync(join(control, f), text);
  const paths = pathsFrom({ NQQUEUE_CONTROLDIR: control, NQQUEUE_HOME: home, NQQUEUE_QMAILQUEUE: '/nonexistent/qmail-queue' });
  const sink = new MemorySink();
  const services = makeServices(paths, readSettings(paths), undefined, sink);
  return { name, services, sink, logged: 0 };
}

const envelopeBytes = encodeEnvelope(Buffer.from(SENDER), [Buffer.from(RCPT)]);
const CHUNK = 64 * 1024;

/** One message through the front door, as the daemon's serveOne does once the bytes are read. */
async function one(inst, buf) {
  const { services, sink } = inst;
  const started = performance.now();
  let line = '';
  const logger = makeLogger(0, 'nqqueue:', (t) => (line = t));
  const collector = new MessageCollector(services.settings.spillBytes, () => services.workDir());
  try {
    for (let off = 0; off < buf.length; off += CHUNK) collector.write(buf.subarray(off, off + CHUNK));
    const message = collector.finish();
    const parser = new EnvelopeParser(services.settings.maxRecipients);
    parser.push(envelopeBytes);
    const envelope = toEnvelope(parser.end(), ENV.RELAYCLIENT);
    const client = clientFrom(ENV, heloFrom(await message.head(4096)));
    const result = await processJob({ message, envelope, client, services, logger, started, sink });
    logger.line({ ...result.fields, exit: result.exit, qp: process.pid, via: 'daemon' }, services.settings.logFormat);
    inst.logged += line.length;
    if (result.exit !== 0 || result.fields.groups !== '1:queued') throw new Error(`${inst.name}: not accepted once: ${line}`);
    return result;
  } finally {
    collector.discard();
  }
}

async function pass(inst, bufs, inflight) {
  let next = 0;
  const worker = async () => {
    while (next < bufs.length) await one(inst, bufs[next++]);
  };
  const copies = inst.sink.copies;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: inflight }, worker));
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  if (inst.sink.copies !== copies + bufs.length) throw new Error(`${inst.name}: ${inst.sink.copies - copies} copies queued for ${bufs.length} messages`);
  return { n: bufs.length, wallMs, cpuUs: cpu.user + cpu.system };
}

const installs = { plugins: install('plugins', ROUTING), none: install('none', {}) };
// The plugins did run: the first message's log line names each of them.
{
  const r = await one(installs.plugins, message().buf);
  const general = String(r.fields.general);
  for (const p of ['black', 'header', 'attach']) if (!general.includes(`${p}:accept`)) throw new Error(`${p} did not run: ${general}`);
  if (!String(r.fields['per-user']).includes('black:accept')) throw new Error(`the per-user line did not run: ${r.fields['per-user']}`);
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
const out = { n: N, rounds: ROUNDS, inflight: INFLIGHT, routing: ROUTING };
const pool = Array.from({ length: N }, message);
const fresh = (n = N) => pool.slice(0, n).map(restamp);
for (const inst of Object.values(installs)) await pass(inst, fresh(Math.min(N, 500)), 1);
const rounds = { plugins: { 1: [], [INFLIGHT]: [] }, none: { 1: [], [INFLIGHT]: [] } };
for (let r = 0; r < ROUNDS; r++) {
  for (const inflight of [1, INFLIGHT]) {
    for (const name of r % 2 ? ['none', 'plugins'] : ['plugins', 'none']) {
      const bufs = fresh();
      rounds[name][inflight].push(await pass(installs[name], bufs, inflight));
    }
  }
}
for (const name of Object.keys(rounds)) {
  out[name] = {};
  for (const [inflight, list] of Object.entries(rounds[name])) {
    out[name][inflight] = {
      msgPerS: median(list.map((x) => (x.n / x.wallMs) * 1000)),
      cpuUsPerMsg: median(list.map((x) => x.cpuUs / x.n)),
      cpuUsPerMsgBest: Math.min(...list.map((x) => x.cpuUs / x.n)),
      cpuShare: median(list.map((x) => x.cpuUs / 1000 / x.wallMs)),
    };
  }
}

// The profile: one sequential pass of the plugins installation, sampled every 100 µs.
{
  const bufs = fresh();
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 100 });
  await session.post('Profiler.start');
  await pass(installs.plugins, bufs, 1);
  const { profile } = await session.post('Profiler.stop');
  session.disconnect();
  if (profileOut) writeFileSync(profileOut, JSON.stringify(profile));
  const self = new Map();
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = profile.timeDeltas[i + 1] ?? 0;
    const f = byId.get(profile.samples[i]).callFrame;
    const key = f.url ? `${f.functionName || '(anonymous)'} ${basename(f.url)}:${f.lineNumber + 1}` : f.functionName || '(native code)';
    self.set(key, (self.get(key) ?? 0) + dt);
    total += dt;
  }
  out.profile = {
    totalMs: total / 1000,
    top: [...self.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 10)
      .map(([fn, us]) => ({ fn, ms: Math.round(us) / 1000, share: Math.round((us / total) * 1000) / 10 })),
  };
}

rmSync(work, { recursive: true, force: true });
process.stdout.write(`${JSON.stringify(out)}\n`);
