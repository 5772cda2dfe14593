// Backend pools: the order of a call (failover, round-robin), an address taken out after a failure for
// the back-off and put back by a probe or when the back-off is over, every address tried when all are
// out, and what is out shared by the processes of a host (the files under the health directory).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { pathToFileURL } from 'node:url';

import { BackendPool, parseBalance, setHealthDir } from '../../src/clients/pool.js';

const A = { text: 'a:1' };
const B = { text: 'b:2' };
const C = { text: 'c:3' };
const texts = (ts: readonly { text: string }[]) => ts.map((t) => t.text);
const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

let seq = 0;
/** A pool of its own service name: what another test took out is not this one's. */
function pool(balance: 'failover' | 'round-robin', probe?: (a: string) => Promise<void>, backoffMs = 10_000) {
  return new BackendPool(`svc${++seq}`, [A, B, C], { balance, backoffMs, ...(probe ? { probe } : {}) });
}

test('failover: the order written, every call; round-robin: each call starts at the next address', () => {
  setHealthDir(undefined);
  const f = pool('failover');
  for (let i = 0; i < 3; i++) assert.deepEqual(texts(f.order()), ['a:1', 'b:2', 'c:3']);
  const r = pool('round-robin');
  const firsts = Array.from({ length: 9 }, () => r.order()[0]!.text);
  assert.deepEqual([...new Set(firsts)].sort(), ['a:1', 'b:2', 'c:3']);
  for (const t of ['a:1', 'b:2', 'c:3']) assert.equal(firsts.filter((x) => x === t).length, 3, 'evenly');
  // Each order is a rotation: the others follow in the order written.
  const o = r.order();
  const i = ['a:1', 'b:2', 'c:3'].indexOf(o[0]!.text);
  assert.deepEqual(texts(o), [...['a:1', 'b:2', 'c:3'].slice(i), ...['a:1', 'b:2', 'c:3'].slice(0, i)]);
  assert.equal(parseBalance('round-robin'), 'round-robin');
  assert.throws(() => parseBalance('random'), /balance must be failover or round-robin, not "random"/);
});

test('an address that failed is out for the back-off: tried last, not first; back once the back-off is over', () => {
  setHealthDir(undefined);
  const p = pool('failover');
  const now = Date.now();
  p.failed(A, now);
  assert.deepEqual(texts(p.order(now + 1)), ['b:2', 'c:3', 'a:1'], 'out: after the others');
  assert.ok(p.isOut(A, now + 9_999));
  assert.deepEqual(texts(p.order(now + 10_001)), ['a:1', 'b:2', 'c:3'], 'the back-off over: in its place again');
  p.failed(A, now);
  p.succeeded(A);
  assert.deepEqual(texts(p.order(now + 1)), ['a:1', 'b:2', 'c:3'], 'it answered: in again at once');
  // Every address out: all are still tried, in order.
  for (const t of [A, B, C]) p.failed(t, now);
  assert.deepEqual(texts(p.order(now + 1)), ['a:1', 'b:2', 'c:3']);
  // Round-robin skips an address that is out.
  const r = pool('round-robin');
  r.failed(B, now);
  for (let i = 0; i < 6; i++) assert.notEqual(r.order(now + 1)[0]!.text, 'b:2');
});

test('a single address is never taken out: there is nothing else to try', () => {
  setHealthDir(undefined);
  const one = new BackendPool(`svc${++seq}`, [A], { balance: 'failover', backoffMs: 10_000 });
  one.failed(A);
  assert.equal(one.isOut(A), false);
});

test('an address taken out is probed when its back-off is over, and put back when the probe connects', async () => {
  setHealthDir(undefined);
  const probed: string[] = [];
  let up = false;
  const p = pool(
    'failover',
    async (a) => {
      probed.push(a);
      if (!up) throw new Error('refused');
    },
    40,
  );
  p.failed(A);
  await new Promise((r) => setTimeout(r, 70));
  assert.deepEqual(probed, ['a:1'], 'probed after the back-off');
  assert.ok(p.isOut(A), 'the probe failed: out again');
  up = true;
  await new Promise((r) => setTimeout(r, 70));
  assert.deepEqual(probed, ['a:1', 'a:1']);
  assert.equal(p.isOut(A), false, 'the probe connected: in');
});

test('what is out is known to the other processes of the host (the health directory), and given back by them', () => {
  const dir = join(mkdtempSync(join(tmpdir(), 'nqq-health-')), 'backends');
  dirs.push(dir);
  setHealthDir(dir);
  const service = `svc${++seq}`;
  const p = new BackendPool(service, [A, B], { balance: 'failover', backoffMs: 60_000 });
  p.failed(A);
  assert.equal(readdirSync(dir).length, 1, 'one small file');
  const mod = pathToFileURL(new URL('../../src/clients/pool.js', import.meta.url).pathname).href;
  const other = (code: string) =>
    spawnSync(
      process.execPath,
      ['--input-type=module', '-e', `import { BackendPool, setHealthDir } from ${JSON.stringify(mod)}; setHealthDir(${JSON.stringify(dir)}); const p = new BackendPool(${JSON.stringify(service)}, [{ text: 'a:1' }, { text: 'b:2' }], { balance: 'failover', backoffMs: 60000 }); ${code}`],
      { encoding: 'utf8' },
    );
  const seen = other("process.stdout.write(p.order().map((t) => t.text).join(','))");
  assert.equal(seen.stdout, 'b:2,a:1', `another process skips it: ${seen.stderr}`);
  const back = other("p.succeeded({ text: 'a:1' }); process.stdout.write('ok')");
  assert.equal(back.stdout, 'ok', back.stderr);
  assert.deepEqual(texts(p.order()), ['a:1', 'b:2'], 'in again for this process too');
  assert.equal(readdirSync(dir).length, 0);
  setHealthDir(undefined);
});
