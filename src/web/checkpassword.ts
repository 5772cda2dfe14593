// The checkpassword interface (https://cr.yp.to/checkpwd/interface.html), as qmail-popup uses it: the
// program gets `login\0password\0timestamp\0` on fd 3 and, when the password is right, runs the program
// named by its remaining arguments (we name /bin/true), so its exit is that program's: 0. Exit 1 is a
// refusal and 111 a temporary failure; anything else, a signal or no answer in time is a refusal too —
// a check that did not say yes is never a login.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';

export type CheckOutcome = 'ok' | 'refused' | 'temporary';

export interface CheckpasswordOptions {
  /** The setting's words: the program and its own arguments. */
  readonly argv: readonly string[];
  /** How long the program may take, milliseconds. */
  readonly timeoutMs: number;
  /** The client's address, given as TCPREMOTEIP (vchkpw logs it). */
  readonly remoteIp?: string;
}

export interface CheckResult {
  readonly outcome: CheckOutcome;
  /** For the log: how the program ended (never the password). */
  readonly detail: string;
}

/** The classic checkpassword reads at most 512 bytes from fd 3. */
export const MAX_INPUT = 512;

/** The program checkpassword runs when the password is right: its exit 0 is the yes. */
export function successProgram(): string {
  for (const p of ['/bin/true', '/usr/bin/true']) if (existsSync(p)) return p;
  throw new Error('neither /bin/true nor /usr/bin/true exists: checkpassword needs a program to run on success');
}

export function checkPassword(o: CheckpasswordOptions, login: string, password: string): Promise<CheckResult> {
  const input = Buffer.concat([Buffer.from(login, 'utf8'), Buffer.from([0]), Buffer.from(password, 'utf8'), Buffer.from([0, 0])]);
  // A NUL inside would shift the fields (a login that is really another login's prefix); too long
  // would be cut by the program. Neither is ever a right password.
  if (login.includes('\0') || password.includes('\0') || input.length > MAX_INPUT) return Promise.resolve({ outcome: 'refused', detail: 'input refused before the check' });
  return new Promise((resolve) => {
    let done = false;
    let stderr = '';
    const finish = (r: CheckResult) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(r);
    };
    const [program, ...args] = o.argv;
    const child = spawn(program!, [...args, successProgram()], {
      stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
      env: { PATH: '/usr/bin:/bin', ...(o.remoteIp === undefined ? {} : { TCPREMOTEIP: o.remoteIp }) },
      // Its own process group, so a timeout kills whatever it started as well.
      detached: true,
    });
    const timer = setTimeout(() => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
      finish({ outcome: 'refused', detail: `no answer in ${o.timeoutMs} ms (killed)` });
    }, o.timeoutMs);
    child.once('error', (err) => finish({ outcome: 'temporary', detail: `cannot run ${program}: ${err.message}` }));
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (s: string) => {
      if (stderr.length < 500) stderr += s;
    });
    const fd3 = child.stdio[3] as NodeJS.WritableStream & { on(e: 'error', f: () => void): void };
    // A program that exits without reading gives EPIPE: its exit status decides.
    fd3.on('error', () => {});
    fd3.end(input);
    child.once('close', (code, signal) => {
      const note = stderr.trim() ? ` (${stderr.trim().slice(0, 200)})` : '';
      if (signal) return finish({ outcome: 'refused', detail: `killed by ${signal}${note}` });
      if (code === 0) return finish({ outcome: 'ok', detail: 'exit 0' });
      if (code === 111) return finish({ outcome: 'temporary', detail: `exit 111${note}` });
      finish({ outcome: 'refused', detail: `exit ${code}${note}` });
    });
  });
}
