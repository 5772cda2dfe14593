// The clients' shared behaviour against stand-in servers on real sockets: addresses, connect and read
// timeouts, aborts that really close the socket, fail-over, early replies, exact message sizes.

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { describe, test, type TestContext } from 'node:test';

import { ClamdClient } from '../../src/clients/clamd.js';
import { RspamdClient } from '../../src/clients/rspamd.js';
import { parseEndpoint } from '../../src/clients/socket.js';
import { SpamdClient } from '../../src/clients/spamd.js';
import type { MessageView } from '../../src/pipeline/types.js';
import { BackendError } from '../../src/plugin-api/define.js';
import { freePorts } from '../helpers/daemons.js';
import { bufferView, ham } from '../fixtures/messages.js';

/** No test may hang the suite. */
const LIMIT = { timeout: 60_000 };
const call = () => ({ signal: AbortSignal.timeout(10_000) });

/** A TCP server on 127.0.0.1; records its sockets. */
async function tcpServer(t: TestContext, onSocket: (s: Socket) => void): Promise<{ address: string; sockets: Socket[] }> {
  const sockets: Socket[] = [];
  // allowHalfOpen: the client's half-close (spamd requests end with one) must not close our side.
  const server: Server = createServer({ allowHalfOpen: true }, (s) => {
    sockets.push(s);
    s.on('error', () => undefined);
    onSocket(s);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  const port = (server.address() as { port: number }).port;
  return { address: `127.0.0.1:${port}`, sockets };
}

/**
 * Prove the client closed its end: writes to a socket the peer has closed fail (EPIPE/ECONNRESET),
 * while a peer that still held the connection would just receive them.
 */
async function assertPeerClosed(s: Socket | undefined): Promise<void> {
  assert.ok(s, 'the client never connected');
  const closed = once(s, 'close').catch(() => undefined);
  const deadline = performance.now() + 2_000;
  while (!s.destroyed && performance.now() < deadline) {
    s.write('x', () => undefined);
    await Promise.race([closed, new Promise((r) => setTimeout(r, 20))]);
  }
  assert.ok(s.destroyed, 'the client still holds the connection open');
}

/** A server that accepts, reads everything and never answers. */
const silent = (t: TestContext) => tcpServer(t, (s) => s.resume());

/**
 * An address whose connects hang: a listener in a stopped child process with its accept queue
 * full, so the kernel drops further SYNs.
 */
async function stalledAddress(t: TestContext): Promise<string> {
  const child: ChildProcess = spawn(
    process.execPath,
    ['-e', "const s=require('net').createServer();s.listen({port:0,host:'127.0.0.1',backlog:1},()=>console.log(s.address().port))"],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const fillers: Socket[] = [];
  t.after(() => {
    for (const f of fillers) f.destroy();
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const [line] = (await once(child.stdout!, 'data')) as [Buffer];
  const port = Number(line.toString().trim());
  process.kill(child.pid!, 'SIGSTOP');
  for (let i = 0; i < 16; i++) {
    const f = connect(port, '127.0.0.1');
    f.on('error', () => undefined);
    fillers.push(f);
    const ok = await Promise.race([once(f, 'connect').then(() => true), new Promise((r) => setTimeout(r, 300, false))]);
    if (!ok) return `127.0.0.1:${port}`;
  }
  throw new Error('could not fill the accept queue');
}

describe('parseEndpoint', LIMIT, () => {
  test('Unix paths and HOST:PORT', () => {
    assert.deepEqual(parseEndpoint('/run/clamd.sock'), { kind: 'unix', path: '/run/clamd.sock', text: '/run/clamd.sock' });
    assert.deepEqual(parseEndpoint('unix:/run/x.sock'), { kind: 'unix', path: '/run/x.sock', text: '/run/x.sock' });
    assert.deepEqual(parseEndpoint('127.0.0.1:3310'), { kind: 'tcp', host: '127.0.0.1', port: 3310, text: '127.0.0.1:3310' });
    assert.deepEqual(parseEndpoint('scanner.example:783'), { kind: 'tcp', host: 'scanner.example', port: 783, text: 'scanner.example:783' });
    assert.deepEqual(parseEndpoint('[::1]:783'), { kind: 'tcp', host: '::1', port: 783, text: '[::1]:783' });
  });
  test('anything else is refused', () => {
    for (const bad of ['', 'clamd.sock', 'unix:relative', 'host', 'host:0', 'host:70000', '[nothex]:1', 'a b:1', 'host:12x']) {
      assert.throws(() => parseEndpoint(bad), TypeError, bad);
    }
    assert.throws(() => new ClamdClient({ addresses: [] }), TypeError);
    assert.throws(() => new SpamdClient({ addresses: ['127.0.0.1:783'], readTimeoutMs: 0 }), RangeError);
    assert.throws(() => new RspamdClient({ urls: ['https://127.0.0.1:11333'] }), TypeError);
  });
});

describe('read timeout', LIMIT, () => {
  test('clamd: a server that never answers fails within the read timeout and the socket is closed', async (t) => {
    const srv = await silent(t);
    const client = new ClamdClient({ addresses: [srv.address], readTimeoutMs: 300 });
    const started = performance.now();
    await assert.rejects(client.scan(bufferView(ham(4096)), call()), (err: unknown) => {
      assert.ok(err instanceof BackendError);
      assert.equal((err.cause as { code?: string }).code, 'ETIMEDOUT');
      assert.match(err.message, /no progress for 300 ms/);
      return true;
    });
    const ms = performance.now() - started;
    assert.ok(ms >= 280 && ms < 1_500, `took ${ms} ms`);
    // Really cancelled: the connection is gone.
    await assertPeerClosed(srv.sockets[0]);
  });

  test('spamd: the same', async (t) => {
    const srv = await silent(t);
    const client = new SpamdClient({ addresses: [srv.address], readTimeoutMs: 300 });
    const started = performance.now();
    await assert.rejects(client.headers(bufferView(ham(4096)), { ...call(), user: 'alice@example.com' }), (err: unknown) => {
      assert.ok(err instanceof BackendError);
      assert.equal((err.cause as { code?: string }).code, 'ETIMEDOUT');
      return true;
    });
    const ms = performance.now() - started;
    assert.ok(ms >= 280 && ms < 1_500, `took ${ms} ms`);
    await assertPeerClosed(srv.sockets[0]);
  });

  test('rspamd: an HTTP server that never answers', async (t) => {
    const srv = await silent(t);
    const client = new RspamdClient({ urls: [`http://${srv.address}`], readTimeoutMs: 300 });
    t.after(() => client.close());
    const started = performance.now();
    await assert.rejects(client.check(bufferView(ham(4096)), { ...call(), from: 'a@example.net', rcpt: ['b@example.org'] }), (err: unknown) => {
      assert.ok(err instanceof BackendError);
      assert.equal((err.cause as { code?: string }).code, 'ETIMEDOUT');
      return true;
    });
    assert.ok(performance.now() - started < 1_500);
    await assertPeerClosed(srv.sockets[0]);
  });
});

describe('connect timeout and fail-over', LIMIT, () => {
  test('a connect that hangs times out and the next address is used', async (t) => {
    const stalled = await stalledAddress(t);
    const answering = await tcpServer(t, (s) => {
      s.on('data', (d: Buffer) => {
        if (d.includes(Buffer.alloc(4))) s.end('stream: OK\0');
      });
    });
    const client = new ClamdClient({ addresses: [stalled, answering.address], connectTimeoutMs: 300 });
    const started = performance.now();
    const r = await client.scan(bufferView(ham(1024)), call());
    const ms = performance.now() - started;
    assert.equal(r.address, answering.address);
    assert.equal(r.status, 'clean');
    assert.ok(ms >= 280 && ms < 2_000, `took ${ms} ms`);

    const only = new ClamdClient({ addresses: [stalled], connectTimeoutMs: 300 });
    await assert.rejects(only.ping(call()), (err: unknown) => {
      assert.ok(err instanceof BackendError);
      assert.match(err.message, /connect timeout after 300 ms/);
      assert.equal(((err.cause as AggregateError).errors[0] as { code: string }).code, 'ETIMEDOUT');
      return true;
    });
  });

  test('rspamd: refused URLs are skipped, the error names each one', async (t) => {
    const [dead1, dead2] = await freePorts(2);
    const client = new RspamdClient({ urls: [`http://127.0.0.1:${dead1}`, `http://127.0.0.1:${dead2}/`] });
    t.after(() => client.close());
    await assert.rejects(client.check(bufferView(ham(1024)), { ...call(), from: '', rcpt: [] }), (err: unknown) => {
      assert.ok(err instanceof BackendError);
      assert.ok(err.message.includes(`http://127.0.0.1:${dead1}: `) && err.message.includes(`http://127.0.0.1:${dead2}: `), err.message);
      assert.match(err.message, /ECONNREFUSED/);
      return true;
    });
  });
});

describe('abort', LIMIT, () => {
  test('aborting mid-call rejects with the reason at once and closes the socket', async (t) => {
    const srv = await silent(t);
    const client = new SpamdClient({ addresses: [srv.address] });
    const ac = new AbortController();
    const reason = new Error('deadline');
    setTimeout(() => ac.abort(reason), 100);
    const started = performance.now();
    await assert.rejects(client.check(bufferView(ham(4096)), { signal: ac.signal }), (err: unknown) => err === reason);
    assert.ok(performance.now() - started < 1_000);
    await assertPeerClosed(srv.sockets[0]);
  });

  test('an already aborted signal does not even connect', async (t) => {
    let connections = 0;
    const srv = await tcpServer(t, () => connections++);
    const client = new ClamdClient({ addresses: [srv.address] });
    await assert.rejects(client.scan(bufferView(ham(1024)), { signal: AbortSignal.abort(new Error('too late')) }), /too late/);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(connections, 0);
  });

  test('rspamd: aborting closes the HTTP connection', async (t) => {
    const srv = await silent(t);
    const client = new RspamdClient({ urls: [`http://${srv.address}`] });
    t.after(() => client.close());
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error('stop now')), 100);
    await assert.rejects(client.check(bufferView(ham(4096)), { signal: ac.signal, from: 'a@example.net', rcpt: ['b@example.org'] }), /stop now/);
    await assertPeerClosed(srv.sockets[0]);
  });
});

describe('spamd protocol edge cases (stand-in server)', LIMIT, () => {
  test('an EX_* error reply is a BackendError naming the code', async (t) => {
    const srv = await tcpServer(t, (s) => {
      s.once('data', () => s.end('SPAMD/1.0 76 Bad header line: Content-length\r\n'));
    });
    const client = new SpamdClient({ addresses: [srv.address] });
    await assert.rejects(client.check(bufferView(ham(1024)), call()), (err: unknown) => {
      assert.ok(err instanceof BackendError);
      assert.match(err.message, /EX_PROTOCOL: Bad header line/);
      return true;
    });
  });

  test('an early error reply sent while the message is still being written is not lost', async (t) => {
    const srv = await tcpServer(t, (s) => {
      s.once('data', () => {
        s.end('SPAMD/1.0 75 EX_TEMPFAIL busy\r\n');
        // Closing with unread data makes the kernel reset the connection: the client's writes fail.
        setTimeout(() => s.destroy(), 20);
      });
    });
    const client = new SpamdClient({ addresses: [srv.address] });
    await assert.rejects(client.check(bufferView(ham(8 * 1024 * 1024), 64 * 1024), call()), (err: unknown) => {
      assert.ok(err instanceof BackendError);
      assert.match(err.message, /EX_TEMPFAIL/);
      return true;
    });
  });

  test('Content-length is the exact size; a view whose stream disagrees fails without a verdict', async (t) => {
    const seen: Buffer[] = [];
    const srv = await tcpServer(t, (s) => {
      s.on('data', (d: Buffer) => seen.push(d));
      s.on('end', () => s.end('SPAMD/1.1 0 EX_OK\r\nSpam: False ; 1.0 / 5.0\r\n\r\n'));
    });
    const body = ham(3000);
    const client = new SpamdClient({ addresses: [srv.address] });
    const r = await client.check(bufferView(body, 1000), { ...call(), user: 'bob@example.org' });
    assert.deepEqual({ isSpam: r.isSpam, score: r.score, threshold: r.threshold }, { isSpam: false, score: 1, threshold: 5 });
    const sent = Buffer.concat(seen);
    const head = `CHECK SPAMC/1.5\r\nContent-length: ${body.length}\r\nUser: bob@example.org\r\n\r\n`;
    assert.equal(sent.subarray(0, head.length).toString('latin1'), head);
    assert.ok(sent.subarray(head.length).equals(body));

    const lying: MessageView = { ...bufferView(body), size: body.length + 10 };
    await assert.rejects(client.check(lying, call()), (err: unknown) => {
      assert.ok(!(err instanceof BackendError), 'a broken message view is not the backend failing');
      assert.equal((err as Error).message, `message stream ended after ${body.length} of ${body.length + 10} bytes`);
      return true;
    });
  });

  test('a user name with control characters is refused before connecting', async () => {
    const client = new SpamdClient({ addresses: ['127.0.0.1:1'] });
    await assert.rejects(client.check(bufferView(ham(100)), { ...call(), user: 'alice\r\nUser: root' }), TypeError);
  });
});

describe('rspamd HTTP details (stand-in server)', LIMIT, () => {
  async function httpServer(
    t: TestContext,
    handler: (req: IncomingMessage, res: ServerResponse, body: Buffer) => void,
  ): Promise<{ url: string; connections: () => number }> {
    let connections = 0;
    const server = createHttpServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (d: Buffer) => chunks.push(d));
      req.on('end', () => handler(req, res, Buffer.concat(chunks)));
    });
    server.on('connection', () => connections++);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    t.after(() => server.close());
    return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, connections: () => connections };
  }

  test('headers sent, body streamed with its exact length, connections kept alive', async (t) => {
    const requests: { headers: IncomingMessage['headers']; raw: string[]; body: Buffer; url: string | undefined }[] = [];
    const srv = await httpServer(t, (req, res, body) => {
      requests.push({ headers: req.headers, raw: req.rawHeaders, body, url: req.url });
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify({ action: 'no action', score: 0.5, required_score: 15, symbols: { A: {}, B: {} } }));
    });
    const client = new RspamdClient({ urls: [srv.url] });
    t.after(() => client.close());
    const body = ham(200 * 1024);
    const opts = {
      ...call(),
      from: '',
      rcpt: ['alice@example.com', 'bob@example.org'],
      ip: '192.0.2.7',
      helo: 'mx.example.net',
      queueId: 'Q1',
      settingsId: 'nqq_strict',
      user: 'sasl-user',
      deliverTo: 'alice@example.com',
    };
    const r1 = await client.check(bufferView(body), opts);
    const r2 = await client.check(bufferView(body), opts);
    assert.deepEqual(r1.symbols, ['A', 'B']);
    assert.equal(r2.score, 0.5);
    assert.equal(srv.connections(), 1, 'the second request reused the connection');
    const req = requests[0]!;
    assert.equal(req.url, '/checkv2');
    assert.ok(req.body.equals(body));
    assert.equal(req.headers['content-length'], String(body.length));
    const pairs: [string, string][] = [];
    for (let i = 0; i < req.raw.length; i += 2) pairs.push([req.raw[i]!, req.raw[i + 1]!]);
    const get = (n: string) => pairs.filter(([k]) => k.toLowerCase() === n.toLowerCase()).map(([, v]) => v);
    assert.deepEqual(get('Rcpt'), ['alice@example.com', 'bob@example.org']);
    assert.deepEqual(get('From'), ['<>']);
    assert.deepEqual(get('Hostname'), ['unknown']);
    assert.deepEqual(get('IP'), ['192.0.2.7']);
    assert.deepEqual(get('Helo'), ['mx.example.net']);
    assert.deepEqual(get('Queue-Id'), ['Q1']);
    assert.deepEqual(get('Settings-ID'), ['nqq_strict']);
    assert.deepEqual(get('User'), ['sasl-user']);
    assert.deepEqual(get('Deliver-To'), ['alice@example.com']);
  });

  test('a kept-alive connection the server dropped is retried once on a fresh one', async (t) => {
    const perSocket = new WeakMap<object, number>();
    let answered = 0;
    const srv = await httpServer(t, (req, res) => {
      const n = (perSocket.get(req.socket) ?? 0) + 1;
      perSocket.set(req.socket, n);
      // The second request on a connection finds it dead, as when the server's idle timer fires.
      if (n === 2) {
        req.socket.destroy();
        return;
      }
      answered++;
      res.end(JSON.stringify({ action: 'no action', score: n, required_score: 15, symbols: {} }));
    });
    const client = new RspamdClient({ urls: [srv.url] });
    t.after(() => client.close());
    const opts = { ...call(), from: 'a@example.net', rcpt: ['b@example.org'] };
    assert.equal((await client.check(bufferView(ham(2000)), opts)).action, 'no action');
    assert.equal((await client.check(bufferView(ham(2000)), opts)).action, 'no action');
    assert.equal(answered, 2);
    assert.equal(srv.connections(), 2);
  });

  test('a non-200 answer is a BackendError with rspamd\'s error text', async (t) => {
    const srv = await httpServer(t, (_req, res) => {
      res.statusCode = 500;
      res.end(JSON.stringify({ error: 'cannot parse message' }));
    });
    const client = new RspamdClient({ urls: [srv.url] });
    t.after(() => client.close());
    await assert.rejects(client.check(bufferView(ham(1000)), { ...call(), from: 'a@b', rcpt: ['c@d'] }), (err: unknown) => {
      assert.ok(err instanceof BackendError);
      assert.match(err.message, /HTTP 500 cannot parse message/);
      return true;
    });
  });

  test('a reply that is not rspamd JSON is a BackendError', async (t) => {
    const srv = await httpServer(t, (_req, res) => res.end('<html>proxy error</html>'));
    const client = new RspamdClient({ urls: [srv.url] });
    t.after(() => client.close());
    await assert.rejects(client.check(bufferView(ham(1000)), { ...call(), from: 'a@b', rcpt: ['c@d'] }), /unusable reply/);
  });

  test('header values with line breaks are refused', async () => {
    const client = new RspamdClient({ urls: ['http://127.0.0.1:1'] });
    await assert.rejects(client.check(bufferView(ham(100)), { ...call(), from: 'a@b\r\nX: y', rcpt: [] }), TypeError);
    client.close();
  });

  test('a body stream error fails the call with that error', async (t) => {
    const srv = await httpServer(t, (_req, res) => res.end('{}'));
    const client = new RspamdClient({ urls: [srv.url] });
    t.after(() => client.close());
    // Every way of reading the body fails (the client sends it from chunks()).
    const broken: MessageView = {
      ...bufferView(Buffer.alloc(10)),
      size: 100_000,
      stream: () =>
        new Readable({
          read() {
            this.destroy(new Error('disk read failed'));
          },
        }),
      // eslint-disable-next-line require-yield
      chunks: async function* () {
        throw new Error('disk read failed');
      },
    };
    await assert.rejects(client.check(broken, { ...call(), from: 'a@b', rcpt: ['c@d'] }), /disk read failed/);
  });
});
