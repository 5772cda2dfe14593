// Descriptors the console was started with beyond stdin, stdout and stderr (a supervisor's pipe, a
// shell's redirection) would be inherited by every program it runs — checkpassword above all, which
// gets a password and must see exactly fds 0-3 — because a child keeps every descriptor not marked
// close-on-exec. Node.js and libuv open all of their own close-on-exec, so a descriptor without the
// flag at start is an inherited one: it is closed. Linux only (/proc/self/fdinfo); elsewhere nothing.

import { closeSync, readdirSync, readFileSync } from 'node:fs';

const O_CLOEXEC = 0o2000000;

/** Closes the inherited descriptors above 2; returns their numbers. */
export function closeInheritedFds(env: NodeJS.ProcessEnv = process.env): number[] {
  let names: string[];
  try {
    names = readdirSync('/proc/self/fdinfo');
  } catch {
    return [];
  }
  // Node's own IPC channel to a parent that forked it, if any, is kept.
  const keep = new Set([env.NODE_CHANNEL_FD ?? ''].filter(Boolean).map(Number));
  const closed: number[] = [];
  for (const name of names) {
    const fd = Number(name);
    if (!Number.isInteger(fd) || fd <= 2 || keep.has(fd)) continue;
    let flags: number;
    try {
      const m = /^flags:\s*([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
      if (!m) continue;
      flags = Number.parseInt(m[1]!, 8);
    } catch {
      continue; // closed meanwhile (the directory's own descriptor among them)
    }
    if ((flags & O_CLOEXEC) !== 0) continue;
    try {
      closeSync(fd);
      closed.push(fd);
    } catch {
      // not ours to close after all
    }
  }
  return closed;
}
