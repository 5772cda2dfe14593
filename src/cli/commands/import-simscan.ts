// `nqqueue import-simscan`: read simscan's simcontrol (or, where only it is left, simcontrol.cdb) and
// show — or, with --write, write — the general.cfb and nqqueue.cfb that do what it did, with a report
// of every option met. Never overwrites a file: a new version goes next to it as FILE.simscan-import.

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';

import { parseSimcontrol, readSimcontrolCdb, type Simcontrol } from '../../config/simcontrol.js';
import { describeError } from '../../errors.js';
import { planImport } from '../../migrate/simscan.js';
import { pathsFrom } from '../../queue/services.js';
import { visible } from '../../text/visible.js';
import { parseCommand, usageFailure } from '../args.js';

export const USAGE = `usage: nqqueue import-simscan [--simcontrol PATH] [--write | --out DIR]
  Reads simscan's simcontrol ($NQQUEUE_CONTROLDIR/simcontrol, else simcontrol.cdb there, as compiled
  by simscanmk) and prints the general.cfb and nqqueue.cfb that do what it did, then a report of every
  option met: how it was mapped, or why it cannot be and what to do. Writes nothing by default.
  --simcontrol PATH  the file to read (a name ending in .cdb is read as simscanmk's cdb)
  --write            write the files into the control directory; an existing file is left alone and
                     the new version goes next to it as FILE.simscan-import
  --out DIR          write the files into DIR instead (created if missing), with the same rule
  -h, --help         this text
  Exit 0 when done, 1 when lines of the input are wrong (each as FILE:LINE: what is wrong; the rest is
  still mapped), 2 on a usage error. Then run nqqueue check-config.
`;

const OPTIONS = {
  simcontrol: { type: 'string' },
  write: { type: 'boolean' },
  out: { type: 'string' },
} as const;

/** Create `name` in `dir` without ever replacing a file: FILE, else FILE.simscan-import, .2, ... */
function writeNew(dir: string, name: string, content: string): { path: string; instead?: string } {
  const first = join(dir, name);
  for (let i = 0; ; i++) {
    const path = i === 0 ? first : i === 1 ? `${first}.simscan-import` : `${first}.simscan-import.${i}`;
    try {
      writeFileSync(path, content, { flag: 'wx', mode: 0o644 });
      return i === 0 ? { path } : { path, instead: first };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
}

export async function run(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const parsed = parseCommand('import-simscan', USAGE, args, OPTIONS);
  if (typeof parsed === 'number') return parsed;
  const { simcontrol, write, out } = parsed.values as { simcontrol?: string; write?: boolean; out?: string };
  if (write && out !== undefined) return usageFailure('import-simscan', USAGE, '--write (into the control directory) or --out DIR, not both');
  if (out === '' || simcontrol === '') return usageFailure('import-simscan', USAGE, 'an empty path');
  const say = (l: string) => process.stdout.write(`${visible(l)}\n`);

  let controlDir: string;
  try {
    controlDir = pathsFrom(env).controlDir;
  } catch (err) {
    process.stderr.write(`nqqueue import-simscan: ${visible(describeError(err))}\n`);
    return 1;
  }
  // simscan reads only the cdb; the text is what the administrator edits (and what lines are named by).
  const text = join(controlDir, 'simcontrol');
  const cdb = join(controlDir, 'simcontrol.cdb');
  const source = simcontrol !== undefined ? resolve(simcontrol) : existsSync(text) || !existsSync(cdb) ? text : cdb;
  let sc: Simcontrol;
  try {
    sc = source.endsWith('.cdb') ? readSimcontrolCdb(source) : parseSimcontrol(readFileSync(source, 'latin1'));
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message.replace(`${source}: `, '');
    process.stderr.write(`nqqueue import-simscan: ${visible(`${source}: ${why}`)}${simcontrol === undefined ? ` (nor ${visible(cdb)}; give --simcontrol PATH)` : ''}\n`);
    return 1;
  }
  const notes: string[] = [];
  if (simcontrol === undefined && source === text && existsSync(cdb)) {
    // A simcontrol edited without running simscanmk is not what simscan did: say so.
    try {
      const compiled = readSimcontrolCdb(cdb);
      const key = (s: Simcontrol) => JSON.stringify(s.lines.map((l) => [l.pattern, [...l.settings]]));
      if (key(compiled) !== key(sc)) {
        notes.push(`${cdb} differs from ${text} (simscanmk not run since the last edit?): simscan used the cdb; this import follows the text`);
      }
    } catch (err) {
      notes.push(`${cdb}: ${(err as Error).message}`);
    }
  }

  const plan = planImport(sc, source);
  const targetDir = out !== undefined ? (isAbsolute(out) ? out : resolve(out)) : controlDir;
  for (const f of plan.files) {
    say(`=== ${f.name} (${write || out !== undefined ? '' : 'would be '}written to ${join(targetDir, f.name)})`);
    for (const l of f.content.replace(/\n$/, '').split('\n')) say(l);
  }
  if (plan.files.length === 0) say('=== nothing to write: no line enables a scan NQqueue can do');
  say(`=== report (${source})`);
  for (const l of plan.report) say(l);
  for (const n of notes) say(`note: ${n}`);

  if (write || out !== undefined) {
    try {
      if (out !== undefined) mkdirSync(targetDir, { recursive: true });
      for (const f of plan.files) {
        const w = writeNew(targetDir, f.name, f.content);
        say(w.instead ? `left ${w.instead} alone (it exists); the new version is ${w.path}: compare and merge by hand` : `wrote ${w.path}`);
      }
      if (plan.files.length > 0) say(`next: nqqueue check-config${out !== undefined ? ` (with NQQUEUE_CONTROLDIR=${targetDir} to check these files)` : ''}`);
    } catch (err) {
      process.stderr.write(`nqqueue import-simscan: ${visible(describeError(err))}\n`);
      return 1;
    }
  }
  if (plan.problems.length > 0) {
    const sorted = [...plan.problems].sort((a, b) => a.line - b.line);
    for (const p of sorted) process.stderr.write(`${visible(`${source}:${p.line}: ${p.message}`)}\n`);
    process.stderr.write(`nqqueue import-simscan: ${sorted.length} problem${sorted.length === 1 ? '' : 's'} in ${visible(source)}${sc.unit === 'record' ? ' (numbers are cdb records, in the order simscanmk wrote the lines)' : ''}\n`);
    return 1;
  }
  return 0;
}
