// A QMAILQUEUE-shaped program for the runner's self-test: reports what it was given (descriptors, their
// kind and flags, environment, cwd, the bytes on fd 0 and fd 1) as one JSON line on fd 2.
//
// Node opens its own descriptors (epoll, eventfd, signal pipes: anon_inode:… and pipe:[…]) at the
// lowest free numbers, and Node 20 marks every inherited fd 0–15 close-on-exec at startup, so here an
// open number says nothing about what execve passed: smtpd.test.ts uses a /bin/sh probe for that.

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { fstatSync, readdirSync, readFileSync, readlinkSync, writeSync } from 'node:fs';

import { readAll } from '../helpers/qmail-queue-stand-in.js';

export const O_NONBLOCK = 0o4000;
export const O_ACCMODE = 0o3;

export interface ProbeConfig {
  /** Read fd 0 and fd 1 to EOF first (default true); false: answer at once (an early reject). */
  read?: boolean;
  /** Write this on `errorFd`. */
  errorText?: string;
  errorFd?: number;
  /** Start a grandchild that inherits `errorFd` and keeps it open this long. */
  grandchildMs?: number;
  exitCode?: number;
}

export interface FdReport {
  fd: number;
  link: string;
  fifo: boolean;
  socket: boolean;
  /** The open file description's flags from /proc/self/fdinfo (octal there). */
  flags: number;
}

export interface ProbeReport {
  fds: FdReport[];
  env: Record<string, string | undefined>;
  cwd: string;
  cwdEntries: string[];
  argv: string[];
  message?: { length: number; sha256: string };
  envelope?: { hex: string; reads: number };
  grandchild?: number;
}

function describe(fd: number): FdReport | undefined {
  try {
    const st = fstatSync(fd);
    const info = readFileSync(`/proc/self/fdinfo/${fd}`, 'latin1');
    const flags = Number.parseInt(/flags:\s+([0-7]+)/.exec(info)?.[1] ?? 'NaN', 8);
    return { fd, link: readlinkSync(`/proc/self/fd/${fd}`), fifo: st.isFIFO(), socket: st.isSocket(), flags };
  } catch {
    return undefined;
  }
}

export function probe(cfg: ProbeConfig): void {
  const fds = readdirSync('/proc/self/fd')
    .map(Number)
    .sort((a, b) => a - b)
    .map(describe)
    .filter((d): d is FdReport => d !== undefined);
  const report: ProbeReport = {
    fds,
    env: { ...process.env },
    cwd: process.cwd(),
    cwdEntries: readdirSync('.'),
    argv: process.argv.slice(2),
  };
  if (cfg.read !== false) {
    const m = readAll(0).data;
    const e = readAll(1);
    report.message = { length: m.length, sha256: createHash('sha256').update(m).digest('hex') };
    report.envelope = { hex: e.data.toString('hex'), reads: e.reads };
  }
  if (cfg.errorText !== undefined) writeSync(cfg.errorFd ?? 6, cfg.errorText);
  if (cfg.grandchildMs !== undefined) {
    const stdio: ('ignore' | number)[] = ['ignore', 'ignore', 'ignore'];
    while (stdio.length < (cfg.errorFd ?? 6)) stdio.push('ignore');
    stdio.push(cfg.errorFd ?? 6);
    const gc = spawn(process.execPath, ['-e', `setTimeout(() => {}, ${cfg.grandchildMs})`], { stdio, detached: true });
    gc.unref();
    report.grandchild = gc.pid;
  }
  writeSync(2, `${JSON.stringify(report)}\n`);
  process.exit(cfg.exitCode ?? 0);
}
