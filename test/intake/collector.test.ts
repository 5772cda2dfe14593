// MessageCollector: small messages in memory, large ones in a private file, and a budget that many
// messages in flight share (daemon mode's spill_total): past it a message goes to its file however small.

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';

import { FileMessage, MemoryBudget, MemoryMessage, MessageCollector } from '../../src/intake/message.js';

const dir = mkdtempSync(join(tmpdir(), 'nqq-collector-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const workDir = () => dir;

test('a message up to spill stays in memory; past it, in a private file of mode 0600 with every byte', async () => {
  const small = new MessageCollector(10, workDir);
  small.write(Buffer.from('0123456789'));
  const m = small.finish();
  assert.ok(m instanceof MemoryMessage);
  assert.equal((await m.buffer()).toString(), '0123456789');

  const big = new MessageCollector(10, workDir);
  big.write(Buffer.from('01234'));
  big.write(Buffer.from('56789a'));
  assert.ok(big.spilled);
  const f = big.finish();
  assert.ok(f instanceof FileMessage);
  assert.equal((await f.buffer()).toString(), '0123456789a');
  assert.equal(statSync(big.spillPath!).mode & 0o777, 0o600);
  big.discard();
  assert.equal(existsSync(big.spillPath!), false);
});

test('messages sharing a budget: the one that would take it past its limit goes to a file, and discard gives the bytes back', async () => {
  let limit = 100;
  const budget = new MemoryBudget(() => limit);
  const a = new MessageCollector(1000, workDir, budget);
  a.write(Buffer.alloc(60, 'a'));
  const b = new MessageCollector(1000, workDir, budget);
  b.write(Buffer.alloc(30, 'b'));
  assert.equal(budget.inUse, 90);
  assert.equal(a.spilled || b.spilled, false);
  // 20 more bytes would make 110: b goes to its file, and gives back the 30 it held in memory.
  b.write(Buffer.alloc(20, 'c'));
  assert.ok(b.spilled);
  assert.equal(budget.inUse, 60);
  assert.equal((await b.finish().buffer()).toString(), 'b'.repeat(30) + 'c'.repeat(20));
  // a finished in memory keeps its bytes counted until it is discarded (the pipeline still holds them).
  const am = a.finish();
  assert.ok(am instanceof MemoryMessage);
  assert.equal(budget.inUse, 60);
  a.discard();
  a.discard();
  b.discard();
  assert.equal(budget.inUse, 0, 'each byte given back once, however often discard() is called');
  // The limit is read at each write: a smaller one (a reloaded configuration) applies to the next bytes.
  limit = 0;
  const c = new MessageCollector(1000, workDir, budget);
  c.write(Buffer.from('x'));
  assert.ok(c.spilled, 'spill_total = 0: every message is kept in a file');
  c.discard();
  assert.deepEqual(readdirSync(dir), [], 'no file left behind');
});
