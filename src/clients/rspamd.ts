// rspamd client: POST /checkv2 over HTTP with kept-alive connections, fail-over between URLs.

import { Agent, request, type ClientRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';

import { countBackend, failureEvent } from '../metrics/counter.js';
import type { HeaderField, MessageView } from '../pipeline/types.js';
import { BackendError } from '../plugin-api/define.js';
import { BackendPool, DEFAULT_BACKOFF_MS, DEFAULT_BALANCE } from './pool.js';
import { codedError, ConnectFailure, connectProbe, resolveTimeouts, type CallOptions, type PoolSettings, type Timeouts } from './socket.js';

export type RspamdAction = 'no action' | 'greylist' | 'add header' | 'rewrite subject' | 'soft reject' | 'reject';

export interface RspamdClientOptions extends Partial<Timeouts>, PoolSettings {
  /** Base URLs of rspamd normal workers (`http://HOST:PORT`), tried in turn when one cannot be reached. */
  readonly urls: readonly string[];
  /** Sent as `Password:` when set (needed only behind a controller/proxy that asks for it). */
  readonly password?: string;
  /** Largest JSON reply accepted (default 16 MiB). */
  readonly maxReplyBytes?: number;
  /** Idle kept-alive connections per URL (default RSPAMD_CONCURRENCY: those of a message's requests at once). */
  readonly maxFreeSockets?: number;
}

/** What rspamd is told about the message besides its bytes. */
export interface RspamdEnvelope {
  /** Envelope sender ('' for a bounce). */
  readonly from: string;
  /** Envelope recipients: one `Rcpt:` each. Settings rules matched by `rcpt` see all of them. */
  readonly rcpt: readonly string[];
  readonly ip?: string;
  readonly helo?: string;
  /** Client host name as resolved by the SMTP server; `unknown` is sent when missing (spares a DNS lookup). */
  readonly hostname?: string;
  /** Authenticated SMTP user. */
  readonly user?: string;
  readonly queueId?: string;
  /** A named settings rule to apply (`Settings-ID:`). */
  readonly settingsId?: string;
  readonly deliverTo?: string;
}

export interface RspamdCallOptions extends CallOptions, RspamdEnvelope {}

/** A header rspamd asks to add; `order` is rspamd's position hint when it gave one. */
export interface RspamdHeader extends HeaderField {
  readonly order?: number;
}

export interface RspamdResult {
  readonly action: RspamdAction | (string & {});
  readonly score: number;
  readonly requiredScore: number;
  /** Names of the symbols that matched. */
  readonly symbols: readonly string[];
  /** `messages.smtp_message`: the text rspamd wants the sender to see, if any. */
  readonly smtpMessage?: string;
  /** `milter.add_headers`, flattened in reply order; folded values use "\n\t". */
  readonly addHeaders: readonly RspamdHeader[];
  /** `milter.remove_headers`: header name and instance (0 = every instance). */
  readonly removeHeaders: readonly { readonly name: string; readonly index: number }[];
  /** New subject (action `rewrite subject`). */
  readonly subject?: string;
  readonly ms: number;
  /** The URL that answered. */
  readonly address: string;
  /** The parsed reply, for details this interface does not name. */
  readonly raw: Readonly<Record<string, unknown>>;
}

/** The connect and read timeouts of a call that sets none (the plugin documents them: backend.ts timeoutKeys). */
export const DEFAULT_TIMEOUTS: Timeouts = { connectTimeoutMs: 2_000, readTimeoutMs: 30_000 };

/**
 * Requests one rspamd takes at once with profit: its workers are asynchronous, each serving many
 * connections while it waits (Redis, its own timers), so a message's requests sent together finish
 * sooner than in turns (10 requests: 8 then 2 took ~1.17× all 10 at once). Each in flight holds one
 * connection and a reused 64 KB read buffer at most, whatever the message's size.
 */
export const RSPAMD_CONCURRENCY = 32;

interface Target {
  readonly text: string;
  readonly host: string;
  readonly port: number;
  readonly path: string;
}

function parseUrl(text: string): Target {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new TypeError(`rspamd: not a URL: ${JSON.stringify(text)}`);
  }
  if (url.protocol !== 'http:') throw new TypeError(`rspamd: only http:// URLs are supported: ${JSON.stringify(text)}`);
  if (url.username || url.password || url.search || url.hash) throw new TypeError(`rspamd: URL must be http://HOST:PORT[/PATH]: ${JSON.stringify(text)}`);
  const base = url.pathname.replace(/\/+$/, '');
  return {
    text: `${url.protocol}//${url.host}${base}`,
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port: url.port === '' ? 80 : Number(url.port),
    path: `${base}/checkv2`,
  };
}

// eslint-disable-next-line no-control-regex
const BAD_HEADER_VALUE = /[\x00-\x1f\x7f]/;

/**
 * An address or user name as the bytes of its UTF-8 form. Node writes header strings as latin1 and
 * refuses any character above U+00FF, so an internationalised address (or one whose bytes were not
 * UTF-8 at all, now U+FFFD) would otherwise make every request fail: a sender could choose to be
 * deferred for ever, or, under onerror=accept, to be delivered unscanned.
 */
function utf8Bytes(v: string): string {
  // eslint-disable-next-line no-control-regex
  return /^[\x00-\x7f]*$/.test(v) ? v : Buffer.from(v, 'utf8').toString('latin1');
}

function requestHeaders(size: number, env: RspamdEnvelope, password: string | undefined): OutgoingHttpHeaders {
  const h: Record<string, string | string[]> = {
    'Content-Length': String(size),
    From: env.from === '' ? '<>' : utf8Bytes(env.from),
    Hostname: env.hostname !== undefined && env.hostname !== '' ? env.hostname : 'unknown',
  };
  if (env.rcpt.length > 0) h.Rcpt = env.rcpt.map(utf8Bytes);
  if (env.ip) h.IP = env.ip;
  if (env.helo) h.Helo = env.helo;
  if (env.user) h.User = utf8Bytes(env.user);
  if (env.queueId) h['Queue-Id'] = env.queueId;
  if (env.settingsId) h['Settings-ID'] = env.settingsId;
  if (env.deliverTo) h['Deliver-To'] = utf8Bytes(env.deliverTo);
  if (password !== undefined) h.Password = password;
  for (const [name, value] of Object.entries(h)) {
    for (const v of Array.isArray(value) ? value : [value]) {
      if (BAD_HEADER_VALUE.test(v)) throw new TypeError(`rspamd: control character in ${name} ${JSON.stringify(v)}`);
    }
  }
  return h;
}

/** Fold markers of any style ("\r\n ", "\n    ") become "\n\t". */
function normaliseFolding(value: string): string {
  return value.replace(/\r?\n[ \t]*/g, '\n\t');
}

function headerEntries(name: string, spec: unknown, out: RspamdHeader[]): void {
  if (Array.isArray(spec)) {
    for (const s of spec) headerEntries(name, s, out);
  } else if (typeof spec === 'string') {
    out.push({ name, value: normaliseFolding(spec) });
  } else if (spec && typeof spec === 'object' && typeof (spec as { value?: unknown }).value === 'string') {
    const { value, order } = spec as { value: string; order?: unknown };
    out.push(typeof order === 'number' ? { name, value: normaliseFolding(value), order } : { name, value: normaliseFolding(value) });
  }
}

/** Turn a /checkv2 JSON reply into a result (without timing). */
export function parseCheckReply(json: unknown): Omit<RspamdResult, 'ms' | 'address'> {
  if (!json || typeof json !== 'object' || Array.isArray(json)) throw new Error('reply is not a JSON object');
  const r = json as Record<string, unknown>;
  if (typeof r.action !== 'string' || typeof r.score !== 'number') throw new Error('reply has no action/score');
  const symbols = r.symbols && typeof r.symbols === 'object' ? Object.keys(r.symbols) : [];
  const messages = r.messages && typeof r.messages === 'object' ? (r.messages as Record<string, unknown>) : {};
  const milter = r.milter && typeof r.milter === 'object' ? (r.milter as Record<string, unknown>) : {};
  const addHeaders: RspamdHeader[] = [];
  if (milter.add_headers && typeof milter.add_headers === 'object') {
    for (const [name, spec] of Object.entries(milter.add_headers as Record<string, unknown>)) headerEntries(name, spec, addHeaders);
  }
  const removeHeaders: { name: string; index: number }[] = [];
  if (milter.remove_headers && typeof milter.remove_headers === 'object') {
    for (const [name, index] of Object.entries(milter.remove_headers as Record<string, unknown>)) {
      removeHeaders.push({ name, index: typeof index === 'number' ? index : 0 });
    }
  }
  const result: Omit<RspamdResult, 'ms' | 'address'> = {
    action: r.action,
    score: r.score,
    requiredScore: typeof r.required_score === 'number' ? r.required_score : Number.NaN,
    symbols,
    addHeaders,
    removeHeaders,
    raw: r,
    ...(typeof messages.smtp_message === 'string' ? { smtpMessage: messages.smtp_message } : {}),
    ...(typeof r.subject === 'string' ? { subject: r.subject } : {}),
  };
  return result;
}

const PEER_GONE = new Set(['ECONNRESET', 'EPIPE']);

export class RspamdClient {
  readonly urls: readonly string[];
  private readonly targets: readonly Target[];
  /** The URLs as a pool: their balance, and those taken out for a while. */
  readonly pool: BackendPool<Target>;
  private readonly timeouts: Timeouts;
  private readonly agent: Agent;
  private readonly password: string | undefined;
  private readonly maxReplyBytes: number;

  constructor(options: RspamdClientOptions) {
    if (options.urls.length === 0) throw new TypeError('rspamd: at least one URL is needed');
    this.targets = Object.freeze(options.urls.map(parseUrl));
    this.urls = Object.freeze(this.targets.map((t) => t.text));
    this.timeouts = resolveTimeouts(DEFAULT_TIMEOUTS, options);
    const byText = new Map(this.targets.map((t) => [t.text, t]));
    this.pool = new BackendPool('rspamd', this.targets, {
      balance: options.balance ?? DEFAULT_BALANCE,
      backoffMs: options.backoffMs ?? DEFAULT_BACKOFF_MS,
      probe: (text) => {
        const t = byText.get(text)!;
        return connectProbe({ kind: 'tcp', host: t.host, port: t.port, text: `${t.host}:${t.port}` }, this.timeouts.connectTimeoutMs);
      },
    });
    this.password = options.password;
    this.maxReplyBytes = options.maxReplyBytes ?? 16 * 1024 * 1024;
    // As many idle connections kept as requests go out at once: a message's burst must not close some
    // of them, for the next message to open them again. No maxSockets: a request never waits for a
    // socket here (its connect timeout would run while it waited), the fan-out bound is the limit.
    this.agent = new Agent({ keepAlive: true, maxFreeSockets: options.maxFreeSockets ?? RSPAMD_CONCURRENCY, scheduling: 'lifo' });
  }

  /** Close kept-alive connections (the client is unusable afterwards). */
  close(): void {
    this.agent.destroy();
  }

  /** POST /checkv2. Non-200 answers, bad JSON and lost connections are BackendErrors. */
  async check(message: MessageView, options: RspamdCallOptions): Promise<RspamdResult> {
    const started = performance.now();
    const timeouts = resolveTimeouts(this.timeouts, options);
    const headers = requestHeaders(message.size, options, this.password);
    const { signal } = options;
    const reasons: string[] = [];
    const failures: Error[] = [];
    const order = this.pool.order();
    for (const [i, target] of order.entries()) {
      signal.throwIfAborted();
      try {
        let body: Buffer;
        try {
          body = await this.send('POST', target, headers, message, timeouts, signal, true);
        } catch (err) {
          // A kept-alive connection the server closed meanwhile: retry once on a fresh one.
          if (!(err instanceof StaleSocket)) throw err;
          body = await this.send('POST', target, headers, message, timeouts, signal, false);
        }
        let parsed: Omit<RspamdResult, 'ms' | 'address'>;
        try {
          parsed = parseCheckReply(JSON.parse(body.toString('utf8')));
        } catch (err) {
          throw new BackendError(`rspamd ${target.text}: unusable reply: ${(err as Error).message}`, { cause: err });
        }
        countBackend('rspamd', target.text, 'ok');
        this.pool.succeeded(target);
        return { ...parsed, ms: performance.now() - started, address: target.text };
      } catch (err) {
        // A call cut off by the caller (the plugin's or the message's deadline) says nothing of rspamd.
        if (!signal.aborted) countBackend('rspamd', target.text, failureEvent(err));
        if (!(err instanceof ConnectFailure) || signal.aborted) throw err;
        this.pool.failed(target);
        if (i + 1 < order.length) countBackend('rspamd', target.text, 'failover');
        failures.push(err);
        reasons.push(`${target.text}: ${err.message}`);
      }
    }
    throw new BackendError(`rspamd: cannot connect to any address (${reasons.join('; ')})`, {
      cause: new AggregateError(failures, 'rspamd: all addresses failed'),
    });
  }

  /** GET /ping on each URL in turn until one answers `pong`. */
  async ping(options: CallOptions): Promise<{ readonly ms: number; readonly address: string }> {
    const started = performance.now();
    const timeouts = resolveTimeouts(this.timeouts, options);
    const reasons: string[] = [];
    for (const target of this.targets) {
      options.signal.throwIfAborted();
      try {
        const body = await this.send('GET', { ...target, path: target.path.replace(/checkv2$/, 'ping') }, {}, undefined, timeouts, options.signal, false);
        if (body.toString('utf8').trim() !== 'pong') throw new BackendError(`rspamd ${target.text}: /ping answered ${JSON.stringify(body.toString('utf8').slice(0, 100))}`);
        return { ms: performance.now() - started, address: target.text };
      } catch (err) {
        if (!(err instanceof ConnectFailure) || options.signal.aborted) throw err;
        reasons.push(`${target.text}: ${err.message}`);
      }
    }
    throw new BackendError(`rspamd: cannot connect to any address (${reasons.join('; ')})`);
  }

  /**
   * One HTTP exchange. Rejects with ConnectFailure when no connection could be made, StaleSocket
   * when a reused connection died before any reply (safe to retry), BackendError otherwise, and
   * `signal.reason` on abort; the request and its socket are destroyed in every failure.
   */
  private send(
    method: 'GET' | 'POST',
    target: Target,
    headers: OutgoingHttpHeaders,
    message: MessageView | undefined,
    timeouts: Timeouts,
    signal: AbortSignal,
    mayReuse: boolean,
  ): Promise<Buffer> {
    const where = `rspamd ${target.text}`;
    return new Promise<Buffer>((resolve, reject) => {
      if (signal.aborted) {
        reject(signal.reason);
        return;
      }
      let settled = false;
      let connected = false;
      let responded = false;
      let req: ClientRequest | undefined;
      let stop: () => void = () => {};
      const stopped = new Promise<void>((res) => {
        stop = res;
      });
      const connectTimer = setTimeout(() => {
        fail(new ConnectFailure(`connect timeout after ${timeouts.connectTimeoutMs} ms`, 'ETIMEDOUT'));
      }, timeouts.connectTimeoutMs);
      const onAbort = (): void => fail(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });

      function cleanup(): void {
        settled = true;
        stop();
        clearTimeout(connectTimer);
        signal.removeEventListener('abort', onAbort);
      }
      function fail(err: unknown): void {
        if (settled) return;
        cleanup();
        // Destroying the request destroys its socket: a half-used connection never goes back to the pool.
        req?.destroy();
        reject(err);
      }

      req = request({
        method,
        host: target.host,
        port: target.port,
        path: target.path,
        headers,
        // A fresh Agent-less connection when a reused one just failed: never two stale sockets in a row.
        agent: mayReuse ? this.agent : false,
      });

      const onConnected = (): void => {
        if (connected || settled) return;
        connected = true;
        clearTimeout(connectTimer);
        req?.setTimeout(timeouts.readTimeoutMs, () => {
          fail(new BackendError(`${where}: no progress for ${timeouts.readTimeoutMs} ms, read timed out`, { cause: codedError(`read timeout after ${timeouts.readTimeoutMs} ms`, 'ETIMEDOUT') }));
        });
      };
      req.on('socket', (socket: Socket) => {
        if (!socket.connecting) onConnected();
        else socket.once('connect', onConnected);
      });

      req.on('error', (err: Error & { code?: string }) => {
        if (settled) return;
        if (!connected) fail(new ConnectFailure(err.code ? `${err.code}: ${err.message}` : err.message, err.code ?? 'EUNKNOWN', { cause: err }));
        else if (!responded && req?.reusedSocket && PEER_GONE.has(err.code ?? '')) fail(new StaleSocket(err));
        else fail(new BackendError(`${where}: ${err.code ? `${err.code}: ` : ''}${err.message}`, { cause: err }));
      });

      req.on('response', (res: IncomingMessage) => {
        responded = true;
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (d: Buffer) => {
          size += d.length;
          if (size > this.maxReplyBytes) {
            fail(new BackendError(`${where}: reply longer than ${this.maxReplyBytes} bytes`));
            return;
          }
          chunks.push(d);
        });
        res.on('error', (err) => fail(new BackendError(`${where}: ${err.message}`, { cause: err })));
        res.on('close', () => {
          if (!res.complete) fail(new BackendError(`${where}: reply cut short`));
        });
        res.on('end', () => {
          if (settled) return;
          const body = Buffer.concat(chunks, size);
          if (res.statusCode !== 200) {
            fail(new BackendError(`${where}: HTTP ${res.statusCode} ${describeErrorBody(body)}`));
            return;
          }
          if (!res.complete) {
            fail(new BackendError(`${where}: reply cut short`));
            return;
          }
          cleanup();
          resolve(body);
        });
      });

      if (!message) {
        req.end();
        return;
      }
      // The body chunk by chunk from one reused buffer, each written out before the next is read (so
      // a large message makes no garbage, however many requests are in flight); a read error aborts
      // the request. A view whose bytes disagree with its size is an error, never a short or padded body.
      const size = message.size;
      const sending = async (): Promise<void> => {
        let sent = 0;
        for await (const chunk of message.chunks()) {
          if (settled) return;
          sent += chunk.length;
          if (sent > size) throw new Error(`message stream is longer than its size (${size} bytes)`);
          // A destroyed request may never call back: `stopped` ends the wait then.
          await Promise.race([new Promise<void>((res, rej) => req!.write(chunk, (err) => (err ? rej(err) : res()))), stopped]);
          if (settled) return;
        }
        if (sent !== size) throw new Error(`message stream ended after ${sent} of ${size} bytes`);
        req?.end();
      };
      sending().catch((err: unknown) => fail(err));
    });
  }
}

/** A kept-alive connection that turned out closed before any reply: the request can be retried. */
class StaleSocket extends Error {
  constructor(cause: Error) {
    super(`kept-alive connection closed: ${cause.message}`, { cause });
    this.name = 'StaleSocket';
  }
}

function describeErrorBody(body: Buffer): string {
  const text = body.toString('utf8').slice(0, 500);
  try {
    const j = JSON.parse(text) as { error?: unknown };
    if (typeof j.error === 'string') return j.error;
  } catch {
    // not JSON: show it as text
  }
  return JSON.stringify(text);
}
