// Shared plumbing of the backend clients: addresses, fail-over, and one request/reply exchange on a
// socket with connect and idle timeouts and an AbortSignal that really closes the socket.

import { once } from 'node:events';
import { connect, isIP, type Socket } from 'node:net';
import { isAbsolute } from 'node:path';
import { setImmediate as yieldToLoop } from 'node:timers/promises';

import { countBackend, failureEvent } from '../metrics/counter.js';
import { fdCapableSocket, FdPassingError, sendFile } from './fd-passing.js';
import { BackendPool, DEFAULT_BACKOFF_MS, DEFAULT_BALANCE, type Balance } from './pool.js';
import { BackendError } from '../plugin-api/define.js';

export type Endpoint =
  | { readonly kind: 'unix'; readonly path: string; readonly text: string }
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number; readonly text: string };

/** Timeouts of one backend call, in milliseconds. */
export interface Timeouts {
  /** Longest wait for a connection to be established (then the next address is tried). */
  readonly connectTimeoutMs: number;
  /**
   * Longest time with no progress once connected: no byte accepted by the backend and no byte of
   * reply. Covers the backend's thinking time, so it must exceed the slowest scan.
   */
  readonly readTimeoutMs: number;
}

/** Per-call options every client operation takes. */
export interface CallOptions extends Partial<Timeouts> {
  /** Aborting it stops the work at once: the socket is destroyed and the call rejects with `signal.reason`. */
  readonly signal: AbortSignal;
}

/**
 * Parse a backend address: an absolute path or `unix:PATH` is a Unix socket; `HOST:PORT` or
 * `[IPv6]:PORT` is TCP. Throws TypeError for anything else (plugins turn it into a config error).
 */
export function parseEndpoint(address: string): Endpoint {
  const text = address.trim();
  if (text.startsWith('unix:')) {
    const path = text.slice(5);
    if (!isAbsolute(path)) throw new TypeError(`socket path must be absolute: ${JSON.stringify(address)}`);
    return { kind: 'unix', path, text: path };
  }
  if (isAbsolute(text)) return { kind: 'unix', path: text, text };
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(text);
  if (!m) throw new TypeError(`not a socket path or HOST:PORT: ${JSON.stringify(address)}`);
  const host = (m[1] ?? m[2]) as string;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) throw new TypeError(`port out of range: ${JSON.stringify(address)}`);
  if (m[1] !== undefined && isIP(host) !== 6) throw new TypeError(`not an IPv6 address: ${JSON.stringify(address)}`);
  return { kind: 'tcp', host, port, text: m[1] !== undefined ? `[${host}]:${port}` : `${host}:${port}` };
}

export function parseEndpoints(service: string, addresses: readonly string[]): readonly Endpoint[] {
  if (addresses.length === 0) throw new TypeError(`${service}: at least one address is needed`);
  return Object.freeze(addresses.map(parseEndpoint));
}

/** How several addresses of one backend are used (the plugin's `balance=` and `backoff=`). */
export interface PoolSettings {
  readonly balance?: Balance;
  readonly backoffMs?: number;
}

/** A connection to `endpoint` and nothing more: the background probe of an address taken out. */
export function connectProbe(endpoint: Endpoint, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const sock = endpoint.kind === 'unix' ? connect({ path: endpoint.path }) : connect({ host: endpoint.host, port: endpoint.port });
    const timer = setTimeout(() => sock.destroy(codedError(`connect timed out after ${timeoutMs} ms`, 'ETIMEDOUT')), timeoutMs);
    timer.unref();
    sock.once('connect', () => {
      clearTimeout(timer);
      sock.destroy();
      resolve();
    });
    sock.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/** The endpoints of a client as a pool. */
export function endpointPool(service: string, endpoints: readonly Endpoint[], o: PoolSettings, connectTimeoutMs: number): BackendPool<Endpoint> {
  const byText = new Map(endpoints.map((e) => [e.text, e]));
  return new BackendPool(service, endpoints, {
    balance: o.balance ?? DEFAULT_BALANCE,
    backoffMs: o.backoffMs ?? DEFAULT_BACKOFF_MS,
    probe: (text) => connectProbe(byText.get(text)!, connectTimeoutMs),
  });
}

/** A failure to establish the connection: the next address may be tried. */
export class ConnectFailure extends Error {
  readonly code: string;
  constructor(message: string, code: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ConnectFailure';
    this.code = code;
  }
}

/** An error with a Node-style `code` (ETIMEDOUT...), used as the `cause` of a BackendError. */
export function codedError(message: string, code: string): Error & { code: string } {
  return Object.assign(new Error(message), { code });
}

function errorCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'EUNKNOWN';
}

function errorText(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
}

/**
 * Try `attempt` on each endpoint in turn while it fails to connect (refused, no such socket, connect
 * timeout); any other failure ends the call. When no endpoint could be reached, the BackendError
 * names each address and why; its cause is an AggregateError of the individual failures.
 */
export async function withFailover<T>(
  service: string,
  targets: readonly Endpoint[] | BackendPool<Endpoint>,
  signal: AbortSignal,
  attempt: (endpoint: Endpoint) => Promise<T>,
): Promise<T> {
  const failures: ConnectFailure[] = [];
  const reasons: string[] = [];
  const pool = targets instanceof BackendPool ? targets : undefined;
  const endpoints = pool ? pool.order() : (targets as readonly Endpoint[]);
  for (const [i, endpoint] of endpoints.entries()) {
    signal.throwIfAborted();
    try {
      const r = await attempt(endpoint);
      countBackend(service, endpoint.text, 'ok');
      pool?.succeeded(endpoint);
      return r;
    } catch (err) {
      // A call cut off by the caller (the plugin's or the message's deadline) says nothing of the backend.
      if (!signal.aborted) countBackend(service, endpoint.text, failureEvent(err));
      if (!(err instanceof ConnectFailure) || signal.aborted) throw err;
      pool?.failed(endpoint);
      if (i + 1 < endpoints.length) countBackend(service, endpoint.text, 'failover');
      failures.push(err);
      reasons.push(`${endpoint.text}: ${err.message}`);
    }
  }
  throw new BackendError(`${service}: cannot connect to any address (${reasons.join('; ')})`, {
    cause: new AggregateError(failures, `${service}: all addresses failed`),
  });
}

/** Writing side of an exchange, handed to the request writer. */
export interface Writer {
  /** Write with backpressure; throws once the exchange is over (reply arrived, failed, aborted). */
  write(chunk: Buffer): Promise<void>;
  /**
   * Write `command`, then one byte with the file `path` (of `size` bytes) attached as a descriptor:
   * only on a connection opened with `fdCapable`. FdPassingError when no descriptor could be sent.
   */
  sendFile(command: Buffer, path: string, size: number): Promise<void>;
  /** Half-close: the request is complete. */
  end(): void;
  /** True once the backend has started replying or the exchange is over: stop sending. */
  readonly stopped: boolean;
}

export interface ExchangeOptions extends Timeouts {
  readonly service: string;
  readonly endpoint: Endpoint;
  readonly signal: AbortSignal;
  /**
   * Writes the request. Socket errors surface through the exchange, not here; anything else it
   * throws (a message that cannot be read) fails the exchange with that error.
   */
  send(writer: Writer): Promise<void>;
  /** True when `reply` is a whole reply (the exchange ends without waiting for the peer to close). */
  complete?(reply: Buffer): boolean;
  /** Replies longer than this fail the call. */
  readonly maxReplyBytes: number;
  /** Open a Unix socket so that the request may attach a file (Writer.sendFile). */
  readonly fdCapable?: boolean;
}

/** Error codes that mean the backend closed or reset the connection. */
export const PEER_GONE: ReadonlySet<string> = new Set(['EPIPE', 'ECONNRESET', 'ECONNABORTED']);

/** Thrown by a Writer once the request is over: the sender stops quietly. */
export class StopWriting extends Error {
  constructor() {
    super('request is over');
    this.name = 'StopWriting';
  }
}

/**
 * A Writer on `socket`: writes with backpressure and stops (StopWriting) once `stopped()` says the
 * request is over or `stop` is aborted. Between writes it lets pending reads run, so an early reply is
 * seen before the next write fails with EPIPE (Node destroys the socket on a write error, and unread
 * data is lost).
 */
export function socketWriter(socket: Socket, stopped: () => boolean, stop: AbortSignal): Writer {
  return {
    get stopped() {
      return stopped();
    },
    async write(chunk: Buffer) {
      if (stopped()) throw new StopWriting();
      if (!socket.write(chunk)) {
        try {
          await once(socket, 'drain', { signal: stop });
        } catch {
          throw new StopWriting();
        }
      }
      await yieldToLoop();
      if (stopped()) throw new StopWriting();
    },
    async sendFile(command: Buffer, path: string, size: number) {
      if (stopped()) throw new StopWriting();
      // The descriptor goes out on the pipe itself, past net's queue: the command must be on its way
      // to the kernel first, so wait for its write to complete.
      await new Promise<void>((resolve, reject) => {
        socket.write(command, (err) => (err ? reject(new StopWriting()) : resolve()));
      });
      if (stopped()) throw new StopWriting();
      try {
        await sendFile(socket, path, size);
      } catch (err) {
        if (err instanceof FdPassingError) throw err;
        // The write failed: the backend went away, the exchange reports it from the socket's events.
        throw new StopWriting();
      }
    },
    end() {
      if (!socket.destroyed) socket.end();
    },
  };
}

/** A connection to a Unix socket; one that can carry a file descriptor when `fdCapable` (and Node can). */
export function connectUnix(path: string, fdCapable = false): Socket {
  const socket = fdCapable ? fdCapableSocket() : undefined;
  return socket ? socket.connect({ path }) : connect({ path });
}

/**
 * One request/reply exchange on a fresh connection. Resolves with the reply bytes when `complete`
 * says so, or when the backend closes. A backend may answer early and close while the request is
 * still being written (clamd's size limit, spamd's errors): the reply read so far is still returned.
 *
 * Rejects with ConnectFailure before the connection is up, with BackendError after, with
 * `signal.reason` when the signal aborts, and with what `send` threw when reading the message failed.
 * The socket is destroyed in every case.
 */
export function exchange(opts: ExchangeOptions): Promise<Buffer> {
  const { signal, endpoint, service } = opts;
  const where = `${service} ${endpoint.text}`;
  return new Promise<Buffer>((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const stop = new AbortController();
    const chunks: Buffer[] = [];
    let received = 0;
    let connected = false;
    let settled = false;

    const socket: Socket =
      endpoint.kind === 'unix' ? connectUnix(endpoint.path, opts.fdCapable) : connect({ host: endpoint.host, port: endpoint.port });

    const connectTimer = setTimeout(() => {
      fail(new ConnectFailure(`connect timeout after ${opts.connectTimeoutMs} ms`, 'ETIMEDOUT'));
    }, opts.connectTimeoutMs);

    const onAbort = (): void => fail(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });

    function finish(): void {
      settled = true;
      clearTimeout(connectTimer);
      signal.removeEventListener('abort', onAbort);
      stop.abort();
      socket.destroy();
    }
    function fail(err: unknown): void {
      if (settled) return;
      finish();
      reject(err);
    }
    function succeed(): void {
      if (settled) return;
      finish();
      resolve(Buffer.concat(chunks, received));
    }
    /** The backend is gone (closed or reset): use whatever reply came, or explain why there is none. */
    function peerGone(err?: unknown): void {
      if (settled) return;
      if (received > 0) {
        succeed();
        return;
      }
      fail(
        new BackendError(`${where}: connection closed without a reply${err === undefined ? '' : ` (${errorText(err)})`}`, {
          cause: err,
        }),
      );
    }

    const writer = socketWriter(socket, () => settled || received > 0 || socket.destroyed, stop.signal);

    socket.once('connect', () => {
      connected = true;
      clearTimeout(connectTimer);
      socket.setTimeout(opts.readTimeoutMs, () => {
        fail(
          new BackendError(`${where}: no progress for ${opts.readTimeoutMs} ms, read timed out`, {
            cause: codedError(`read timeout after ${opts.readTimeoutMs} ms`, 'ETIMEDOUT'),
          }),
        );
      });
      opts.send(writer).then(
        () => undefined,
        (err: unknown) => {
          // Socket errors arrive through the 'error' event (the writer turns them into StopWriting);
          // anything else comes from reading the message and is not the backend's fault: pass it on.
          if (settled || err instanceof StopWriting) return;
          fail(err);
        },
      );
    });

    socket.on('data', (data: Buffer) => {
      if (settled) return;
      received += data.length;
      if (received > opts.maxReplyBytes) {
        fail(new BackendError(`${where}: reply longer than ${opts.maxReplyBytes} bytes`));
        return;
      }
      chunks.push(data);
      if (opts.complete?.(Buffer.concat(chunks, received))) succeed();
    });
    socket.on('end', () => peerGone());
    socket.on('close', () => peerGone());
    socket.on('error', (err: Error) => {
      if (settled) return;
      if (!connected) {
        fail(new ConnectFailure(errorText(err), errorCode(err), { cause: err }));
      } else if (PEER_GONE.has(errorCode(err))) {
        peerGone(err);
      } else {
        fail(new BackendError(`${where}: ${errorText(err)}`, { cause: err }));
      }
    });
  });
}

/** Merge per-call timeouts over a client's defaults, checking they are usable. */
export function resolveTimeouts(defaults: Timeouts, call: Partial<Timeouts>): Timeouts {
  const connectTimeoutMs = call.connectTimeoutMs ?? defaults.connectTimeoutMs;
  const readTimeoutMs = call.readTimeoutMs ?? defaults.readTimeoutMs;
  for (const [name, v] of [
    ['connectTimeoutMs', connectTimeoutMs],
    ['readTimeoutMs', readTimeoutMs],
  ] as const) {
    if (!Number.isFinite(v) || v <= 0) throw new RangeError(`${name} must be a positive number of milliseconds`);
  }
  return { connectTimeoutMs, readTimeoutMs };
}

/** Split a stream's chunks into pieces of at most `max` bytes (no copying). */
export function* pieces(chunk: Buffer, max: number): Generator<Buffer> {
  for (let i = 0; i < chunk.length; i += max) yield chunk.subarray(i, Math.min(i + max, chunk.length));
}

/** A stream chunk as a Buffer (streams may hand out strings or Uint8Arrays). */
export function asBuffer(chunk: unknown): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  if (typeof chunk === 'string') return Buffer.from(chunk, 'latin1');
  throw new TypeError('message stream produced a non-byte chunk');
}
