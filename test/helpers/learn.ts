// Shared pieces of the learning tests: messages that look like spam and like ham to a Bayes filter
// (distinct each time, and over rspamd's 11-token minimum), what each learner's own database says it
// learned for a user (sa-learn --dump magic, Redis), and a settings file naming all three learners.

import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { lstatSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { findProgram } from './daemons.js';

let seq = 0;

const SPAMMY2 = 'crypto airdrop claim wallet token presale exclusive membership unlock rewards limited spots hurry click verify account bonus credits free spins unsubscribe';
const HAMMY2 = 'kernel patch compile regression bisect commit branch merge review pipeline testsuite benchmark profiler allocator scheduler filesystem driver firmware release notes';
const SPAMMY = 'viagra cialis cheap pills casino jackpot winner lottery prize offer discount pharmacy replica watches loans mortgage refinance bitcoin investment guaranteed';
const HAMMY = 'meeting agenda minutes quarterly report budget review project schedule milestone deliverable colleague conference agenda lunch thursday office deadline';

/** A message with a unique Message-ID, subject and a few unique words, in the spam or ham style. */
export function learnMessage(kind: 'spam' | 'ham', extraBody = '', vocabulary: 1 | 2 = 1): Buffer {
  seq++;
  const tag = `${Date.now().toString(36)}${seq}${randomBytes(3).toString('hex')}`;
  const words = (kind === 'spam' ? (vocabulary === 1 ? SPAMMY : SPAMMY2) : vocabulary === 1 ? HAMMY : HAMMY2).split(' ');
  // Words of its own at the start and all through it: rspamd takes a message that differs from one it
  // learned by little more than its Message-ID for the same one.
  const own = Array.from({ length: 8 }, () => `w${randomBytes(4).toString('hex')}`);
  const body = Array.from({ length: 6 }, (_, i) => `${own[i]} ${words.map((w, j) => words[(j + i) % words.length]).join(' ')} ${own[i + 2]}`).join('\n');
  return Buffer.from(
    [
      `From: ${kind === 'spam' ? 'Offers <offers@bulk.example>' : 'Carol <carol@partner.example>'}`,
      'To: someone@example.com',
      `Subject: ${kind === 'spam' ? 'Best offer' : 'Project meeting'} ${tag}`,
      `Message-ID: <${tag}@${kind}.example>`,
      'Date: Tue, 01 Dec 2026 10:00:00 +0000',
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=us-ascii',
      '',
      body,
      `ref${tag}`,
      extraBody,
      '',
    ].join('\n'),
  );
}

/** spamd's Bayes counts for a user (`sa-learn --dump magic` on its database in the spamd's users dir). */
export function saCounts(spamdDir: string, user: string): { spam: number; ham: number } {
  const r = spawnSync(findProgram('sa-learn') ?? 'sa-learn', ['--dbpath', join(spamdDir, 'users', user), '--dump', 'magic'], { encoding: 'utf8', timeout: 60_000 });
  const num = (what: string) => Number(new RegExp(`^\\S+\\s+\\S+\\s+(\\d+)\\s+\\S+\\s+non-token data: ${what}$`, 'm').exec(r.stdout)?.[1] ?? 0);
  if (r.status !== 0 && !/nspam/.test(r.stdout)) return { spam: 0, ham: 0 };
  return { spam: num('nspam'), ham: num('nham') };
}

/** rspamd's learns for a user, from its Redis (hash RS<user>: learns_spam, learns_ham). */
export function redisCounts(socket: string, user: string): { spam: number; ham: number } {
  const r = spawnSync(findProgram('redis-cli') ?? 'redis-cli', ['-s', socket, 'hmget', `RS${user}`, 'learns_spam', 'learns_ham'], { encoding: 'utf8', timeout: 10_000 });
  const [spam = '', ham = ''] = r.stdout.split('\n');
  return { spam: Number(spam) || 0, ham: Number(ham) || 0 };
}

export interface LearnerAddresses {
  readonly spamd?: string;
  readonly controller?: string;
  readonly password?: string;
  readonly dspam?: string;
}

/** nqqueue.conf naming the learners given. */
export function learnSettings(a: LearnerAddresses, extra = ''): string {
  const learners = [a.spamd && 'spamassassin', a.controller && 'rspamd', a.dspam && 'dspam'].filter(Boolean).join(',');
  let out = `[learn]\nlearners = ${learners}\n`;
  if (a.controller) out += `rspamd_controller = ${a.controller}\n`;
  if (a.password) out += `rspamd_password = ${a.password}\n`;
  out += extra;
  if (a.spamd) out += `[spamassassin]\nhost = ${a.spamd}\n`;
  if (a.dspam) out += `[dspam]\nbin = ${a.dspam}\n`;
  return out;
}

/** A user name no other test uses (each learner's database is per user). */
export function learnUser(what: string): string {
  return `learn-${what}-${randomBytes(4).toString('hex')}@example.com`;
}

/** Every file and directory under `root`: its bytes' hash (files), mode and mtime — to show nothing changed. */
export function snapshot(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (p: string): void => {
    const st = lstatSync(p);
    out[p] = `${st.mode.toString(8)} ${st.mtimeMs}${st.isFile() ? ` ${createHash('sha256').update(readFileSync(p)).digest('hex')}` : ''}`;
    if (st.isDirectory()) for (const n of readdirSync(p).sort()) walk(join(p, n));
  };
  walk(root);
  return out;
}

/** A Maildir++ tree of one user: the inbox and the folders named, each with cur/ new/ tmp/. */
export function makeMaildir(maildir: string, folderNames: readonly string[]): void {
  for (const f of ['', ...folderNames]) for (const sub of ['cur', 'new', 'tmp']) mkdirSync(join(maildir, f, sub), { recursive: true });
}

let unique = 0;
/** Put a message in a folder as qmail-local would (Return-Path, Delivered-To), then where the user left it. */
export function putMessage(folder: string, where: 'new' | 'cur', flags: string, user: string, message: Buffer): string {
  unique++;
  const name = `${1_764_000_000 + unique}.M${unique}P${process.pid}.mx.example.com,S=${message.length}${where === 'cur' ? `:2,${flags}` : ''}`;
  const path = join(folder, where, name);
  writeFileSync(path, Buffer.concat([Buffer.from(`Return-Path: <sender@client.example>\nDelivered-To: ${user}\n`), message]));
  return path;
}
