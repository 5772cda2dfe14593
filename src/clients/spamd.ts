// spamd client: the SPAMC/1.5 protocol (HEADERS, CHECK, PING) over TCP or a Unix socket, with fail-over.

import type { HeaderField, MessageView } from '../pipeline/types.js';
import { BackendError } from '../plugin-api/define.js';
import {
  asBuffer,
  exchange,
  endpointPool,
  parseEndpoints,
  resolveTimeouts,
  withFailover,
  type PoolSettings,
  type CallOptions,
  type Endpoint,
  type Timeouts,
  type Writer,
} from './socket.js';
import type { BackendPool } from './pool.js';

export interface SpamdClientOptions extends Partial<Timeouts>, PoolSettings {
  /** `HOST:PORT` and/or Unix socket paths, tried in turn when one cannot be reached. */
  readonly addresses: readonly string[];
  /** Largest reply accepted (default 4 MiB; a HEADERS reply is the message's header block). */
  readonly maxReplyBytes?: number;
}

export interface SpamdCallOptions extends CallOptions {
  /** Sent as `User:`: spamd applies that user's preferences (threshold, scores...). */
  readonly user?: string;
}

export interface SpamdCheckResult {
  readonly isSpam: boolean;
  readonly score: number;
  /** The required score spamd applied (the user's `required_score`). */
  readonly threshold: number;
  readonly ms: number;
  readonly address: string;
}

export interface SpamdHeadersResult extends SpamdCheckResult {
  /** The `X-Spam-*` fields spamd wrote, in order; folded values keep their folds as "\n\t". */
  readonly headers: readonly HeaderField[];
  /** The whole header block spamd returned (the message's headers as spamd would rewrite them). */
  readonly raw: Buffer;
}

/** The connect and read timeouts of a call that sets none (the plugin documents them: backend.ts timeoutKeys). */
export const DEFAULT_TIMEOUTS: Timeouts = { connectTimeoutMs: 2_000, readTimeoutMs: 60_000 };
const CHUNK = 64 * 1024;

/** sysexits.h codes spamd answers with. */
const EX_NAMES: Readonly<Record<number, string>> = {
  64: 'EX_USAGE',
  65: 'EX_DATAERR',
  66: 'EX_NOINPUT',
  67: 'EX_NOUSER',
  68: 'EX_NOHOST',
  69: 'EX_UNAVAILABLE',
  70: 'EX_SOFTWARE',
  71: 'EX_OSERR',
  72: 'EX_OSFILE',
  73: 'EX_CANTCREAT',
  74: 'EX_IOERR',
  75: 'EX_TEMPFAIL',
  76: 'EX_PROTOCOL',
  77: 'EX_NOPERM',
  78: 'EX_CONFIG',
};

export interface SpamdReply {
  readonly code: number;
  readonly message: string;
  readonly headers: ReadonlyMap<string, string>;
  readonly body: Buffer;
}

/** Split a `SPAMD/1.x CODE MESSAGE` reply into status, headers (lower-cased names) and body. */
export function parseSpamdReply(reply: Buffer): SpamdReply {
  const headEnd = reply.indexOf('\r\n\r\n');
  const lineEnd = reply.indexOf('\r\n');
  const head = reply.subarray(0, headEnd >= 0 ? headEnd : lineEnd >= 0 ? lineEnd : reply.length).toString('latin1');
  const [status = '', ...lines] = head.split('\r\n');
  const m = /^SPAMD\/\d+\.\d+ (\d+) ?(.*)$/.exec(status);
  if (!m) throw new Error(`not a SPAMD reply: ${JSON.stringify(status.slice(0, 200))}`);
  const headers = new Map<string, string>();
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return { code: Number(m[1]), message: m[2] ?? '', headers, body: headEnd >= 0 ? reply.subarray(headEnd + 4) : Buffer.alloc(0) };
}

/** `Spam: True ; 5.8 / 3.0` (or Yes/No for REPORT_IFSPAM). */
export function parseSpamLine(value: string): { isSpam: boolean; score: number; threshold: number } | undefined {
  const m = /^(True|False|Yes|No)\s*;\s*(-?\d+(?:\.\d+)?)\s*\/\s*(-?\d+(?:\.\d+)?)\s*$/i.exec(value.trim());
  if (!m) return undefined;
  const flag = (m[1] as string).toLowerCase();
  return { isSpam: flag === 'true' || flag === 'yes', score: Number(m[2]), threshold: Number(m[3]) };
}

/**
 * The `X-Spam-*` fields of a header block. Continuation lines are kept, each fold written as "\n\t"
 * followed by the line's text, whatever the original line ending and indentation.
 */
export function spamHeaders(block: Buffer): HeaderField[] {
  const lines = block.toString('utf8').split(/\r?\n/);
  const fields: HeaderField[] = [];
  let current: { name: string; value: string } | undefined;
  for (const line of lines) {
    if (line === '') break;
    if (/^[ \t]/.test(line)) {
      if (current) current.value += `\n\t${line.replace(/^[ \t]+/, '')}`;
      continue;
    }
    if (current) fields.push(current);
    current = undefined;
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim();
    if (/^x-spam-/i.test(name)) current = { name, value: line.slice(colon + 1).replace(/^[ \t]+/, '').trimEnd() };
  }
  if (current) fields.push(current);
  return fields;
}

function checkUser(user: string | undefined): void {
  if (user === undefined) return;
  // The user becomes a protocol header (and a directory name in spamd's virtual config dir).
  // eslint-disable-next-line no-control-regex
  if (user.length === 0 || user.length > 512 || /[\x00-\x20\x7f]/.test(user)) {
    throw new TypeError(`spamd: unusable user name ${JSON.stringify(user)}`);
  }
}

export class SpamdClient {
  readonly endpoints: readonly Endpoint[];
  /** The endpoints as a pool: their balance, and those taken out for a while. */
  readonly pool: BackendPool<Endpoint>;
  private readonly timeouts: Timeouts;
  private readonly maxReplyBytes: number;

  constructor(options: SpamdClientOptions) {
    this.endpoints = parseEndpoints('spamd', options.addresses);
    this.timeouts = resolveTimeouts(DEFAULT_TIMEOUTS, options);
    this.pool = endpointPool('spamd', this.endpoints, options, this.timeouts.connectTimeoutMs);
    this.maxReplyBytes = options.maxReplyBytes ?? 4 * 1024 * 1024;
  }

  /** HEADERS: the verdict and the `X-Spam-*` header fields spamd would add. */
  async headers(message: MessageView, options: SpamdCallOptions): Promise<SpamdHeadersResult> {
    const started = performance.now();
    const { reply, address } = await this.request('HEADERS', message, options);
    const verdict = this.verdict(reply, address);
    const declared = reply.headers.get('content-length');
    if (declared !== undefined && Number(declared) !== reply.body.length) {
      throw new BackendError(`spamd ${address}: reply body is ${reply.body.length} bytes, Content-length said ${declared}`);
    }
    return { ...verdict, headers: spamHeaders(reply.body), raw: reply.body, ms: performance.now() - started, address };
  }

  /** CHECK: only the verdict. */
  async check(message: MessageView, options: SpamdCallOptions): Promise<SpamdCheckResult> {
    const started = performance.now();
    const { reply, address } = await this.request('CHECK', message, options);
    return { ...this.verdict(reply, address), ms: performance.now() - started, address };
  }

  /**
   * TELL (spamd --allow-tell): teach `message` as `spam` or `ham` to the Bayes database of `user`
   * (`Set: local`). `learned` is false when spamd did nothing (it knew the message already as that
   * class): spamd then answers EX_OK without a DidSet header.
   */
  async tell(message: MessageView, learnClass: 'spam' | 'ham', options: SpamdCallOptions): Promise<{ readonly learned: boolean; readonly ms: number; readonly address: string }> {
    const started = performance.now();
    // spamd learns anything but exactly `spam` as ham: say each class exactly.
    const { reply, address } = await this.request('TELL', message, options, `Message-class: ${learnClass}\r\nSet: local\r\n`);
    const did = reply.headers.get('didset');
    return { learned: did !== undefined && /\blocal\b/.test(did), ms: performance.now() - started, address };
  }

  /** PING: resolves when an address answers PONG. */
  async ping(options: CallOptions): Promise<{ readonly ms: number; readonly address: string }> {
    const started = performance.now();
    const { reply, address } = await this.request('PING', undefined, options);
    if (reply.code !== 0 || reply.message !== 'PONG') throw new BackendError(`spamd ${address}: PING answered ${reply.code} ${reply.message}`);
    return { ms: performance.now() - started, address };
  }

  private verdict(reply: SpamdReply, address: string): Omit<SpamdCheckResult, 'ms' | 'address'> {
    const spam = reply.headers.get('spam');
    const parsed = spam === undefined ? undefined : parseSpamLine(spam);
    if (!parsed) throw new BackendError(`spamd ${address}: reply without a usable Spam: header (${JSON.stringify(spam ?? null)})`);
    return parsed;
  }

  private async request(
    command: 'HEADERS' | 'CHECK' | 'PING' | 'TELL',
    message: MessageView | undefined,
    options: SpamdCallOptions,
    extra = '',
  ): Promise<{ reply: SpamdReply; address: string }> {
    checkUser(options.user);
    const timeouts = resolveTimeouts(this.timeouts, options);
    let head = `${command} SPAMC/1.5\r\n${extra}`;
    if (message) head += `Content-length: ${message.size}\r\n`;
    if (options.user !== undefined) head += `User: ${options.user}\r\n`;
    head += '\r\n';
    const send = async (w: Writer): Promise<void> => {
      // UTF-8: a user name (the recipient) written as latin1 would lose the high bytes of its characters.
      await w.write(Buffer.from(head, 'utf8'));
      if (message) await writeExactly(w, message);
      // spamd reads exactly Content-length bytes; the half-close tells it nothing more comes.
      w.end();
    };
    return withFailover('spamd', this.pool, options.signal, async (endpoint) => {
      const raw = await exchange({ ...timeouts, service: 'spamd', endpoint, signal: options.signal, send, maxReplyBytes: this.maxReplyBytes });
      let reply: SpamdReply;
      try {
        reply = parseSpamdReply(raw);
      } catch (err) {
        throw new BackendError(`spamd ${endpoint.text}: ${(err as Error).message}`, { cause: err });
      }
      if (reply.code !== 0) {
        const name = EX_NAMES[reply.code] ?? `code ${reply.code}`;
        throw new BackendError(`spamd ${endpoint.text}: ${name}: ${reply.message}`);
      }
      return { reply, address: endpoint.text };
    });
  }
}

/** Stream the message, checking it has exactly the size announced in Content-length. */
async function writeExactly(w: Writer, message: MessageView): Promise<void> {
  let sent = 0;
  const source = message.stream();
  try {
    for await (const chunk of source) {
      const buf = asBuffer(chunk);
      if (sent + buf.length > message.size) throw new Error(`message stream is longer than its size (${message.size} bytes)`);
      for (let i = 0; i < buf.length; i += CHUNK) await w.write(buf.subarray(i, Math.min(i + CHUNK, buf.length)));
      sent += buf.length;
    }
  } finally {
    source.destroy();
  }
  if (sent !== message.size) throw new Error(`message stream ended after ${sent} of ${message.size} bytes`);
}
