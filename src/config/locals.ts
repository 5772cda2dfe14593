// Which recipients are local: rcpthosts (".example.com" covers subdomains) and morercpthosts.cdb,
// with qmail's own rule (rcpthosts.c): the whole domain, then each ".suffix" of it, in either file.

import { accessSync, closeSync, constants, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';

import { NqqError } from '../errors.js';

/** A read-only cdb file (D. J. Bernstein's constant database), looked up with positional reads. */
export class Cdb {
  private constructor(
    private readonly fd: number,
    private readonly header: Buffer,
  ) {}

  static open(path: string): Cdb | undefined {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    const header = Buffer.alloc(2048);
    if (readSync(fd, header, 0, 2048, 0) !== 2048) {
      closeSync(fd);
      throw new Error(`${path}: not a cdb file (shorter than its header)`);
    }
    return new Cdb(fd, header);
  }

  static hash(key: Buffer): number {
    let h = 5381;
    for (const c of key) h = (((h << 5) + h) ^ c) >>> 0;
    return h;
  }

  private read(pos: number, len: number): Buffer {
    const buf = Buffer.alloc(len);
    if (len > 0 && readSync(this.fd, buf, 0, len, pos) !== len) throw new Error('cdb: truncated file');
    return buf;
  }

  /** The data stored under `key`, or undefined. */
  get(key: Buffer): Buffer | undefined {
    const h = Cdb.hash(key);
    const t = (h & 255) * 8;
    const tpos = this.header.readUInt32LE(t);
    const slots = this.header.readUInt32LE(t + 4);
    if (slots === 0) return undefined;
    let slot = (h >>> 8) % slots;
    for (let n = 0; n < slots; n++) {
      const e = this.read(tpos + slot * 8, 8);
      const eh = e.readUInt32LE(0);
      const rpos = e.readUInt32LE(4);
      if (rpos === 0) return undefined;
      if (eh === h) {
        const r = this.read(rpos, 8);
        const klen = r.readUInt32LE(0);
        const dlen = r.readUInt32LE(4);
        if (klen === key.length && this.read(rpos + 8, klen).equals(key)) return this.read(rpos + 8 + klen, dlen);
      }
      slot = (slot + 1) % slots;
    }
    return undefined;
  }

  /**
   * Every record in file order (the order it was made in; a key given twice appears twice, and get()
   * finds the first). Records run from the header to the first hash table.
   */
  *records(): Generator<[Buffer, Buffer]> {
    let end = Infinity;
    for (let i = 0; i < 256; i++) end = Math.min(end, this.header.readUInt32LE(i * 8));
    for (let pos = 2048; pos < end; ) {
      const r = this.read(pos, 8);
      const klen = r.readUInt32LE(0);
      const dlen = r.readUInt32LE(4);
      if (pos + 8 + klen + dlen > end) throw new Error('cdb: a record runs into the hash tables');
      yield [this.read(pos + 8, klen), this.read(pos + 8 + klen, dlen)];
      pos += 8 + klen + dlen;
    }
  }

  close(): void {
    closeSync(this.fd);
  }
}

/** Build a cdb file's bytes (tests, and a `morercpthosts` compiled by hand). */
export function makeCdb(entries: readonly [Buffer, Buffer][]): Buffer {
  const records: Buffer[] = [];
  const tables: { h: number; pos: number }[][] = Array.from({ length: 256 }, () => []);
  let pos = 2048;
  for (const [k, v] of entries) {
    const head = Buffer.alloc(8);
    head.writeUInt32LE(k.length, 0);
    head.writeUInt32LE(v.length, 4);
    records.push(head, k, v);
    const h = Cdb.hash(k);
    tables[h & 255]!.push({ h, pos });
    pos += 8 + k.length + v.length;
  }
  const header = Buffer.alloc(2048);
  const tableBufs: Buffer[] = [];
  for (let i = 0; i < 256; i++) {
    const list = tables[i]!;
    const slots = list.length * 2;
    header.writeUInt32LE(pos, i * 8);
    header.writeUInt32LE(slots, i * 8 + 4);
    const tb = Buffer.alloc(slots * 8);
    for (const { h, pos: rp } of list) {
      let s = (h >>> 8) % slots;
      while (tb.readUInt32LE(s * 8 + 4) !== 0) s = (s + 1) % slots;
      tb.writeUInt32LE(h, s * 8);
      tb.writeUInt32LE(rp, s * 8 + 4);
    }
    tableBufs.push(tb);
    pos += tb.length;
  }
  return Buffer.concat([header, ...records, ...tableBufs]);
}

export interface Locals {
  isLocal(address: string): boolean;
  close(): void;
}

/** qmail's control file reading: one entry a line, comments and blank lines ignored, lower-cased. */
export function readControlLines(path: string, missingIsEmpty = true): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (missingIsEmpty && (err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return text
    .split('\n')
    .map((l) => l.trim().toLowerCase())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

/**
 * Why the control directory cannot be used, and the path at fault, or undefined when it can: it must
 * exist, be a directory we may read, and hold rcpthosts. Without rcpthosts every recipient would be
 * remote (no per-user plugin, no quarantine), so its absence is an error, not an empty list.
 */
export function controlDirProblem(controlDir: string): { readonly path: string; readonly message: string } | undefined {
  const why = (err: unknown) => (err as NodeJS.ErrnoException).code ?? (err as Error).message;
  let st;
  try {
    st = statSync(controlDir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { path: controlDir, message: `control directory ${controlDir} does not exist (NQQUEUE_CONTROLDIR)` };
    return { path: controlDir, message: `control directory ${controlDir} cannot be read: ${why(err)}` };
  }
  if (!st.isDirectory()) return { path: controlDir, message: `control directory ${controlDir} is not a directory (NQQUEUE_CONTROLDIR)` };
  try {
    accessSync(controlDir, constants.R_OK | constants.X_OK);
  } catch (err) {
    return { path: controlDir, message: `control directory ${controlDir} cannot be read: ${why(err)}` };
  }
  const rcpthosts = join(controlDir, 'rcpthosts');
  try {
    accessSync(rcpthosts, constants.R_OK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      return { path: rcpthosts, message: `${rcpthosts} does not exist: without it no recipient is local (list your domains in it, as qmail-smtpd needs)` };
    }
    return { path: rcpthosts, message: `${rcpthosts} cannot be read: ${why(err)}` };
  }
  return undefined;
}

/** Throws NQQ_ERR_CONTROL_MISSING when the control directory or its rcpthosts cannot be used. */
export function checkControlDir(controlDir: string): void {
  const problem = controlDirProblem(controlDir);
  if (problem) throw new NqqError('NQQ_ERR_CONTROL_MISSING', problem.message);
}

export function loadLocals(controlDir: string): Locals {
  let lines: string[];
  try {
    lines = readControlLines(join(controlDir, 'rcpthosts'), false);
  } catch {
    // Say which piece is missing (the directory, or rcpthosts in it).
    throw new NqqError('NQQ_ERR_CONTROL_MISSING', controlDirProblem(controlDir)?.message ?? `${join(controlDir, 'rcpthosts')} cannot be read`);
  }
  const hosts = new Set(lines);
  let cdb: Cdb | undefined;
  try {
    cdb = Cdb.open(join(controlDir, 'morercpthosts.cdb'));
  } catch (err) {
    throw new NqqError('NQQ_ERR_CONFIG', `${join(controlDir, 'morercpthosts.cdb')}: ${(err as Error).message}`);
  }
  return {
    isLocal(address: string): boolean {
      const at = address.lastIndexOf('@');
      if (at < 0) return true;
      const domain = address.slice(at + 1).toLowerCase();
      for (let j = 0; j < domain.length; j++) {
        if (j === 0 || domain[j] === '.') if (hosts.has(domain.slice(j))) return true;
      }
      if (cdb) {
        for (let j = 0; j < domain.length; j++) {
          if (j === 0 || domain[j] === '.') if (cdb.get(Buffer.from(domain.slice(j), 'utf8'))) return true;
        }
      }
      return false;
    },
    close() {
      cdb?.close();
    },
  };
}

/**
 * Locals read on first use: a command that needs no recipient check (flush) works without rcpthosts,
 * and closing a generation that never looked anything up reads nothing.
 */
export function lazyLocals(controlDir: string): Locals {
  let loaded: Locals | undefined;
  return {
    isLocal(address: string): boolean {
      loaded ??= loadLocals(controlDir);
      return loaded.isLocal(address);
    },
    close() {
      loaded?.close();
    },
  };
}
