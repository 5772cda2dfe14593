// The /metrics listener of `nqqueue serve`: plain node:http on the address of the `metrics` setting,
// GET /metrics answered with the text exposition format, anything else 404. Nothing here reads a
// request body or keeps a connection long.

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import type { MetricsListen } from './listen.js';

export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export async function listenMetrics(at: MetricsListen, exposition: () => Promise<string>): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?', 1)[0];
    if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(path === '/metrics' ? 405 : 404, { 'content-type': 'text/plain; charset=utf-8' }).end(path === '/metrics' ? 'GET only\n' : 'not found: try /metrics\n');
      return;
    }
    exposition().then(
      (text) => {
        res.writeHead(200, { 'content-type': CONTENT_TYPE, 'cache-control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : text);
      },
      () => res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('metrics unavailable\n'),
    );
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(at.port, at.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const a = server.address() as AddressInfo;
  const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
  return { server, url: `http://${host}:${a.port}/metrics` };
}
