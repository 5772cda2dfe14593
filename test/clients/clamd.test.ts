// clamd client against a real clamd (started by scripts/run-tests.js, or privately here).

import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';

import { ClamdClient, parseScanReply } from '../../src/clients/clamd.js';
import { BackendError } from '../../src/plugin-api/define.js';
import { freePort, requireDaemon, startClamd } from '../helpers/daemons.js';
import { startProxy } from '../helpers/proxy.js';
import { bufferView, eicarAttachment, eicarPlain, eicarZipAttachment, ham, withAttachment } from '../fixtures/messages.js';

/** No test may hang the suite. */
const LIMIT = { timeout: 60_000 };
const EICAR_NAME = 'Eicar-Test-NDB.UNOFFICIAL';
const call = () => ({ signal: AbortSignal.timeout(20_000) });

describe('parseScanReply', LIMIT, () => {
  test('reads OK, FOUND and ERROR replies', () => {
    assert.deepEqual(parseScanReply('stream: OK'), { status: 'clean' });
    assert.deepEqual(parseScanReply('stream: Win.Test.EICAR_HDB-1 FOUND'), { status: 'virus', name: 'Win.Test.EICAR_HDB-1' });
    assert.deepEqual(parseScanReply('INSTREAM size limit exceeded. ERROR'), { status: 'error', message: 'INSTREAM size limit exceeded.' });
    assert.equal(parseScanReply('stream:  FOUND').status, 'error');
    assert.equal(parseScanReply('UNKNOWN COMMAND').status, 'error');
  });
});

for (const transport of ['unix', 'tcp'] as const) {
  const variable = transport === 'unix' ? 'NQQ_TEST_CLAMD_SOCKET' : 'NQQ_TEST_CLAMD_TCP';

  describe(`clamd over ${transport}`, LIMIT, () => {
    test('PING and VERSION', async (t) => {
      const address = requireDaemon(variable, t);
      if (!address) return;
      const client = new ClamdClient({ addresses: [address] });
      const pong = await client.ping(call());
      assert.equal(pong.address, address);
      assert.match(await client.version(call()), /^ClamAV \d+\.\d+/);
    });

    test('a clean message is clean', async (t) => {
      const address = requireDaemon(variable, t);
      if (!address) return;
      const client = new ClamdClient({ addresses: [address] });
      const r = await client.scan(bufferView(ham(10 * 1024)), call());
      assert.equal(r.status, 'clean');
      assert.equal(r.address, address);
      assert.ok(r.ms > 0 && r.ms < 10_000, `ms=${r.ms}`);
    });

    const carriers: [string, () => Buffer][] = [
      ['EICAR in a plain body', eicarPlain],
      ['EICAR in a base64 attachment', eicarAttachment],
      ['EICAR inside a zip attachment', eicarZipAttachment],
    ];
    for (const [name, make] of carriers) {
      test(`${name} is a virus`, async (t) => {
        const address = requireDaemon(variable, t);
        if (!address) return;
        const client = new ClamdClient({ addresses: [address] });
        const r = await client.scan(bufferView(make()), call());
        assert.deepEqual({ status: r.status, name: r.status === 'virus' ? r.name : undefined }, { status: 'virus', name: EICAR_NAME });
      });
    }

    test('the message is streamed in small chunks across INSTREAM frames', async (t) => {
      const address = requireDaemon(variable, t);
      if (!address) return;
      // 7-byte stream chunks and 5-byte frames: EICAR is split across many frames and still found.
      const client = new ClamdClient({ addresses: [address], chunkBytes: 5 });
      const r = await client.scan(bufferView(eicarPlain(), 7), call());
      assert.equal(r.status, 'virus');
    });
  });
}

test('clam.exe from clamav-testfiles in a zip attachment is found by the generated .hdb', LIMIT, async (t) => {
  const address = requireDaemon('NQQ_TEST_CLAMD_SOCKET', t);
  if (!address) return;
  const zip = '/usr/share/clamav-testfiles/clam.zip';
  if (!existsSync(zip)) {
    if (process.env.CI === 'true') assert.fail(`${zip} is missing: install clamav-testfiles`);
    t.skip('clamav-testfiles not installed');
    return;
  }
  const client = new ClamdClient({ addresses: [address] });
  const r = await client.scan(bufferView(withAttachment('clam.zip', 'application/zip', readFileSync(zip))), call());
  assert.deepEqual(r.status === 'virus' ? r.name : r.status, 'Clam-Test-HDB.UNOFFICIAL');
});

test('a 5 MB message is streamed and scanned', LIMIT, async (t) => {
  const address = requireDaemon('NQQ_TEST_CLAMD_SOCKET', t);
  if (!address) return;
  const client = new ClamdClient({ addresses: [address] });
  const big = Buffer.concat([ham(5 * 1024 * 1024), eicarPlain()]);
  const r = await client.scan(bufferView(big, 256 * 1024), call());
  assert.equal(r.status, 'virus');
});

test('a message over StreamMaxLength is a BackendError naming the size limit', LIMIT, async (t) => {
  if (!requireDaemon('NQQ_TEST_CLAMD_SOCKET', t)) return;
  const clamd = await startClamd(undefined, { streamMaxLength: '100K' });
  t.after(() => clamd.stop());
  for (const address of [clamd.socket, clamd.tcp]) {
    const client = new ClamdClient({ addresses: [address] });
    // Under the limit: scanned normally.
    assert.equal((await client.scan(bufferView(ham(50 * 1024)), call())).status, 'clean');
    // Over it: clamd answers "INSTREAM size limit exceeded" and closes while we still write.
    const started = performance.now();
    await assert.rejects(client.scan(bufferView(ham(2 * 1024 * 1024)), call()), (err: unknown) => {
      assert.ok(err instanceof BackendError, String(err));
      assert.match(err.message, /size limit/i);
      assert.match(err.message, new RegExp(address.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
      return true;
    });
    assert.ok(performance.now() - started < 5_000);
  }
  // The daemon survived it.
  assert.ok(clamd.running());
  assert.equal((await new ClamdClient({ addresses: [clamd.socket] }).ping(call())).address, clamd.socket);
});

test('fail-over: dead addresses are skipped, the first live one answers', LIMIT, async (t) => {
  const live = requireDaemon('NQQ_TEST_CLAMD_TCP', t);
  if (!live) return;
  const deadPort = await freePort();
  const missing = join('/nonexistent-dir-nqqueue', 'clamd.sock');
  const client = new ClamdClient({ addresses: [missing, `127.0.0.1:${deadPort}`, live] });
  const r = await client.scan(bufferView(eicarPlain()), call());
  assert.equal(r.status, 'virus');
  assert.equal(r.address, live);
});

test('a clamd that was stopped gives a BackendError at once, naming each address', LIMIT, async (t) => {
  if (!requireDaemon('NQQ_TEST_CLAMD_SOCKET', t)) return;
  const clamd = await startClamd();
  const client = new ClamdClient({ addresses: [clamd.socket, clamd.tcp] });
  assert.equal((await client.scan(bufferView(ham(2048)), call())).status, 'clean');
  await clamd.stop();
  assert.equal(clamd.running(), false);
  const started = performance.now();
  await assert.rejects(client.scan(bufferView(ham(2048)), call()), (err: unknown) => {
    assert.ok(err instanceof BackendError);
    assert.ok(err.message.includes(clamd.socket) && err.message.includes(clamd.tcp), err.message);
    assert.match(err.message, /ENOENT|ECONNREFUSED/);
    const causes = (err.cause as AggregateError).errors as { code: string }[];
    assert.deepEqual(
      causes.map((c) => c.code),
      ['ENOENT', 'ECONNREFUSED'],
    );
    return true;
  });
  assert.ok(performance.now() - started < 1_000);
});

describe('IDSESSION sessions (sessions: true)', LIMIT, () => {
  const virus = (r: { status: string; name?: string }) => (r.status === 'virus' ? r.name : r.status);

  test('sequential scans reuse one connection; verdicts stay right', async (t) => {
    const live = requireDaemon('NQQ_TEST_CLAMD_TCP', t);
    if (!live) return;
    const proxy = await startProxy(live);
    t.after(() => proxy.close());
    const client = new ClamdClient({ addresses: [proxy.address], sessions: true });
    t.after(() => client.close());
    const verdicts = [];
    for (const make of [() => ham(10 * 1024), eicarPlain, () => ham(12 * 1024), eicarAttachment, () => ham(3 * 1024)]) {
      verdicts.push(virus(await client.scan(bufferView(make()), call())));
    }
    assert.deepEqual(verdicts, ['clean', EICAR_NAME, 'clean', EICAR_NAME, 'clean']);
    assert.equal(proxy.connections(), 1);
    assert.match(proxy.requests()[0]!.toString('latin1'), /^zIDSESSION\0zINSTREAM\0/);
    assert.equal(client.idleSessions(), 1);
    // Without sessions: one connection per scan.
    const plain = new ClamdClient({ addresses: [proxy.address] });
    for (let i = 0; i < 2; i++) assert.equal((await plain.scan(bufferView(ham(2048)), call())).status, 'clean');
    assert.equal(proxy.connections(), 3);
  });

  test('over the Unix socket too', async (t) => {
    const socket = requireDaemon('NQQ_TEST_CLAMD_SOCKET', t);
    if (!socket) return;
    const client = new ClamdClient({ addresses: [socket], sessions: true });
    t.after(() => client.close());
    assert.equal(virus(await client.scan(bufferView(ham(4096)), call())), 'clean');
    assert.equal(virus(await client.scan(bufferView(eicarPlain()), call())), EICAR_NAME);
    assert.equal(client.idleSessions(), 1);
  });

  test('a session closed by the daemon side between scans: the next scan is retried once on a fresh one', async (t) => {
    const live = requireDaemon('NQQ_TEST_CLAMD_TCP', t);
    if (!live) return;
    const proxy = await startProxy(live);
    t.after(() => proxy.close());
    const client = new ClamdClient({ addresses: [proxy.address], sessions: true });
    t.after(() => client.close());
    assert.equal(virus(await client.scan(bufferView(ham(4096)), call())), 'clean');
    proxy.cut();
    // The client does not know yet: the kept session looks alive until it is written to.
    assert.equal(client.idleSessions(), 1);
    assert.equal(virus(await client.scan(bufferView(eicarPlain()), call())), EICAR_NAME);
    assert.equal(proxy.connections(), 2);
    proxy.cut();
    assert.equal(virus(await client.scan(bufferView(ham(5000)), call())), 'clean');
    assert.equal(proxy.connections(), 3);
    // And the fresh session is kept again.
    assert.equal(virus(await client.scan(bufferView(ham(6000)), call())), 'clean');
    assert.equal(proxy.connections(), 3);
  });

  test('concurrent scans use at most one session each, then share them', async (t) => {
    const live = requireDaemon('NQQ_TEST_CLAMD_TCP', t);
    if (!live) return;
    const proxy = await startProxy(live);
    t.after(() => proxy.close());
    const client = new ClamdClient({ addresses: [proxy.address], sessions: true });
    t.after(() => client.close());
    const makes = [() => ham(20 * 1024), eicarPlain, () => ham(30 * 1024)];
    for (let round = 0; round < 2; round++) {
      const results = await Promise.all(makes.map((m) => client.scan(bufferView(m(), 1024), call())));
      assert.deepEqual(results.map(virus), ['clean', EICAR_NAME, 'clean']);
      assert.ok(proxy.connections() <= 3, `connections=${proxy.connections()}`);
    }
    assert.equal(client.idleSessions(), proxy.connections());
  });

  test('a message over StreamMaxLength in a session: BackendError with the hint, the session is dropped', async (t) => {
    if (!requireDaemon('NQQ_TEST_CLAMD_SOCKET', t)) return;
    const clamd = await startClamd(undefined, { streamMaxLength: '100K' });
    t.after(() => clamd.stop());
    const proxy = await startProxy(clamd.tcp);
    t.after(() => proxy.close());
    const client = new ClamdClient({ addresses: [proxy.address], sessions: true });
    t.after(() => client.close());
    assert.equal((await client.scan(bufferView(ham(50 * 1024)), call())).status, 'clean');
    assert.equal(client.idleSessions(), 1);
    await assert.rejects(client.scan(bufferView(ham(2 * 1024 * 1024)), call()), (err: unknown) => {
      assert.ok(err instanceof BackendError, String(err));
      assert.match(err.message, /size limit/i);
      assert.match(err.message, /StreamMaxLength/);
      assert.ok(err.message.includes(proxy.address), err.message);
      return true;
    });
    assert.equal(client.idleSessions(), 0);
    const before = proxy.connections();
    assert.equal((await client.scan(bufferView(ham(10 * 1024)), call())).status, 'clean');
    assert.equal(proxy.connections(), before + 1);
    assert.ok(clamd.running());
  });

  test('abort cancels a scan in a session and drops it', async (t) => {
    const live = requireDaemon('NQQ_TEST_CLAMD_TCP', t);
    if (!live) return;
    const client = new ClamdClient({ addresses: [live], sessions: true });
    t.after(() => client.close());
    assert.equal((await client.scan(bufferView(ham(2048)), call())).status, 'clean');
    const ac = new AbortController();
    const reason = new Error('stop now');
    const pending = client.scan(bufferView(ham(5 * 1024 * 1024), 1024), { signal: ac.signal });
    setTimeout(() => ac.abort(reason), 5);
    await assert.rejects(pending, (err: unknown) => err === reason);
    assert.equal(client.idleSessions(), 0);
    assert.equal((await client.scan(bufferView(eicarPlain()), call())).status, 'virus');
  });

  test('idle sessions are ended after idleMs', async (t) => {
    const live = requireDaemon('NQQ_TEST_CLAMD_TCP', t);
    if (!live) return;
    const proxy = await startProxy(live);
    t.after(() => proxy.close());
    const client = new ClamdClient({ addresses: [proxy.address], sessions: { idleMs: 100 } });
    assert.equal((await client.scan(bufferView(ham(2048)), call())).status, 'clean');
    assert.equal(client.idleSessions(), 1);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(client.idleSessions(), 0);
    assert.match(proxy.requests()[0]!.toString('latin1'), /zEND\0$/);
    assert.equal((await client.scan(bufferView(ham(2048)), call())).status, 'clean');
    assert.equal(proxy.connections(), 2);
    client.close();
  });
});
