import assert from 'node:assert/strict';
import { test } from 'node:test';

import fc from 'fast-check';

import { NqqError } from '../../src/errors.js';
import { ADDRESS_LIMIT, encodeEnvelope, EnvelopeParser, parseEnvelope, toAddress } from '../../src/qmail/envelope.js';

function outcome(chunks: Buffer[], max = 10_000): { ok: { sender: Buffer; recipients: Buffer[] } } | { exit: number } {
  const p = new EnvelopeParser(max);
  try {
    for (const c of chunks) p.push(c);
    return { ok: p.end() };
  } catch (err) {
    assert.ok(err instanceof NqqError, `only NqqError may escape, got ${String(err)}`);
    return { exit: err.exit };
  }
}

/** The reference: qmail-queue's rules applied to the whole envelope in one simple pass. */
function reference(b: Buffer, max = 10_000): { exit: number } | { ok: { sender: Buffer; recipients: Buffer[] } } {
  const addrs: Buffer[] = [];
  let i = 0;
  for (;;) {
    if (i >= b.length) return { exit: 54 };
    const t = b[i]!;
    if (addrs.length === 0 && t !== 0x46) return { exit: 91 };
    if (addrs.length > 0 && t === 0) {
      if (i + 1 < b.length) return { exit: 91 };
      return { ok: { sender: addrs[0]!, recipients: addrs.slice(1) } };
    }
    if (addrs.length > 0 && t !== 0x54) return { exit: 91 };
    if (addrs.length > max) return { exit: 31 };
    i++;
    const start = i;
    for (;;) {
      if (i >= b.length) {
        return i - start >= ADDRESS_LIMIT ? { exit: 11 } : { exit: 54 };
      }
      const c = b[i]!;
      if (c === 0) break;
      if (c < 0x20 || c === 0x7f) return { exit: 91 };
      if (i - start + 1 >= ADDRESS_LIMIT) return { exit: 11 };
      i++;
    }
    addrs.push(b.subarray(start, i));
    i++;
  }
}

function splitAt(b: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (b.length + 1)))].sort((x, y) => x - y);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(b.subarray(prev, p));
    prev = p;
  }
  out.push(b.subarray(prev));
  return out;
}

const address = fc.uint8Array({ minLength: 0, maxLength: 60 }).map((a) => Buffer.from(a.map((x) => (x < 0x20 || x === 0x7f ? 0x41 : x))));

test('an empty sender (a bounce) and zero recipients are valid', () => {
  assert.deepEqual(parseEnvelope(Buffer.from('F\0Tu@x\0\0')), { sender: Buffer.alloc(0), recipients: [Buffer.from('u@x')] });
  assert.deepEqual(parseEnvelope(Buffer.from('Fa@b\0\0')), { sender: Buffer.from('a@b'), recipients: [] });
});

test('format errors are 91, long addresses 11, truncation 54', () => {
  assert.deepEqual(outcome([Buffer.from('Ta@b\0\0')]), { exit: 91 });
  assert.deepEqual(outcome([Buffer.from('Fa@b\0Xc@d\0\0')]), { exit: 91 });
  assert.deepEqual(outcome([Buffer.from('Fa@b\0Tc@d\0\0junk')]), { exit: 91 });
  assert.deepEqual(outcome([Buffer.from('Fa@b\0Tc\r@d\0\0')]), { exit: 91 });
  assert.deepEqual(outcome([Buffer.from('Fa@b\0Tc\n@d\0\0')]), { exit: 91 });
  assert.deepEqual(outcome([Buffer.from('Fa@b\0Tc@d\0')]), { exit: 54 });
  assert.deepEqual(outcome([Buffer.from('Fa@b')]), { exit: 54 });
  assert.deepEqual(outcome([Buffer.alloc(0)]), { exit: 54 });
  const long = (n: number) => Buffer.concat([Buffer.from('Fa@b\0T'), Buffer.alloc(n, 0x61), Buffer.from('\0\0')]);
  assert.equal('ok' in outcome([long(1002)]), true);
  assert.deepEqual(outcome([long(1003)]), { exit: 11 });
});

test('more recipients than the limit are refused', () => {
  const env = encodeEnvelope(Buffer.from('a@b'), [Buffer.from('1@x'), Buffer.from('2@x'), Buffer.from('3@x')]);
  assert.equal('ok' in outcome([env], 3), true);
  assert.deepEqual(outcome([env], 2), { exit: 31 });
});

test('property: encode then parse in arbitrary pieces gives back the same bytes', () => {
  fc.assert(
    fc.property(address, fc.array(address, { maxLength: 20 }), fc.array(fc.nat(), { maxLength: 12 }), (sender, rcpts, cuts) => {
      const env = encodeEnvelope(sender, rcpts);
      const got = outcome(splitAt(env, cuts));
      assert.ok('ok' in got);
      assert.deepEqual(got.ok.sender, sender);
      assert.deepEqual(got.ok.recipients, rcpts);
    }),
    { numRuns: 500 },
  );
});

test('property: arbitrary bytes in arbitrary pieces give what qmail-queue would (ok, 91, 11, 54)', () => {
  const anyBytes = fc.oneof(
    fc.uint8Array({ maxLength: 80 }).map((a) => Buffer.from(a)),
    // mostly-valid envelopes with damage, so every branch is reached
    fc
      .tuple(address, fc.array(address, { maxLength: 5 }), fc.nat(), fc.integer({ min: 0, max: 255 }), fc.boolean())
      .map(([s, r, pos, byte, cut]) => {
        const env = Buffer.from(encodeEnvelope(s, r));
        if (cut) return env.subarray(0, pos % (env.length + 1));
        env[pos % env.length] = byte;
        return env;
      }),
    fc.tuple(fc.integer({ min: 990, max: 1010 }), fc.boolean()).map(([n, term]) =>
      Buffer.concat([Buffer.from('Fs\0T'), Buffer.alloc(n, 0x62), Buffer.from(term ? '\0\0' : '')]),
    ),
  );
  fc.assert(
    fc.property(anyBytes, fc.array(fc.nat(), { maxLength: 8 }), (bytes, cuts) => {
      assert.deepEqual(outcome(splitAt(bytes, cuts)), reference(bytes));
    }),
    { numRuns: 2000 },
  );
});

test('RELAYCLIENT is stripped for matching, kept in the raw bytes', () => {
  const a = toAddress(Buffer.from('User@Example.COM'), '');
  assert.equal(a.address, 'User@Example.COM');
  assert.equal(a.domain, 'example.com');
  const b = toAddress(Buffer.from('u@example.com.relay'), '.relay');
  assert.equal(b.address, 'u@example.com');
  assert.equal(b.domain, 'example.com');
  assert.deepEqual(b.raw, Buffer.from('u@example.com.relay'));
});
