#!/usr/bin/env node
// Peak RSS of every NQqueue process for a 50 MB message to 20 recipients whose chains each make a
// different header edit: an `exec` plugin adds a field per recipient, then the `dspam` plugin (a
// shell stand-in: dspam is not packaged here) removes the forged X-DSPAM-* fields the message came
// with from each of those header blocks and adds its own. qmail-queue is bench/qmail-queue-floor.c,
// and every process runs under bench/peakrss.c, as in `npm run bench`; the daemon's figure is its
// VmHWM. Run after `npm run build` and `npx tsc -p test/tsconfig.json`:
//   node bench/header-edits-rss.mjs [MB]

import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const { runSmtpd, envelopeOf } = await import(join(root, 'dist-test', 'test', 'helpers', 'smtpd.js'));

const MB = Number(process.argv[2] ?? 50);
const work = mkdtempSync(join(tmpdir(), 'nqq-edits-rss-'));
const cc = (src, out, defs = []) => {
  const r = spawnSync('cc', ['-O2', ...defs, '-o', out, join(root, 'bench', src)], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`cc ${src} failed`);
  return out;
};
const floorDir = join(work, 'floor');
mkdirSync(floorDir);
const peakrss = cc('peakrss.c', join(work, 'peakrss'));
const floor = cc('qmail-queue-floor.c', join(work, 'qmail-queue'), [`-DFLOOR_DIR="${floorDir}"`, '-DFLOOR_RSS']);

const control = join(work, 'control');
const home = join(work, 'home');
mkdirSync(control);
const script = (name, text) => {
  const p = join(work, name);
  writeFileSync(p, text);
  chmodSync(p, 0o755);
  return p;
};
const tag = script('tag.sh', '#!/bin/sh\ncat >/dev/null\nprintf "X-Tag: for %s\\n" "$NQQ_RECIPIENT"\n');
const dspam = script('dspam', '#!/bin/sh\nprintf "X-DSPAM-Result: Innocent\\nX-DSPAM-Signature: sig-%s\\n\\n" "$4"\ncat >/dev/null\n');
writeFileSync(join(control, 'rcpthosts'), 'example.com\n');
writeFileSync(join(control, 'me'), 'mx.example.com\n');
writeFileSync(join(control, 'nqqueue.cfb'), `:exec=${tag};dspam=bin=${dspam}\n`);
writeFileSync(join(control, 'nqqueue.conf'), 'deadline = 280s\nqueue_timeout = 200s\n');
const paths = { NQQUEUE_CONTROLDIR: control, NQQUEUE_HOME: home, NQQUEUE_QMAILQUEUE: floor };

const head =
  'Received: from client.example (HELO helo.client.example) (192.0.2.7)\n  by mx.example.com with SMTP; 26 Nov 2026 10:00:00 -0000\n' +
  'From: <sender@client.example>\nTo: many@example.com\nX-DSPAM-Result: Whitelisted\nSubject: the big one\nX-DSPAM-Signature: forged\n' +
  'MIME-Version: 1.0\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n';
const lines = Math.floor((MB * 1_000_000 - head.length) / 77);
const b64 = randomBytes(lines * 57).toString('base64');
const body = Buffer.alloc(lines * 77);
for (let i = 0; i < lines; i++) {
  body.write(b64.slice(i * 76, i * 76 + 76), i * 77, 'latin1');
  body[i * 77 + 76] = 0x0a;
}
const message = Buffer.concat([Buffer.from(head, 'latin1'), body]);
const rcpts = Array.from({ length: 20 }, (_, i) => `user${i}@example.com`);
const env = { ...paths, TCPREMOTEIP: '192.0.2.7', PROTO: 'TCP' };

const kb = (f) => (existsSync(f) ? Number(readFileSync(f, 'utf8')) : NaN);
const mb = (k) => `${(k / 1024).toFixed(1)} MB`;
const copies = () => readdirSync(floorDir).filter((n) => /^\d+\.\d+$/.test(n)).length;
const floorPeak = () => {
  const log = join(floorDir, 'rss.log');
  const v = existsSync(log) ? Math.max(...readFileSync(log, 'utf8').trim().split('\n').map((l) => Number(l.split(' ')[1]))) : NaN;
  for (const n of readdirSync(floorDir)) rmSync(join(floorDir, n));
  return v;
};

const out = join(work, 'rss');
let r = await runSmtpd({ bin: peakrss, args: [out, join(root, 'bin', 'nqqueue')], message, envelope: envelopeOf('sender@client.example', rcpts), env, timeoutMs: 280_000 });
console.log(`standalone bin/nqqueue: exit ${r.code}, ${Math.round(r.ms)} ms, ${copies()} copies, peak RSS ${mb(kb(out))} (qmail-queue stand-in ${mb(floorPeak())})`);

const log = openSync(join(work, 'serve.log'), 'a');
const serve = spawn(join(root, 'bin', 'nqqueue'), ['serve'], { env: paths, stdio: ['ignore', 'ignore', log] });
closeSync(log);
for (let i = 0; i < 1000 && !existsSync(join(home, 'nqqueue.sock')); i++) await new Promise((res) => setTimeout(res, 10));
const hwm = () => Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${serve.pid}/status`, 'utf8'))[1]);
const atStart = hwm();
rmSync(out, { force: true });
r = await runSmtpd({ bin: peakrss, args: [out, join(root, 'bin', 'nqqueue-qq')], message, envelope: envelopeOf('sender@client.example', rcpts), env, timeoutMs: 280_000 });
console.log(
  `daemon: exit ${r.code} (${/via=daemon/.test(r.stderr) ? 'via the daemon' : 'NOT via the daemon'}), ${Math.round(r.ms)} ms, ${copies()} copies; ` +
    `bin/nqqueue-qq peak RSS ${mb(kb(out))} (with its qmail-queue stand-in; the stand-in alone ${mb(floorPeak())}), nqqueue serve VmHWM ${mb(hwm())} (${mb(atStart)} at start)`,
);
serve.kill('SIGTERM');
await new Promise((res) => serve.once('exit', res));
rmSync(work, { recursive: true, force: true });
