// FILDES: a spilled message is handed to a local clamd as its open file (the descriptor passed over the
// Unix socket), not streamed. Against the real clamd, and a stand-in clamd that refuses the command.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';

import { ClamdClient, parseScanReply, type ClamdScanResult } from '../../src/clients/clamd.js';
import { fdPassingAvailable } from '../../src/clients/fd-passing.js';
import { FileMessage } from '../../src/intake/message.js';
import { BackendError } from '../../src/plugin-api/define.js';
import { requireDaemon, startClamd } from '../helpers/daemons.js';
import { bufferView, eicar, eicarAttachment, eicarPlain, ham } from '../fixtures/messages.js';

const LIMIT = { timeout: 60_000 };
const EICAR_NAME = 'Eicar-Test-NDB.UNOFFICIAL';
const call = () => ({ signal: AbortSignal.timeout(20_000) });
const virus = (r: { status: string; name?: string }) => (r.status === 'virus' ? r.name : r.status);

/** A temp dir removed after the test. */
function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'nqq-fildes-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A spilled message: its bytes in a private file, as the intake leaves a large one. */
function spilled(dir: string, name: string, bytes: Buffer): FileMessage {
  const path = join(dir, name);
  writeFileSync(path, bytes, { mode: 0o600 });
  return new FileMessage(path, bytes.length);
}

test('FILDES and INSTREAM replies are read alike', () => {
  assert.deepEqual(parseScanReply('fd[12]: OK'), { status: 'clean' });
  assert.deepEqual(parseScanReply('fd[12]: Eicar-Test-NDB.UNOFFICIAL FOUND'), { status: 'virus', name: EICAR_NAME });
  assert.equal(parseScanReply('No file descriptor received. ERROR').status, 'error');
});

test('this Node can pass a descriptor on a Unix socket', () => {
  assert.equal(fdPassingAvailable(), true);
});

for (const sessions of [false, true]) {
  describe(`a spilled message on the Unix socket${sessions ? ', in IDSESSION sessions' : ''}`, LIMIT, () => {
    test('EICAR is found, through FILDES', async (t) => {
      const socket = requireDaemon('NQQ_TEST_CLAMD_SOCKET', t);
      if (!socket) return;
      const dir = tempDir(t);
      const client = new ClamdClient({ addresses: [socket], sessions });
      t.after(() => client.close());
      const r = await client.scan(spilled(dir, 'eicar', Buffer.concat([ham(2 * 1024 * 1024), eicarPlain()])), call());
      assert.equal(virus(r), EICAR_NAME);
      assert.equal(r.via, 'fildes');
      assert.deepEqual(client.counts, { fildes: 1, instream: 0, refused: 0 });
      // In an attachment too, and sessions go on being used after a FILDES scan.
      assert.equal(virus(await client.scan(spilled(dir, 'attached', eicarAttachment()), call())), EICAR_NAME);
      assert.equal(client.counts.fildes, 2);
      if (sessions) assert.equal(client.idleSessions(), 1);
    });

    test('a clean message passes, through FILDES; a message in memory is still streamed', async (t) => {
      const socket = requireDaemon('NQQ_TEST_CLAMD_SOCKET', t);
      if (!socket) return;
      const dir = tempDir(t);
      const client = new ClamdClient({ addresses: [socket], sessions });
      t.after(() => client.close());
      const r = await client.scan(spilled(dir, 'ham', ham(1536 * 1024)), call());
      assert.equal(virus(r), 'clean');
      assert.equal(r.via, 'fildes');
      const m = await client.scan(bufferView(eicarPlain()), call());
      assert.deepEqual([virus(m), m.via], [EICAR_NAME, 'instream']);
      assert.deepEqual(client.counts, { fildes: 1, instream: 1, refused: 0 });
    });
  });
}

test('clamd is not given bytes by FILDES: a spilled message over its StreamMaxLength is scanned whole', LIMIT, async (t) => {
  if (!requireDaemon('NQQ_TEST_CLAMD_SOCKET', t)) return;
  // StreamMaxLength bounds INSTREAM only; a file handed over is bounded by MaxFileSize (50M here).
  const clamd = await startClamd(undefined, { streamMaxLength: '100K' });
  t.after(() => clamd.stop());
  const dir = tempDir(t);
  const message = spilled(dir, 'big', Buffer.concat([ham(2 * 1024 * 1024), eicarPlain()]));
  const client = new ClamdClient({ addresses: [clamd.socket] });
  const r = await client.scan(message, call());
  assert.deepEqual([virus(r), r.via], [EICAR_NAME, 'fildes']);
  // The same file streamed: clamd stops it at StreamMaxLength.
  const streamed = new ClamdClient({ addresses: [clamd.socket], fildes: false });
  await assert.rejects(streamed.scan(message, call()), (err: unknown) => err instanceof BackendError && /size limit/i.test(err.message));
  assert.deepEqual(streamed.counts, { fildes: 0, instream: 0, refused: 0 });
});

test('TCP clamd, fildes: false, and a file with bytes in front of the message keep INSTREAM', LIMIT, async (t) => {
  const tcp = requireDaemon('NQQ_TEST_CLAMD_TCP', t);
  const socket = requireDaemon('NQQ_TEST_CLAMD_SOCKET', t);
  if (!tcp || !socket) return;
  const dir = tempDir(t);
  const bytes = eicarPlain();
  for (const sessions of [false, true]) {
    const overTcp: ClamdClient = new ClamdClient({ addresses: [tcp], sessions });
    t.after(() => overTcp.close());
    const r: ClamdScanResult = await overTcp.scan(spilled(dir, 'over-tcp', bytes), call());
    assert.deepEqual([virus(r), r.via], [EICAR_NAME, 'instream']);
    assert.deepEqual(overTcp.counts, { fildes: 0, instream: 1, refused: 0 });
  }
  const off = new ClamdClient({ addresses: [socket], fildes: false });
  assert.deepEqual((await off.scan(spilled(dir, 'off', bytes), call())).via, 'instream');
  // A spool file keeps its envelope in front of the message: that file is not the message.
  const path = join(dir, 'spool');
  writeFileSync(path, Buffer.concat([Buffer.from('Fa@b\0Tc@d\0\0'), bytes]));
  const client = new ClamdClient({ addresses: [socket] });
  const r = await client.scan(new FileMessage(path, bytes.length, 11), call());
  assert.deepEqual([virus(r), r.via], [EICAR_NAME, 'instream']);
});

/**
 * A clamd built without FILDES, as clamd answers: a command it does not know is `UNKNOWN COMMAND`
 * (in an IDSESSION, `N: Command invalid inside IDSESSION. ERROR`), then it closes. INSTREAM is scanned
 * for the EICAR string (or fails with an ERROR when `instream: 'error'`). It records every command.
 */
async function refusingClamd(dir: string, instream: 'scan' | 'error' = 'scan'): Promise<{ path: string; commands: string[]; close(): Promise<void> }> {
  const path = join(dir, 'refusing.sock');
  const commands: string[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((c) => {
    sockets.add(c);
    c.on('close', () => sockets.delete(c));
    c.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    let session = false;
    let seq = 0;
    let stream: Buffer[] | undefined;
    const reply = (text: string): void => void c.write(`${session ? `${seq}: ` : ''}${text}\0`);
    c.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        if (stream) {
          if (buf.length < 4) return;
          const n = buf.readUInt32BE(0);
          if (buf.length < 4 + n) return;
          const piece = buf.subarray(4, 4 + n);
          buf = buf.subarray(4 + n);
          if (n > 0) {
            stream.push(piece);
            continue;
          }
          const all = Buffer.concat(stream);
          stream = undefined;
          if (instream === 'error') {
            reply('Can\'t allocate memory ERROR');
            c.end();
            return;
          }
          reply(all.includes(eicar()) ? `stream: ${EICAR_NAME} FOUND` : 'stream: OK');
          if (!session) c.end();
          continue;
        }
        const end = buf.indexOf(0);
        if (end < 0) return;
        const command = buf.subarray(0, end).toString('latin1');
        buf = buf.subarray(end + 1);
        commands.push(command);
        if (command === 'zIDSESSION') {
          session = true;
        } else if (command === 'zINSTREAM') {
          seq++;
          stream = [];
        } else if (command === 'zEND') {
          c.end();
          return;
        } else {
          seq++;
          reply(session ? 'Command invalid inside IDSESSION. ERROR' : 'UNKNOWN COMMAND');
          c.end();
          return;
        }
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return {
    path,
    commands,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

for (const sessions of [false, true]) {
  test(`a clamd that refuses FILDES: INSTREAM for that scan and the next ones${sessions ? ' (sessions)' : ''}`, LIMIT, async (t) => {
    const dir = tempDir(t);
    const clamd = await refusingClamd(dir);
    t.after(() => clamd.close());
    const client = new ClamdClient({ addresses: [clamd.path], sessions });
    t.after(() => client.close());
    const first = await client.scan(spilled(dir, 'eicar', eicarPlain()), call());
    assert.deepEqual([virus(first), first.via], [EICAR_NAME, 'instream']);
    assert.deepEqual(client.counts, { fildes: 0, instream: 1, refused: 1 });
    const second = await client.scan(spilled(dir, 'ham', ham(4096)), call());
    assert.deepEqual([virus(second), second.via], ['clean', 'instream']);
    assert.deepEqual(client.counts, { fildes: 0, instream: 2, refused: 1 });
    // FILDES was asked once, then never again.
    assert.equal(clamd.commands.filter((c) => c === 'zFILDES').length, 1);
    assert.equal(clamd.commands.filter((c) => c === 'zINSTREAM').length, 2);
  });
}

test('a clamd that refuses FILDES and fails INSTREAM: the scan fails, it is never clean', LIMIT, async (t) => {
  const dir = tempDir(t);
  const clamd = await refusingClamd(dir, 'error');
  t.after(() => clamd.close());
  for (const sessions of [false, true]) {
    const client = new ClamdClient({ addresses: [clamd.path], sessions });
    t.after(() => client.close());
    await assert.rejects(client.scan(spilled(dir, `ham-${sessions}`, ham(4096)), call()), (err: unknown) => {
      assert.ok(err instanceof BackendError, String(err));
      assert.match(err.message, /allocate memory/);
      return true;
    });
    assert.equal(client.counts.refused, 1);
  }
});
