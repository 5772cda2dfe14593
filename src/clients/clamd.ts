// clamd client: INSTREAM scans (FILDES for a spilled message on a local clamd), PING and VERSION over a
// Unix socket or TCP, with fail-over.

import { connect, type Socket } from 'node:net';

import type { MessageView } from '../pipeline/types.js';
import { BackendError } from '../plugin-api/define.js';
import { fdPassingAvailable, FdPassingError } from './fd-passing.js';
import {
  asBuffer,
  codedError,
  connectUnix,
  ConnectFailure,
  exchange,
  endpointPool,
  parseEndpoints,
  PEER_GONE,
  pieces,
  resolveTimeouts,
  socketWriter,
  StopWriting,
  withFailover,
  type PoolSettings,
  type CallOptions,
  type Endpoint,
  type Timeouts,
  type Writer,
} from './socket.js';
import type { BackendPool } from './pool.js';

export type ClamdVerdict = { readonly status: 'clean' } | { readonly status: 'virus'; readonly name: string };

/** How the message reached clamd: its bytes streamed (INSTREAM), or its open file handed over (FILDES). */
export type ClamdMethod = 'instream' | 'fildes';

/** A scan result: the verdict, how long the call took, the address that answered, and how it was sent. */
export type ClamdScanResult = ClamdVerdict & { readonly ms: number; readonly address: string; readonly via: ClamdMethod };

/** Scans made by a client, by the method that gave the verdict; `refused`: FILDES answered "not here". */
export interface ClamdCounts {
  instream: number;
  fildes: number;
  refused: number;
}

export interface ClamdClientOptions extends Partial<Timeouts>, PoolSettings {
  /** Unix socket paths (absolute, or `unix:PATH`) and/or `HOST:PORT`, tried in turn when one cannot be reached. */
  readonly addresses: readonly string[];
  /** Largest INSTREAM chunk sent (default 64 KiB). */
  readonly chunkBytes?: number;
  /**
   * Keep clamd connections open between scans as IDSESSION sessions (for a long-lived process): each
   * scan takes an idle session of the endpoint or opens one, and gives it back after a clean reply.
   * Off by default: one connection per scan.
   */
  readonly sessions?: boolean | SessionOptions;
  /**
   * Hand clamd the open file of a message that has one (spilled to disk) with FILDES, on a Unix socket:
   * clamd reads the file itself, no byte is copied through the socket (default true). TCP addresses,
   * messages in memory and a clamd that refuses FILDES get INSTREAM.
   */
  readonly fildes?: boolean;
}

export interface SessionOptions {
  /** Idle sessions kept per endpoint (default 4). */
  readonly maxIdle?: number;
  /** An idle session is ended after this long unused (default 5 s; clamd's own IdleTimeout is 30 s). */
  readonly idleMs?: number;
}

/** The connect and read timeouts of a call that sets none (the plugin documents them: backend.ts timeoutKeys). */
export const DEFAULT_TIMEOUTS: Timeouts = { connectTimeoutMs: 2_000, readTimeoutMs: 30_000 };
const MAX_REPLY = 64 * 1024;
const NUL = 0;

/** A complete z-command reply ends with NUL. */
const nulTerminated = (reply: Buffer): boolean => reply.includes(NUL);

/** The reply text without its terminator; undefined when it never came. */
function replyText(reply: Buffer): string | undefined {
  const end = reply.indexOf(NUL);
  return end < 0 ? undefined : reply.subarray(0, end).toString('utf8');
}

/** What the descriptor-passing command sends, before one byte that carries the file. */
const FILDES_COMMAND = Buffer.from('zFILDES\0', 'latin1');

/** Interpret a `zINSTREAM` or `zFILDES` reply: `stream: OK`, `fd[12]: NAME FOUND`, `... ERROR`. */
export function parseScanReply(text: string): ClamdVerdict | { readonly status: 'error'; readonly message: string } {
  const prefix = /^(?:stream|fd\[\d+\]): /.exec(text);
  const body = prefix ? text.slice(prefix[0].length) : text;
  if (body === 'OK') return { status: 'clean' };
  if (body.endsWith(' FOUND')) {
    const name = body.slice(0, -' FOUND'.length).trim();
    if (name.length > 0) return { status: 'virus', name };
  }
  if (body.endsWith(' ERROR')) return { status: 'error', message: body.slice(0, -' ERROR'.length).trim() };
  return { status: 'error', message: `unexpected reply ${JSON.stringify(text.slice(0, 200))}` };
}

/** A reused session turned out to be gone before any reply: the scan may be retried on a fresh one. */
class SessionGone extends Error {
  readonly sent: number;
  readonly finished: boolean;
  constructor(message: string, sent: number, finished: boolean, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SessionGone';
    this.sent = sent;
    this.finished = finished;
  }
}

/**
 * FILDES gave no verdict: the reply refused the command (`remember`: this clamd cannot do it, use
 * INSTREAM from now on) or the file could not be handed over; the call goes on with INSTREAM.
 */
class FildesRefused extends Error {
  constructor(
    message: string,
    readonly remember: boolean,
  ) {
    super(message);
    this.name = 'FildesRefused';
  }
}

/** clamd's answers when it cannot take a descriptor: built without it, inside a session, none came. */
const REFUSAL = /UNKNOWN COMMAND|Command invalid|No file descriptor received|FILDES/i;

/** The verdict of a FILDES reply text; any error is a FildesRefused (INSTREAM is tried instead). */
function fildesVerdict(text: string): ClamdVerdict {
  const verdict = parseScanReply(text);
  if (verdict.status !== 'error') return verdict;
  throw new FildesRefused(`FILDES answered ${JSON.stringify(text.slice(0, 200))}`, REFUSAL.test(text));
}

const codeOf = (err: unknown): string => {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'EUNKNOWN';
};
const textOf = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/**
 * One INSTREAM request: the command, the message in length-prefixed chunks, the zero-length end.
 * `progress` tells a failed call how far it got (clamd closes early past its StreamMaxLength).
 */
async function sendInstream(w: Writer, message: MessageView, chunkBytes: number, progress: { sent: number; finished: boolean }): Promise<void> {
  await w.write(Buffer.from('zINSTREAM\0', 'latin1'));
  // chunks(), not stream(): a spilled message is read 64 KB at a time into one buffer, with nothing
  // read ahead, so many scans in flight hold a frame each, not a stream's read-ahead each. Each frame
  // is a copy of its piece: the socket may still hold it after write() returns, and the chunk's
  // buffer is reused for the next read.
  for await (const chunk of message.chunks()) {
    for (const piece of pieces(asBuffer(chunk), chunkBytes)) {
      const frame = Buffer.allocUnsafe(4 + piece.length);
      frame.writeUInt32BE(piece.length, 0);
      piece.copy(frame, 4);
      await w.write(frame);
      progress.sent += piece.length;
    }
  }
  await w.write(Buffer.alloc(4));
  progress.finished = true;
}

/** One FILDES request: the command, then one byte carrying the message's open file. */
async function sendFildes(w: Writer, message: MessageView, path: string, progress: { sent: number; finished: boolean }): Promise<void> {
  try {
    await w.sendFile(FILDES_COMMAND, path, message.size);
  } catch (err) {
    if (err instanceof FdPassingError) throw new FildesRefused(`the file could not be handed over: ${err.message}`, false);
    throw err;
  }
  progress.finished = true;
}

/** The error of a connection clamd closed before answering: past StreamMaxLength, for INSTREAM. */
function closedEarly(endpoint: Endpoint, message: MessageView, sent: number, via: ClamdMethod, cause: unknown): BackendError {
  if (via === 'fildes') return new BackendError(`clamd ${endpoint.text}: connection closed without a reply to FILDES`, { cause });
  return new BackendError(
    `clamd ${endpoint.text}: connection closed after ${sent} of ${message.size} bytes without a reply ` +
      '(INSTREAM size limit exceeded? clamd StreamMaxLength is probably smaller than the message)',
    { cause },
  );
}

/** One IDSESSION connection to clamd; used by one scan at a time. */
class Session {
  /** Number of the last request sent in this session (clamd numbers them from 1). */
  private seq = 0;
  private idleTimer: NodeJS.Timeout | undefined;
  private onIdleEvent: (() => void) | undefined;
  dead = false;

  constructor(
    readonly endpoint: Endpoint,
    readonly socket: Socket,
  ) {}

  nextId(): number {
    return ++this.seq;
  }

  get used(): boolean {
    return this.seq > 0;
  }

  /** Park the session: any byte or close while idle kills it; it ends itself after `idleMs`. */
  park(idleMs: number, onGone: () => void): void {
    const gone = (): void => {
      this.kill();
      onGone();
    };
    this.onIdleEvent = gone;
    this.socket.on('data', gone);
    this.socket.on('end', gone);
    this.socket.on('close', gone);
    this.socket.on('error', gone);
    this.socket.setTimeout(0);
    this.socket.unref();
    this.idleTimer = setTimeout(() => {
      this.end();
      onGone();
    }, idleMs);
    this.idleTimer.unref();
  }

  /** Take the session out of the pool for a scan. */
  unpark(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    const gone = this.onIdleEvent;
    if (gone) {
      this.socket.off('data', gone);
      this.socket.off('end', gone);
      this.socket.off('close', gone);
      this.socket.off('error', gone);
      this.onIdleEvent = undefined;
    }
    this.socket.ref();
  }

  /** End the session politely (zEND), then let clamd close it. */
  end(): void {
    this.unpark();
    this.dead = true;
    this.socket.on('error', () => undefined);
    if (!this.socket.destroyed) {
      this.socket.end(Buffer.from('zEND\0', 'latin1'));
      this.socket.unref();
      setTimeout(() => this.socket.destroy(), 1_000).unref();
    }
  }

  kill(): void {
    this.unpark();
    this.dead = true;
    this.socket.on('error', () => undefined);
    this.socket.destroy();
  }
}

/** Connect to an endpoint: ConnectFailure when it cannot be reached (the next address is tried). */
function openSocket(endpoint: Endpoint, connectTimeoutMs: number, signal: AbortSignal, fdCapable: boolean): Promise<Socket> {
  return new Promise<Socket>((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const socket = endpoint.kind === 'unix' ? connectUnix(endpoint.path, fdCapable) : connect({ host: endpoint.host, port: endpoint.port });
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      socket.off('error', onError);
      socket.off('connect', onConnect);
    };
    const onAbort = (): void => {
      done();
      socket.destroy();
      reject(signal.reason);
    };
    const onError = (err: Error): void => {
      done();
      socket.destroy();
      const code = codeOf(err);
      reject(new ConnectFailure(err.message.includes(code) ? err.message : `${code}: ${err.message}`, code, { cause: err }));
    };
    const onConnect = (): void => {
      done();
      resolve(socket);
    };
    const timer = setTimeout(() => {
      done();
      socket.destroy();
      reject(new ConnectFailure(`connect timeout after ${connectTimeoutMs} ms`, 'ETIMEDOUT'));
    }, connectTimeoutMs);
    signal.addEventListener('abort', onAbort, { once: true });
    socket.once('error', onError);
    socket.once('connect', onConnect);
  });
}

/** The verdict of an INSTREAM reply text; clamd's errors (size limit...) are BackendErrors. */
function verdictOf(endpoint: Endpoint, message: MessageView, text: string): ClamdVerdict {
  const verdict = parseScanReply(text);
  if (verdict.status === 'error') {
    const hint = /size limit exceeded/i.test(verdict.message) ? ` (message of ${message.size} bytes is larger than clamd's StreamMaxLength)` : '';
    throw new BackendError(`clamd ${endpoint.text}: ${verdict.message}${hint}`);
  }
  return verdict;
}

export class ClamdClient {
  readonly endpoints: readonly Endpoint[];
  /** The endpoints as a pool: their balance, and those taken out for a while. */
  readonly pool: BackendPool<Endpoint>;
  private readonly timeouts: Timeouts;
  private readonly chunkBytes: number;
  private readonly sessions: { readonly maxIdle: number; readonly idleMs: number } | undefined;
  /** Idle sessions per endpoint text, most recently used last. */
  private readonly idle = new Map<string, Session[]>();
  /** FILDES is tried on Unix sockets (the option, and this Node can pass descriptors). */
  private readonly fildes: boolean;
  /** Endpoints whose clamd refused FILDES: INSTREAM only from then on. */
  private readonly noFildes = new Set<string>();
  /** Scans by the method that gave the verdict, and FILDES refusals (for logs, metrics and tests). */
  readonly counts: ClamdCounts = { instream: 0, fildes: 0, refused: 0 };

  constructor(options: ClamdClientOptions) {
    this.endpoints = parseEndpoints('clamd', options.addresses);
    this.timeouts = resolveTimeouts(DEFAULT_TIMEOUTS, options);
    this.pool = endpointPool('clamd', this.endpoints, options, this.timeouts.connectTimeoutMs);
    this.chunkBytes = options.chunkBytes ?? 64 * 1024;
    if (!Number.isInteger(this.chunkBytes) || this.chunkBytes < 1 || this.chunkBytes > 0x7fffffff) {
      throw new RangeError('chunkBytes must be a positive integer');
    }
    if (options.sessions) {
      const o = options.sessions === true ? {} : options.sessions;
      const maxIdle = o.maxIdle ?? 4;
      const idleMs = o.idleMs ?? 5_000;
      if (!Number.isInteger(maxIdle) || maxIdle < 0) throw new RangeError('sessions.maxIdle must be a non-negative integer');
      if (!Number.isFinite(idleMs) || idleMs <= 0) throw new RangeError('sessions.idleMs must be a positive number of milliseconds');
      this.sessions = { maxIdle, idleMs };
    }
    this.fildes = (options.fildes ?? true) && this.endpoints.some((e) => e.kind === 'unix') && fdPassingAvailable();
  }

  /** The file to hand `endpoint` with FILDES for `message`, or undefined: stream it with INSTREAM. */
  private fildesPath(message: MessageView, endpoint: Endpoint): string | undefined {
    if (!this.fildes || endpoint.kind !== 'unix' || this.noFildes.has(endpoint.text)) return undefined;
    return message.wholeFile?.();
  }

  /** FILDES gave no verdict: count it, and when clamd said it cannot do it, stop asking that address. */
  private refused(endpoint: Endpoint, err: FildesRefused): void {
    if (!err.remember) return;
    this.counts.refused++;
    this.noFildes.add(endpoint.text);
  }

  /** Idle sessions kept now (all endpoints). */
  idleSessions(): number {
    let n = 0;
    for (const list of this.idle.values()) n += list.length;
    return n;
  }

  /** End every idle session (a scan in progress keeps its own until it finishes). */
  close(): void {
    for (const list of this.idle.values()) for (const s of list.splice(0)) s.end();
  }

  /** Scan a message with INSTREAM. A virus is a result, not an error; clamd errors are BackendErrors. */
  async scan(message: MessageView, options: CallOptions): Promise<ClamdScanResult> {
    const started = performance.now();
    const timeouts = resolveTimeouts(this.timeouts, options);
    if (this.sessions) return this.scanInSession(message, options.signal, timeouts, started);
    return withFailover('clamd', this.pool, options.signal, async (endpoint) => {
      const path = this.fildesPath(message, endpoint);
      if (path !== undefined) {
        try {
          const verdict = fildesVerdict(await this.scanOnce(endpoint, message, options.signal, timeouts, path));
          this.counts.fildes++;
          return { ...verdict, ms: performance.now() - started, address: endpoint.text, via: 'fildes' as const };
        } catch (err) {
          if (!(err instanceof FildesRefused)) throw err;
          this.refused(endpoint, err);
        }
      }
      const verdict = verdictOf(endpoint, message, await this.scanOnce(endpoint, message, options.signal, timeouts, undefined));
      this.counts.instream++;
      return { ...verdict, ms: performance.now() - started, address: endpoint.text, via: 'instream' as const };
    });
  }

  /** One request on a fresh connection (FILDES of `path`, else INSTREAM): the reply text. */
  private async scanOnce(endpoint: Endpoint, message: MessageView, signal: AbortSignal, timeouts: Timeouts, path: string | undefined): Promise<string> {
    const progress = { sent: 0, finished: false };
    const send = (w: Writer) => (path === undefined ? sendInstream(w, message, this.chunkBytes, progress) : sendFildes(w, message, path, progress));
    let reply: Buffer;
    try {
      reply = await exchange({ ...timeouts, service: 'clamd', endpoint, signal, send, complete: nulTerminated, maxReplyBytes: MAX_REPLY, fdCapable: path !== undefined });
    } catch (err) {
      if (err instanceof BackendError && !progress.finished && !signal.aborted && /closed without a reply/.test(err.message)) {
        // clamd drops the connection when the stream passes StreamMaxLength; the reply saying so
        // can be lost when the close wins the race with our read.
        throw closedEarly(endpoint, message, progress.sent, path === undefined ? 'instream' : 'fildes', err);
      }
      throw err;
    }
    const text = replyText(reply);
    if (text === undefined) throw new BackendError(`clamd ${endpoint.text}: incomplete reply ${JSON.stringify(reply.toString('utf8').slice(0, 200))}`);
    return text;
  }

  /**
   * A scan on an IDSESSION connection: an idle one of the endpoint when there is one, else a new one.
   * A reused session found dead before any reply (clamd closed it meanwhile) is retried once on a
   * fresh connection; every other failure discards the session and fails the scan.
   */
  private scanInSession(message: MessageView, signal: AbortSignal, timeouts: Timeouts, started: number): Promise<ClamdScanResult> {
    return withFailover('clamd', this.pool, signal, async (endpoint) => {
      const path = this.fildesPath(message, endpoint);
      if (path !== undefined) {
        try {
          const verdict = await this.sessionScan(endpoint, message, signal, timeouts, path);
          this.counts.fildes++;
          return { ...verdict, ms: performance.now() - started, address: endpoint.text, via: 'fildes' as const };
        } catch (err) {
          if (!(err instanceof FildesRefused)) throw err;
          this.refused(endpoint, err);
        }
      }
      const verdict = await this.sessionScan(endpoint, message, signal, timeouts, undefined);
      this.counts.instream++;
      return { ...verdict, ms: performance.now() - started, address: endpoint.text, via: 'instream' as const };
    });
  }

  /** One scan of `endpoint` in a session (FILDES of `path`, else INSTREAM). */
  private async sessionScan(endpoint: Endpoint, message: MessageView, signal: AbortSignal, timeouts: Timeouts, path: string | undefined): Promise<ClamdVerdict> {
    const reused = this.takeIdle(endpoint);
    if (reused) {
      try {
        return await this.scanOn(reused, message, signal, timeouts, path);
      } catch (err) {
        if (signal.aborted) throw signal.reason;
        if (!(err instanceof SessionGone)) throw err;
        // Gone before answering: the message was not judged; send it again on a fresh connection.
      }
    }
    const socket = await openSocket(endpoint, timeouts.connectTimeoutMs, signal, this.fildes);
    socket.write(Buffer.from('zIDSESSION\0', 'latin1'));
    const session = new Session(endpoint, socket);
    try {
      return await this.scanOn(session, message, signal, timeouts, path);
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      if (!(err instanceof SessionGone)) throw err;
      // clamd drops the connection when the stream passes StreamMaxLength; the reply saying so
      // can be lost when the close wins the race with our read.
      if (!err.finished) throw closedEarly(endpoint, message, err.sent, path === undefined ? 'instream' : 'fildes', err.cause);
      throw new BackendError(`clamd ${endpoint.text}: ${err.message}`, { cause: err.cause });
    }
  }

  private takeIdle(endpoint: Endpoint): Session | undefined {
    const list = this.idle.get(endpoint.text);
    while (list && list.length > 0) {
      const s = list.pop() as Session;
      s.unpark();
      if (!s.dead && !s.socket.destroyed) return s;
      s.kill();
    }
    return undefined;
  }

  private giveBack(session: Session): void {
    const settings = this.sessions;
    if (!settings || session.dead || session.socket.destroyed) {
      session.kill();
      return;
    }
    let list = this.idle.get(session.endpoint.text);
    if (!list) {
      list = [];
      this.idle.set(session.endpoint.text, list);
    }
    if (list.length >= settings.maxIdle) {
      session.end();
      return;
    }
    list.push(session);
    session.park(settings.idleMs, () => {
      const i = list.indexOf(session);
      if (i >= 0) list.splice(i, 1);
    });
  }

  /**
   * One INSTREAM (or FILDES of `path`) request in a session. The session goes back to the pool only
   * after a clean reply.
   */
  private async scanOn(session: Session, message: MessageView, signal: AbortSignal, timeouts: Timeouts, path: string | undefined): Promise<ClamdVerdict> {
    const { endpoint } = session;
    const id = session.nextId();
    const reply = await this.sessionRequest(session, message, signal, timeouts, path).catch((err: unknown) => {
      session.kill();
      throw err;
    });
    const m = /^(\d+): ([^]*)$/.exec(reply);
    if (!m && path !== undefined && REFUSAL.test(reply)) {
      // A clamd that will not take FILDES here may answer without the request number, and closes.
      session.kill();
      throw new FildesRefused(`FILDES answered ${JSON.stringify(reply.slice(0, 200))}`, true);
    }
    if (!m || Number(m[1]) !== id) {
      session.kill();
      throw new BackendError(`clamd ${endpoint.text}: unexpected reply in session ${JSON.stringify(reply.slice(0, 200))} (request ${id})`);
    }
    let verdict: ClamdVerdict;
    try {
      verdict = path === undefined ? verdictOf(endpoint, message, m[2] as string) : fildesVerdict(m[2] as string);
    } catch (err) {
      session.kill();
      throw err;
    }
    this.giveBack(session);
    return verdict;
  }

  /**
   * Stream the message as INSTREAM (or hand over the file `path` with FILDES) on the session's socket
   * and read one NUL-terminated reply.
   * Rejects with SessionGone when the connection closed or reset before any reply byte; with
   * BackendError on a read timeout, a socket error or an oversized/garbled reply; with
   * `signal.reason` on abort; with what the message stream threw when it cannot be read.
   */
  private sessionRequest(session: Session, message: MessageView, signal: AbortSignal, timeouts: Timeouts, path: string | undefined): Promise<string> {
    const { socket, endpoint } = session;
    const where = `clamd ${endpoint.text}`;
    const chunkBytes = this.chunkBytes;
    return new Promise<string>((resolve, reject) => {
      if (signal.aborted) {
        reject(signal.reason);
        return;
      }
      const chunks: Buffer[] = [];
      let received = 0;
      let settled = false;
      const progress = { sent: 0, finished: false };
      const stop = new AbortController();

      const cleanup = (): void => {
        settled = true;
        stop.abort();
        signal.removeEventListener('abort', onAbort);
        socket.setTimeout(0);
        socket.off('data', onData);
        socket.off('end', onGone);
        socket.off('close', onGone);
        socket.off('error', onError);
        socket.off('timeout', onTimeout);
      };
      const fail = (err: unknown): void => {
        if (settled) return;
        cleanup();
        socket.on('error', () => undefined);
        socket.destroy();
        reject(err);
      };
      const reply = (): string | undefined => replyText(Buffer.concat(chunks, received));
      const onGone = (err?: unknown): void => {
        if (settled) return;
        const text = reply();
        if (text !== undefined) {
          // Answered, then closed (clamd closes after an error reply): the reply still counts.
          cleanup();
          socket.destroy();
          resolve(text);
          return;
        }
        if (received > 0) {
          fail(new BackendError(`${where}: incomplete reply ${JSON.stringify(Buffer.concat(chunks, received).toString('utf8').slice(0, 200))}`, { cause: err }));
          return;
        }
        const why = `connection closed without a reply${err === undefined ? '' : ` (${textOf(err)})`}`;
        fail(new SessionGone(why, progress.sent, progress.finished, { cause: err }));
      };
      const onError = (err: Error): void => {
        if (PEER_GONE.has(codeOf(err))) onGone(err);
        else fail(new BackendError(`${where}: ${textOf(err)}`, { cause: err }));
      };
      const onTimeout = (): void => {
        fail(
          new BackendError(`${where}: no progress for ${timeouts.readTimeoutMs} ms, read timed out`, {
            cause: codedError(`read timeout after ${timeouts.readTimeoutMs} ms`, 'ETIMEDOUT'),
          }),
        );
      };
      const onAbort = (): void => fail(signal.reason);
      const onData = (data: Buffer): void => {
        if (settled) return;
        received += data.length;
        if (received > MAX_REPLY) {
          fail(new BackendError(`${where}: reply longer than ${MAX_REPLY} bytes`));
          return;
        }
        chunks.push(data);
        const whole = Buffer.concat(chunks, received);
        const end = whole.indexOf(NUL);
        if (end < 0) return;
        if (end !== whole.length - 1) {
          fail(new BackendError(`${where}: unexpected bytes after the reply in session ${JSON.stringify(whole.toString('utf8').slice(0, 200))}`));
          return;
        }
        cleanup();
        resolve(whole.subarray(0, end).toString('utf8'));
      };

      signal.addEventListener('abort', onAbort, { once: true });
      socket.on('data', onData);
      socket.on('end', onGone);
      socket.on('close', onGone);
      socket.on('error', onError);
      socket.setTimeout(timeouts.readTimeoutMs);
      socket.on('timeout', onTimeout);
      if (socket.destroyed) {
        onGone();
        return;
      }

      const writer = socketWriter(socket, () => settled || received > 0 || socket.destroyed, stop.signal);
      const send = () => (path === undefined ? sendInstream(writer, message, chunkBytes, progress) : sendFildes(writer, message, path, progress));
      send().then(
        () => undefined,
        (err: unknown) => {
          if (settled || err instanceof StopWriting) return;
          fail(err);
        },
      );
    });
  }

  /** `zPING`: resolves when an address answers PONG. */
  async ping(options: CallOptions): Promise<{ readonly ms: number; readonly address: string }> {
    const started = performance.now();
    const { address, text } = await this.command('PING', options);
    if (text !== 'PONG') throw new BackendError(`clamd ${address}: PING answered ${JSON.stringify(text)}`);
    return { ms: performance.now() - started, address };
  }

  /** `zVERSION`: e.g. `ClamAV 1.4.6/27000/...`. */
  async version(options: CallOptions): Promise<string> {
    return (await this.command('VERSION', options)).text;
  }

  private async command(name: string, options: CallOptions): Promise<{ address: string; text: string }> {
    const timeouts = resolveTimeouts(this.timeouts, options);
    return withFailover('clamd', this.pool, options.signal, async (endpoint) => {
      const reply = await exchange({
        ...timeouts,
        service: 'clamd',
        endpoint,
        signal: options.signal,
        send: async (w) => {
          await w.write(Buffer.from(`z${name}\0`, 'latin1'));
        },
        complete: nulTerminated,
        maxReplyBytes: MAX_REPLY,
      });
      const text = replyText(reply);
      if (text === undefined) throw new BackendError(`clamd ${endpoint.text}: incomplete reply to ${name}`);
      return { address: endpoint.text, text };
    });
  }
}
