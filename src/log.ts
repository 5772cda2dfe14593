// One line per message on fd 2 (never stdout: in queue mode fd 1 is the envelope), written synchronously
// so the last line is not lost at exit; debug lines with NQQUEUE_DEBUG. Values come from outside
// (addresses, plugin and backend texts): control characters are written as visible escapes, never raw.

import { writeSync } from 'node:fs';

import { hasUnsafe, visible, visibleJson } from './text/visible.js';

export interface Logger {
  readonly level: number;
  debug(level: number, message: string): void;
  line(fields: Record<string, unknown>, format?: 'text' | 'json'): void;
  write(text: string): void;
}

function writeFd2(text: string): void {
  const buf = Buffer.from(text.endsWith('\n') ? text : `${text}\n`);
  let off = 0;
  let tries = 0;
  while (off < buf.length && tries < 100) {
    try {
      off += writeSync(2, buf, off, buf.length - off);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EAGAIN') return; // EPIPE, EBADF: nobody is reading; never fail over the log
      tries++;
    }
  }
}

/** A value of the text format: bare when it is one plain word, else a terminal-safe JSON string. */
function textValue(v: unknown): string {
  if (typeof v === 'string') return /[\s"=\\]/.test(v) || v === '' || hasUnsafe(v) ? visibleJson(v) : v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return visibleJson(v);
}

export function parseDebugLevel(v: string | undefined): number {
  const n = Number(v ?? 0);
  return Number.isInteger(n) && n >= 0 ? Math.min(n, 5) : 0;
}

export function makeLogger(level: number, prefix = 'nqqueue:', sink: (text: string) => void = writeFd2): Logger {
  return {
    level,
    debug(lvl, message) {
      if (lvl <= level) sink(`${prefix} debug: ${visible(message)}`);
    },
    line(fields, format = 'text') {
      if (format === 'json') {
        sink(visibleJson({ prog: 'nqqueue', ...fields }));
        return;
      }
      const parts = Object.entries(fields)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => `${k}=${textValue(v)}`);
      sink(`${prefix} ${parts.join(' ')}`);
    },
    write(text) {
      sink(visible(text.replace(/\n$/, '')));
    },
  };
}
