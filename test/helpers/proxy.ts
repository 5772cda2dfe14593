// Small TCP servers for the failure tests: a counting, recording proxy in front of a real daemon (which
// can also cut the daemon off while a request is in flight), and a server that accepts connections and
// never answers.

import { connect, createServer, type Server, type Socket } from 'node:net';

export interface Proxy {
  /** `127.0.0.1:PORT` */
  readonly address: string;
  readonly port: number;
  /** Connections accepted so far. */
  connections(): number;
  /** The first bytes each client sent (up to 64 KiB), per connection in order. */
  requests(): Buffer[];
  /**
   * Close the daemon side of every open connection without telling the clients: each client sees its
   * connection reset only when it next sends (a kept-alive connection the daemon closed meanwhile).
   */
  cut(): void;
  close(): Promise<void>;
}

export interface ProxyOptions {
  /** Called once per connection with its number when the client's first bytes arrive (see requestWhen). */
  onRequest?(n: number): void | Promise<void>;
  /**
   * When the request counts as arrived, given every byte of the connection so far (default: at its
   * first bytes): a client that writes its request in several pieces is then seen whole, however the
   * writes were scheduled.
   */
  requestWhen?(received: Buffer): boolean;
  /**
   * Connect to the target only once onRequest has finished, the client's bytes held until then: with
   * an onRequest that stops the daemon, the request is in flight when the daemon goes away.
   */
  hold?: boolean;
  /** Listen on this port (a backend that comes back where it was); default: any free one. */
  port?: number;
}

function closeServer(server: Server, sockets: Set<Socket>): Promise<void> {
  for (const s of sockets) s.destroy();
  return new Promise((resolve) => server.close(() => resolve()));
}

/** A proxy to `target` (`HOST:PORT` or a Unix socket path) on 127.0.0.1, port 0. */
export async function startProxy(target: string, options: ProxyOptions = {}): Promise<Proxy> {
  const sockets = new Set<Socket>();
  const cutters = new Set<() => void>();
  const seen: Buffer[] = [];
  let count = 0;
  const to = target.startsWith('/') ? { path: target } : { host: target.slice(0, target.lastIndexOf(':')), port: Number(target.slice(target.lastIndexOf(':') + 1)) };
  // Half-open allowed: spamd's client half-closes after its request and then waits for the reply.
  const server = createServer({ allowHalfOpen: true }, (client) => {
    const n = count++;
    seen[n] = Buffer.alloc(0);
    sockets.add(client);
    let upstream: Socket | undefined;
    const held: Buffer[] = [];
    let zombie = false;
    const cutter = () => {
      zombie = true;
      if (upstream) {
        upstream.off('close', end);
        upstream.off('error', end);
        client.unpipe(upstream);
        client.resume();
        upstream.destroy();
      }
    };
    cutters.add(cutter);
    const end = () => {
      cutters.delete(cutter);
      client.destroy();
      upstream?.destroy();
      sockets.delete(client);
      if (upstream) sockets.delete(upstream);
    };
    const link = () => {
      if (client.destroyed) return;
      upstream = connect({ ...to, allowHalfOpen: true } as never);
      sockets.add(upstream);
      for (const b of held.splice(0)) upstream.write(b);
      client.pipe(upstream);
      upstream.pipe(client);
      upstream.on('error', end);
      upstream.on('close', end);
    };
    let first = true;
    client.on('data', (d: Buffer) => {
      if (zombie) {
        client.resetAndDestroy();
        end();
        return;
      }
      if (seen[n]!.length < 65536) seen[n] = Buffer.concat([seen[n]!, d]);
      if (!upstream) held.push(d);
      if (first && (options.requestWhen?.(seen[n]!) ?? true)) {
        first = false;
        const hook = Promise.resolve().then(() => options.onRequest?.(n));
        if (options.hold) hook.then(link, end);
        else hook.catch(() => undefined);
      }
    });
    client.on('error', end);
    client.on('close', end);
    if (!options.hold) link();
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    address: `127.0.0.1:${port}`,
    port,
    connections: () => count,
    requests: () => [...seen],
    cut: () => {
      for (const c of [...cutters]) c();
    },
    close: () => closeServer(server, sockets),
  };
}

export interface Silent {
  readonly address: string;
  readonly port: number;
  connections(): number;
  close(): Promise<void>;
}

/** Accepts connections, reads whatever comes, never answers. */
export async function startSilentServer(): Promise<Silent> {
  const sockets = new Set<Socket>();
  let count = 0;
  const server = createServer({ allowHalfOpen: true }, (s) => {
    count++;
    sockets.add(s);
    s.on('data', () => undefined);
    s.on('error', () => undefined);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return { address: `127.0.0.1:${port}`, port, connections: () => count, close: () => closeServer(server, sockets) };
}
