// A checkpassword program for the tests, following the interface exactly
// (https://cr.yp.to/checkpwd/interface.html): it reads `login\0password\0timestamp\0` from fd 3 (at
// most 512 bytes), checks it against a fixed table and, when the password is right, runs the program
// named by its arguments in its own place (execve: its exit is that program's); a wrong password or an
// unknown login is exit 1, a temporary failure exit 111. Some logins behave badly on purpose: see
// SPECIAL. Every call is recorded (login and outcome, never the password) in the record file.
//
// Imports node: built-ins only: generated scripts import the compiled module by absolute path.

import { appendFileSync, readSync } from 'node:fs';

export interface CheckpasswordConfig {
  /** login → password. */
  readonly table: Readonly<Record<string, string>>;
  /** One line per call is appended here. */
  readonly record: string;
  /**
   * A wrong password for a login in the table takes this long (a real program computes a hash), an
   * unknown login is refused at once: a console that answers as fast as the program tells them apart.
   */
  readonly wrongPasswordMs: number;
}

/** Logins that misbehave whatever the password: exit 111, hang, exit 2. */
export const SPECIAL = { temporary: 'down@example.com', hang: 'hang@example.com', crash: 'crash@example.com' } as const;

function readFd3(): Buffer {
  const buf = Buffer.alloc(512);
  let got = 0;
  for (;;) {
    let n: number;
    try {
      n = readSync(3, buf, got, buf.length - got, null);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EAGAIN') continue;
      throw err;
    }
    if (n === 0 || got + n >= buf.length) return buf.subarray(0, got + n);
    got += n;
  }
}

export function runCheckpassword(config: CheckpasswordConfig): void {
  const record = (line: string) => appendFileSync(config.record, `${line}\n`);
  let input: Buffer;
  try {
    input = readFd3();
  } catch (err) {
    record(`- no-fd3 ${(err as Error).message}`);
    process.exit(111);
  }
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = 0; i < input.length && parts.length < 3; i++) {
    if (input[i] === 0) {
      parts.push(input.subarray(start, i));
      start = i + 1;
    }
  }
  const [login, password] = parts.map((p) => p.toString('utf8'));
  const program = process.argv.slice(2);
  if (parts.length < 3 || login === undefined || password === undefined) {
    record(`- malformed ${input.length}`);
    process.exit(2);
  }
  if (program.length === 0) {
    record(`${login} no-program`);
    process.exit(2);
  }
  if (login === SPECIAL.temporary) {
    record(`${login} temporary`);
    process.exit(111);
  }
  if (login === SPECIAL.crash) {
    record(`${login} crash`);
    process.exit(2);
  }
  if (login === SPECIAL.hang) {
    record(`${login} hang`);
    setInterval(() => {}, 1000);
    return;
  }
  const want = Object.hasOwn(config.table, login) ? config.table[login] : undefined;
  if (want === undefined) {
    record(`${login} unknown`);
    process.exit(1);
  }
  if (password !== want) {
    record(`${login} wrong`);
    const until = Date.now() + config.wrongPasswordMs;
    while (Date.now() < until) {
      // busy, like a slow hash
    }
    process.exit(1);
  }
  record(`${login} ok ${program.join(' ')}`);
  const p = process as NodeJS.Process & { execve?: (file: string, args: string[], env: Record<string, string>) => never };
  if (p.execve) p.execve(program[0]!, program, { USER: login });
  // Before Node 22.15 there is no execve: run it and pass its exit on, as exec would.
  import('node:child_process').then(({ spawnSync }) => {
    const r = spawnSync(program[0]!, program.slice(1), { stdio: 'inherit', env: { USER: login } });
    process.exit(r.status ?? 111);
  });
}
