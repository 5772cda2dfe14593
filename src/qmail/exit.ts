// Exit codes and the refusal channel: the text qmail-smtpd shows, on fd 6 and/or fd 4, or plain codes.

import { closeSync, constants, fstatSync, openSync, readdirSync, readFileSync, readlinkSync, writeSync, type Stats } from 'node:fs';

export const EXIT = {
  ok: 0,
  addressTooLong: 11,
  permanent: 31,
  readError: 54,
  temporary: 71,
  bug: 81,
  custom: 82,
  envelopeFormat: 91,
} as const;

export type RejectMode = 'auto' | 'fd6' | 'fd4' | 'plain';

/** qmail-smtpd reads at most this many bytes of refusal text. */
export const REFUSAL_MAX = 255;

export function parseRejectMode(v: string | undefined): RejectMode {
  if (v === undefined || v === '' || v === 'auto') return 'auto';
  if (v === 'fd6' || v === 'fd4' || v === 'plain') return v;
  throw new Error(`NQQUEUE_REJECT must be auto, fd6, fd4 or plain, not ${JSON.stringify(v)}`);
}

/**
 * The refusal line as qmail-smtpd wants it: `D` (permanent, 554) or `Z` (temporary, 451), printable
 * ASCII only, no CR/LF, no trailing newline, at most 255 bytes in all.
 */
export function refusalBytes(kind: 'permanent' | 'temporary', text: string): Buffer {
  // eslint-disable-next-line no-control-regex
  let clean = text.replace(/[\r\n\t]+/g, ' ').replace(/[^\x20-\x7e]/g, '?').trim();
  if (clean === '') clean = kind === 'permanent' ? 'message rejected (#5.3.0)' : 'message deferred (#4.3.0)';
  return Buffer.from((kind === 'permanent' ? 'D' : 'Z') + clean.slice(0, REFUSAL_MAX - 1), 'latin1');
}

/**
 * Is `fd` an error descriptor qmail-smtpd gave us? It must be open for writing and not one of Node's
 * own descriptors. Node opens its internal descriptors (epoll, eventfd, the signal pipe) at start-up in
 * the lowest free numbers — so with only fd 4 from qmail, fd 6 may be Node's — and it marks inherited
 * descriptors close-on-exec, so that flag tells nothing. What does tell: Node's pipes are pairs whose
 * both ends this process holds, while qmail's error pipe has its read end in qmail-smtpd.
 */
function inheritedWritable(fd: number): { ok: boolean; pipe: boolean } {
  let target: string;
  let info: string;
  let st: Stats;
  try {
    target = readlinkSync(`/proc/self/fd/${fd}`);
    info = readFileSync(`/proc/self/fdinfo/${fd}`, 'latin1');
    st = fstatSync(fd);
  } catch {
    return { ok: false, pipe: false };
  }
  const m = /^flags:\s*([0-7]+)/m.exec(info);
  if (!m || target.startsWith('anon_inode:')) return { ok: false, pipe: false };
  const acc = parseInt(m[1]!, 8) & 3;
  if (acc !== constants.O_WRONLY && acc !== constants.O_RDWR) return { ok: false, pipe: false };
  const pipe = st.isFIFO();
  if (pipe) {
    for (const other of readdirSync('/proc/self/fd')) {
      const n = Number(other);
      if (n === fd) continue;
      try {
        const o = fstatSync(n);
        if (o.ino === st.ino && o.dev === st.dev) return { ok: false, pipe: false };
      } catch {
        // closed meanwhile (the directory's own descriptor)
      }
    }
  }
  return { ok: true, pipe };
}

/**
 * The descriptors refusal text goes to. Opened once at start: each inherited error descriptor is
 * re-opened close-on-exec and the original closed, so no child program (qmail-queue, exec plugins)
 * inherits it — qmail-smtpd reads it to EOF before waiting, and a leaked copy would keep it waiting.
 */
export class RefusalChannel {
  private constructor(
    readonly mode: RejectMode,
    private fds: number[],
  ) {}

  static open(mode: RejectMode): RefusalChannel {
    const fds: number[] = [];
    const wanted = mode === 'fd6' ? [6] : mode === 'fd4' ? [4] : mode === 'auto' ? [6, 4] : [];
    for (const fd of wanted) {
      const st = inheritedWritable(fd);
      if (!st.ok) continue;
      if (mode === 'auto' && !st.pipe) continue;
      let own = -1;
      try {
        own = openSync(`/proc/self/fd/${fd}`, constants.O_WRONLY | constants.O_NONBLOCK);
      } catch {
        own = -1;
      }
      try {
        closeSync(fd);
      } catch {
        // already gone
      }
      if (own >= 0) fds.push(own);
    }
    return new RefusalChannel(mode, fds);
  }

  /** A channel that writes nowhere (daemon mode relays the text itself). */
  static none(): RefusalChannel {
    return new RefusalChannel('plain', []);
  }

  get available(): boolean {
    return this.fds.length > 0;
  }

  /**
   * Report a refusal; returns the exit code to use: 82 when the text went out on a custom channel,
   * else 31 (permanent) or 71 (temporary).
   */
  refuse(kind: 'permanent' | 'temporary', text: string): number {
    const bytes = refusalBytes(kind, text);
    let written = false;
    for (const fd of this.fds) {
      try {
        if (writeSync(fd, bytes) === bytes.length) written = true;
      } catch {
        // reader gone: fall through to the plain code
      }
    }
    this.close();
    if (written) return EXIT.custom;
    return kind === 'permanent' ? EXIT.permanent : EXIT.temporary;
  }

  close(): void {
    for (const fd of this.fds) {
      try {
        closeSync(fd);
      } catch {
        // ignore
      }
    }
    this.fds = [];
  }
}
