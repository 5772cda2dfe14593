// clamd client: INSTREAM scans, PING and VERSION over a Unix socket or TCP, with fail-over.

import type { MessageView } from '../pipeline/types.js';
import { BackendError } from '../plugin-api/define.js';
import {
  asBuffer,
  exchange,
  parseEndpoints,
  pieces,
  resolveTimeouts,
  withFailover,
  type CallOptions,
  type Endpoint,
  type Timeouts,
  type Writer,
} from './socket.js';

export type ClamdVerdict = { readonly status: 'clean' } | { readonly status: 'virus'; readonly name: string };

/** A scan result: the verdict, how long the call took, and the address that answered. */
export type ClamdScanResult = ClamdVerdict & { readonly ms: number; readonly address: string };

export interface ClamdClientOptions extends Partial<Timeouts> {
  /** Unix socket paths (absolute, or `unix:PATH`) and/or `HOST:PORT`, tried in turn when one cannot be reached. */
  readonly addresses: readonly string[];
  /** Largest INSTREAM chunk sent (default 64 KiB). */
  readonly chunkBytes?: number;
}

const DEFAULTS: Timeouts = { connectTimeoutMs: 2_000, readTimeoutMs: 30_000 };
const MAX_REPLY = 64 * 1024;
const NUL = 0;

/** A complete z-command reply ends with NUL. */
const nulTerminated = (reply: Buffer): boolean => reply.includes(NUL);

/** The reply text without its terminator; undefined when it never came. */
function replyText(reply: Buffer): string | undefined {
  const end = reply.indexOf(NUL);
  return end < 0 ? undefined : reply.subarray(0, end).toString('utf8');
}

/** Interpret a `zINSTREAM` reply: `stream: OK`, `stream: NAME FOUND`, `... ERROR`. */
export function parseScanReply(text: string): ClamdVerdict | { readonly status: 'error'; readonly message: string } {
  const body = text.startsWith('stream: ') ? text.slice('stream: '.length) : text;
  if (body === 'OK') return { status: 'clean' };
  if (body.endsWith(' FOUND')) {
    const name = body.slice(0, -' FOUND'.length).trim();
    if (name.length > 0) return { status: 'virus', name };
  }
  if (body.endsWith(' ERROR')) return { status: 'error', message: body.slice(0, -' ERROR'.length).trim() };
  return { status: 'error', message: `unexpected reply ${JSON.stringify(text.slice(0, 200))}` };
}

export class ClamdClient {
  readonly endpoints: readonly Endpoint[];
  private readonly timeouts: Timeouts;
  private readonly chunkBytes: number;

  constructor(options: ClamdClientOptions) {
    this.endpoints = parseEndpoints('clamd', options.addresses);
    this.timeouts = resolveTimeouts(DEFAULTS, options);
    this.chunkBytes = options.chunkBytes ?? 64 * 1024;
    if (!Number.isInteger(this.chunkBytes) || this.chunkBytes < 1 || this.chunkBytes > 0x7fffffff) {
      throw new RangeError('chunkBytes must be a positive integer');
    }
  }

  /** Scan a message with INSTREAM. A virus is a result, not an error; clamd errors are BackendErrors. */
  async scan(message: MessageView, options: CallOptions): Promise<ClamdScanResult> {
    const started = performance.now();
    const timeouts = resolveTimeouts(this.timeouts, options);
    return withFailover('clamd', this.endpoints, options.signal, async (endpoint) => {
      let sent = 0;
      let finished = false;
      const send = async (w: Writer): Promise<void> => {
        await w.write(Buffer.from('zINSTREAM\0', 'latin1'));
        const source = message.stream();
        try {
          for await (const chunk of source) {
            for (const piece of pieces(asBuffer(chunk), this.chunkBytes)) {
              const frame = Buffer.allocUnsafe(4 + piece.length);
              frame.writeUInt32BE(piece.length, 0);
              piece.copy(frame, 4);
              await w.write(frame);
              sent += piece.length;
            }
          }
        } finally {
          source.destroy();
        }
        await w.write(Buffer.alloc(4));
        finished = true;
      };
      let reply: Buffer;
      try {
        reply = await exchange({ ...timeouts, service: 'clamd', endpoint, signal: options.signal, send, complete: nulTerminated, maxReplyBytes: MAX_REPLY });
      } catch (err) {
        if (err instanceof BackendError && !finished && !options.signal.aborted && /closed without a reply/.test(err.message)) {
          // clamd drops the connection when the stream passes StreamMaxLength; the reply saying so
          // can be lost when the close wins the race with our read.
          throw new BackendError(
            `clamd ${endpoint.text}: connection closed after ${sent} of ${message.size} bytes without a reply ` +
              '(INSTREAM size limit exceeded? clamd StreamMaxLength is probably smaller than the message)',
            { cause: err },
          );
        }
        throw err;
      }
      const text = replyText(reply);
      if (text === undefined) throw new BackendError(`clamd ${endpoint.text}: incomplete reply ${JSON.stringify(reply.toString('utf8').slice(0, 200))}`);
      const verdict = parseScanReply(text);
      if (verdict.status === 'error') {
        const hint = /size limit exceeded/i.test(verdict.message)
          ? ` (message of ${message.size} bytes is larger than clamd's StreamMaxLength)`
          : '';
        throw new BackendError(`clamd ${endpoint.text}: ${verdict.message}${hint}`);
      }
      return { ...verdict, ms: performance.now() - started, address: endpoint.text };
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
    return withFailover('clamd', this.endpoints, options.signal, async (endpoint) => {
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
