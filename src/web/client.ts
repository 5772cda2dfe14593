// Who is asking, and over what: the client's address (for the audit log and the login limits) and
// whether the browser reached us over TLS (for Secure cookies). Behind a reverse proxy both come from
// X-Forwarded-For / X-Forwarded-Proto — but only when trust_proxy = yes and the peer is the proxy on
// this host (loopback or the Unix socket); from anyone else those headers are whatever they wrote.

import { isIP } from 'node:net';

import type { IncomingMessage } from 'node:http';

export interface ClientView {
  /** An IP address, or `local` for a peer on the Unix socket with no proxy header. */
  readonly ip: string;
  readonly https: boolean;
}

export function isLoopback(addr: string): boolean {
  const a = addr.replace(/^::ffff:/i, '');
  return a === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(a) || a === 'localhost';
}

/** The last value of a header (the one the nearest proxy wrote: it appends to what came before). */
function last(value: string | string[] | undefined): string | undefined {
  const text = Array.isArray(value) ? value.join(',') : value;
  if (text === undefined) return undefined;
  const parts = text
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  return parts[parts.length - 1];
}

export function clientOf(req: IncomingMessage, o: { trustProxy: boolean; httpsUrl: boolean }): ClientView {
  const peer = req.socket.remoteAddress;
  const fromProxy = o.trustProxy && (peer === undefined || isLoopback(peer));
  let ip = peer === undefined ? 'local' : peer.replace(/^::ffff:/i, '');
  let https = o.httpsUrl;
  if (fromProxy) {
    const forwarded = last(req.headers['x-forwarded-for']);
    if (forwarded !== undefined && isIP(forwarded) !== 0) ip = forwarded.replace(/^::ffff:/i, '');
    if (last(req.headers['x-forwarded-proto'])?.toLowerCase() === 'https') https = true;
  }
  return { ip, https };
}
