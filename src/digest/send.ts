// Mailing a digest through qmail-inject (qmail-inject(8)): `qmail-inject -f<sender> -a <owner>`, the
// message on stdin; -a sends to the argument only, whatever the header says. No shell, and an
// environment of its own: qmail-inject reads QMAILINJECT (letters that delete our From or Message-ID,
// or VERP the sender), QMAILMFTFILE, QMAILUSER/QMAILHOST and QMAILQUEUE, and none of what was set for
// other programs may change what it sends or route a digest back through the filter. Exit 0 is sent;
// 100 permanent, 111 (and anything else) temporary — either way the digest is not counted as sent.

import { spawn } from 'node:child_process';

import { describeError, oneLine } from '../errors.js';

export type InjectResult = { readonly ok: true } | { readonly ok: false; readonly code: number | undefined; readonly reason: string };

/** The argument list, without the program: the sender attached to -f (qmail-inject's getopt takes both). */
export function injectArgs(from: string, to: string): string[] {
  return [`-f${from}`, '-a', to];
}

export function inject(program: string, from: string, to: string, message: Buffer, timeoutMs: number): Promise<InjectResult> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (r: InjectResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(r);
    };
    let child: ReturnType<typeof spawn>;
    try {
      child = spawn(program, injectArgs(from, to), { stdio: ['pipe', 'ignore', 'pipe'], env: {}, argv0: program });
    } catch (err) {
      done({ ok: false, code: undefined, reason: `cannot run ${program}: ${describeError(err)}` });
      return;
    }
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    let errText = '';
    child.stderr!.on('data', (d: Buffer) => {
      if (errText.length < 1000) errText += d.toString('utf8');
    });
    child.stdin!.on('error', () => {
      // EPIPE when it quits early: its exit code is the verdict.
    });
    child.on('error', (err) => done({ ok: false, code: undefined, reason: `cannot run ${program}: ${describeError(err)}` }));
    // The verdict is the exit; its stderr is read until it closes, or a moment more at most (a
    // program it started may hold the pipe open).
    let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    const finish = () => {
      if (!exited) return;
      const { code, signal } = exited;
      const said = oneLine(errText).slice(0, 300);
      const tail = said ? `: ${said}` : '';
      if (timedOut) done({ ok: false, code: undefined, reason: `${program} timed out after ${timeoutMs} ms` });
      else if (signal) done({ ok: false, code: undefined, reason: `${program} was killed by ${signal}${tail}` });
      else if (code === 0) done({ ok: true });
      else done({ ok: false, code: code ?? undefined, reason: `${program} exited ${code}${code === 100 ? ' (permanent)' : ''}${tail}` });
    };
    child.on('exit', (code, signal) => {
      exited = { code, signal };
      setTimeout(finish, 200).unref();
    });
    child.on('close', finish);
    child.stdin!.end(message);
  });
}
