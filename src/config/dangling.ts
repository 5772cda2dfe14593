// A control file that is a symlink to nothing: "missing" would quietly mean "no plugins" (general.cfb,
// a per-user file) or "all defaults" (nqqueue.conf), so it is reported as an error instead.

import { lstatSync, readlinkSync } from 'node:fs';

/** Why `path`, which could not be opened (ENOENT), is a broken symlink; undefined when it is simply absent. */
export function danglingLink(path: string): string | undefined {
  try {
    if (!lstatSync(path).isSymbolicLink()) return undefined;
  } catch {
    return undefined;
  }
  let target = '?';
  try {
    target = readlinkSync(path);
  } catch {
    // raced with its removal: still say what it was
  }
  return `${path} is a symlink to ${target}, which does not exist (remove the link if the file is not wanted)`;
}
