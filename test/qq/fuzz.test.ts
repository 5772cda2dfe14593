// bin/nqqueue-qq under AddressSanitizer + UBSan, driven by fast-check: random daemon answers (valid,
// split, truncated, oversized, garbage, copies for qmail-queue cut anywhere, dying mid-input), random
// message/envelope bytes and input timing, random refusal-channel settings. Each run must end as the
// protocol says for that answer — the reply's exit code; or, the daemon gone, the standalone program on
// the exact input, 0 or 71 by what qmail-queue accepted — with no sanitizer report and no signal.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import fc from 'fast-check';

import { envelopeOf, runSmtpd } from '../helpers/smtpd.js';
import { makeStandIn, type StandIn } from '../helpers/stand-in.js';
import { answerBytes, bytesOf, copyBytes, envList, envOf, makeInstall, pendingBytes, REPO, startFakeDaemon, type Answer, type Behaviour, type FakeDaemon, type Install } from './fake-daemon.js';

const RUNS = 150;
const FALLBACK_CODE = 77;
const LOG_MAX = 1024 * 1024;

let dir = '';
let inst: Install;
let daemon: FakeDaemon;
let queue: StandIn;
let env: Record<string, string>;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'nqq-qq-asan-'));
  const bin = join(dir, 'nqqueue-qq');
  const built = spawnSync(process.execPath, [join(REPO, 'scripts', 'build-qq.js'), '--sanitize', bin], { encoding: 'utf8' });
  assert.equal(built.status, 0, `sanitizer build failed: ${built.stderr}`);
  inst = makeInstall(bin);
  inst.standalone.set({ code: FALLBACK_CODE });
  queue = makeStandIn();
  daemon = await startFakeDaemon(inst.home, { kind: 'silent' });
  // No leak check: the client allocates nothing, and LeakSanitizer needs ptrace, which a container may deny.
  env = {
    NQQUEUE_HOME: inst.home,
    NQQUEUE_QMAILQUEUE: queue.path,
    TCPREMOTEIP: '192.0.2.7',
    NQQUEUE_QQ_TIMEOUT: '5',
    ASAN_OPTIONS: 'detect_leaks=0',
  };
});

after(async () => {
  await daemon?.close();
  queue?.cleanup();
  inst?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('the sanitizer build is instrumented', () => {
  const bin = readFileSync(join(inst.dir, 'bin', 'nqqueue-qq'));
  assert.ok(bin.includes('__asan_init') && bin.includes('__ubsan_handle'), 'no ASan/UBSan runtime in the test build');
});

interface Parsed {
  status: 'done' | 'bad' | 'more';
  decided: boolean;
  /** G, the copies announced. */
  copies: number;
  code: number;
  refusal: Buffer;
}

/** What the client makes of the daemon's bytes: a model of nqq_reply_next. */
function parseAnswer(b: Buffer): Parsed {
  const p: Parsed = { status: 'more', decided: false, copies: 0, code: 0, refusal: Buffer.alloc(0) };
  let i = 0;
  let started = 0;
  const u32 = (): number | undefined => (i + 4 <= b.length ? b.readUInt32BE((i += 4) - 4) : undefined);
  const bad = (): Parsed => ({ ...p, status: 'bad' });
  if (i >= b.length) return p;
  // 'L', the pending log line (at most 65536 bytes), before anything else.
  if (b[i] === 0x4c) {
    i++;
    const n = u32();
    if (n === undefined) return p;
    if (n > 65536) return bad();
    if (i + n > b.length) return p;
    i += n;
    if (i >= b.length) return p;
  }
  if (b[i] === 0x44) {
    i++;
    const g = u32();
    if (g === undefined) return p;
    p.decided = true;
    p.copies = g;
    for (;;) {
      if (i >= b.length) return p;
      if (b[i] === 0x52) break;
      if (b[i] !== 0x51 || started >= g) return bad();
      i++;
      started++;
      if (u32() === undefined) return p;
      for (let stream = 0; stream < 2; ) {
        const n = u32();
        if (n === undefined) return p;
        if (n > 1024 * 1024) return bad();
        if (n === 0) stream++;
        else if (i + n > b.length) return p;
        else i += n;
      }
    }
  }
  if (i >= b.length) return p;
  if (b[i++] !== 0x52) return bad();
  if (i + 2 > b.length) return p;
  const code = b[i++]!;
  const n = b[i++]!;
  if (i + n > b.length) return p;
  const refusal = b.subarray(i, i + n);
  i += n;
  const len = u32();
  if (len === undefined) return p;
  if (len > LOG_MAX) return bad();
  if (i + len > b.length) return p;
  return { ...p, status: 'done', code, refusal };
}

type Reject = string | undefined;

/** src/qmail/exit.ts's choice, runSmtpd's descriptors being pipes. */
function refusalGoesOut(reject: Reject, errorFd: 6 | 4 | 'none'): boolean {
  const mode = reject === 'fd6' || reject === 'fd4' || reject === 'plain' ? reject : 'auto';
  if (mode === 'plain' || errorFd === 'none') return false;
  if (mode === 'auto') return true;
  return mode === `fd${errorFd}`;
}

const bytes = (max: number) => fc.uint8Array({ maxLength: max }).map((a) => Buffer.from(a));

const answer = fc.record({
  code: fc.oneof(fc.constantFrom(0, 11, 31, 54, 71, 81, 82, 91), fc.integer({ min: 0, max: 255 })),
  refusal: fc.oneof(fc.constant(Buffer.from('Dvirus found (#5.7.1)')), bytes(255)),
  log: bytes(2000),
});

/** A reply, perhaps after 'D' with no copies, sent in pieces. */
const validReply = fc
  .tuple(fc.option(bytes(300)), fc.boolean(), answer, fc.array(fc.integer({ min: 0, max: 2300 }), { maxLength: 6 }))
  .map(([pending, d, a, cuts]): Behaviour => ({
    kind: 'raw',
    bytes: Buffer.concat([pending === null ? Buffer.alloc(0) : pendingBytes(pending), Buffer.from(d ? 'D\0\0\0\0' : ''), answerBytes(a)]),
    then: 'end',
    cuts,
    gapMs: 1,
  }));

const then = fc.constantFrom<'end' | 'destroy'>('end', 'destroy');

const truncatedReply = fc
  .tuple(validReply, fc.nat(), then)
  .map(([v, at, t]): Behaviour => {
    const full = bytesOf((v as Extract<Behaviour, { kind: 'raw' }>).bytes);
    return { kind: 'raw', bytes: full.subarray(0, at % full.length), then: t };
  });

const oversized = fc
  .tuple(fc.boolean(), bytes(255), fc.constantFrom(LOG_MAX + 1, 0x7fffffff, 0x80000000, 0xffffffff), bytes(64), then)
  .map(([d, refusal, len, rest, t]): Behaviour => {
    const l = Buffer.alloc(4);
    l.writeUInt32BE(len);
    const head = Buffer.concat([Buffer.from(d ? 'D\0\0\0\0' : ''), Buffer.from([0x52, 31, refusal.length])]);
    return { kind: 'raw', bytes: Buffer.concat([head, refusal, l, rest]), then: t };
  });

const garbage = fc
  .tuple(fc.oneof(bytes(300), bytes(12).map((b) => Buffer.concat([Buffer.from('D\0\0\0\x01'), b]))), then, fc.array(fc.nat({ max: 300 }), { maxLength: 4 }))
  .map(([b, t, cuts]): Behaviour => ({ kind: 'raw', bytes: b, then: t, cuts, gapMs: 1 }));

/** Copies for qmail-queue (good or broken envelopes), announced right or wrong, cut anywhere or not. */
/** n bytes that differ from place to place, so a misplaced slice shows. */
function pattern(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed | 1;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

const copy = fc.record({
  // Some copies larger than one 64 KiB read of the client, so frames straddle its reads.
  message: fc.oneof(bytes(5000), fc.tuple(fc.integer({ min: 60000, max: 200000 }), fc.nat()).map(([n, seed]) => pattern(n, seed))),
  envelope: fc.oneof({ arbitrary: fc.constant(envelopeOf('s@example.com', ['r@example.com'])), weight: 4 }, { arbitrary: bytes(40), weight: 1 }),
});
const delivery = fc
  .record({
    copies: fc.array(copy, { minLength: 0, maxLength: 2 }),
    extra: fc.constantFrom(0, 0, 0, 1, -1),
    cut: fc.oneof({ arbitrary: fc.constant(undefined), weight: 2 }, { arbitrary: fc.double({ min: 0, max: 1, noNaN: true }), weight: 1 }),
    then: fc.oneof(answer.map((a): Answer => a), fc.constant<'destroy'>('destroy')),
    frameSize: fc.integer({ min: 1, max: 70000 }),
  })
  .map((d): Behaviour => {
    const copies = d.copies.map((c) => ({ ...c }));
    const last = copies.at(-1);
    if (last && d.cut !== undefined) {
      const len = copyBytes(last, d.frameSize).length;
      (last as { cutAfter?: number }).cutAfter = Math.floor(d.cut * len);
    }
    return { kind: 'deliver', copies, announce: Math.max(0, copies.length + d.extra), then: d.then, frameSize: d.frameSize };
  });

const scenario = fc.record({
  behaviour: fc.oneof(
    { arbitrary: validReply, weight: 2 },
    { arbitrary: truncatedReply, weight: 1 },
    { arbitrary: oversized, weight: 1 },
    { arbitrary: garbage, weight: 1 },
    { arbitrary: delivery, weight: 4 },
    { arbitrary: fc.constant<Behaviour>({ kind: 'dieAfter', bytes: 0 }), weight: 1 },
  ),
  /** For dieAfter: how far into the input, as a fraction. */
  dieAt: fc.double({ min: 0, max: 1, noNaN: true }),
  message: fc.oneof(bytes(3000), bytes(20000), fc.integer({ min: 0, max: 300000 }).map((n) => Buffer.alloc(n, 'x'))),
  envelope: bytes(300),
  envelopeChunks: fc.array(fc.nat({ max: 300 }), { maxLength: 5 }),
  closeMessageEarly: fc.boolean(),
  errorFd: fc.constantFrom<6 | 4 | 'none'>(6, 4, 'none'),
  reject: fc.constantFrom<Reject>(undefined, '', 'auto', 'fd6', 'fd4', 'plain', 'FD6', 'junk'),
});

test(`${RUNS} random exchanges under ASan+UBSan: no report, no signal, the protocol's exit code`, async (t) => {
  const seen: { [outcome: string]: number } = {};
  const count = (k: string) => (seen[k] = (seen[k] ?? 0) + 1);
  await fc.assert(
    fc.asyncProperty(scenario, async (s) => {
      inst.standalone.reset();
      const queuedBefore = queue.deliveries().length;
      const runEnv = { ...env, ...(s.reject === undefined ? {} : { NQQUEUE_REJECT: s.reject }) };
      const message = s.closeMessageEarly ? s.message.subarray(0, Math.floor(s.message.length / 2)) : s.message;
      let b = s.behaviour;
      if (b.kind === 'dieAfter') {
        // A lower bound of what the client sends, so the daemon surely dies before it has it all.
        const envBytes = Object.entries(runEnv).reduce((n, [k, v]) => n + Buffer.byteLength(`${k}=${v}`) + 1, 0);
        const least = 8 + envBytes + message.length + s.envelope.length + 8;
        b = { kind: 'dieAfter', bytes: 1 + Math.floor(s.dieAt * (least - 1)) };
      }
      daemon.behaviour = b;
      const r = await runSmtpd({
        bin: inst.qq,
        message: s.message,
        envelope: s.envelope,
        envelopeChunks: s.envelopeChunks,
        envelopeDelayMs: 1,
        closeMessageEarly: s.closeMessageEarly,
        errorFd: s.errorFd,
        env: runEnv,
        timeoutMs: 20000,
      });
      const what = `${b.kind} ${JSON.stringify(b).slice(0, 400)} -> ${r.code}/${r.signal}\n${r.stderr.slice(0, 3000)}`;
      assert.ok(!/ERROR: AddressSanitizer|runtime error:|LeakSanitizer|SUMMARY: /.test(r.stderr), what);
      assert.equal(r.signal, null, what);
      assert.ok(!r.timedOut, what);

      // What the daemon said, as bytes, and what qmail-queue accepted on the way.
      const said =
        b.kind === 'raw'
          ? bytesOf(b.bytes)
          : b.kind === 'deliver'
            ? Buffer.concat([
                Buffer.from('D'),
                Buffer.from([0, 0, 0, b.announce ?? b.copies.length]),
                ...b.copies.map((c) => copyBytes(c, b.frameSize).subarray(0, c.cutAfter)),
                typeof b.then === 'object' && b.copies.every((c) => c.cutAfter === undefined) ? answerBytes(b.then) : Buffer.alloc(0),
              ])
            : Buffer.alloc(0);
      const delivered = queue.deliveries().slice(queuedBefore);
      const queued = delivered.length;
      // What qmail-queue accepted is, in order, some of the copies the daemon sent, byte for byte.
      const sent = b.kind === 'deliver' ? b.copies : [];
      let k = 0;
      for (const d of delivered) {
        while (k < sent.length && !(sent[k]!.message.equals(d.message) && sent[k]!.envelope.equals(d.envelope))) k++;
        assert.ok(k < sent.length, `qmail-queue got bytes the daemon did not send: ${b.kind}`);
        k++;
      }
      const p: Parsed = b.kind === 'dieAfter' ? { status: 'bad', decided: false, copies: 0, code: 0, refusal: Buffer.alloc(0) } : parseAnswer(said);
      count(`${b.kind}: ${p.status === 'done' ? 'reply' : p.decided && queued > 0 ? (queued >= p.copies ? 'gone, all queued' : 'gone, some queued') : 'fallback'}`);
      if (queued > 0) count('copies queued');
      if (p.status === 'done') {
        const written = (p.code === 31 || p.code === 71) && p.refusal.length > 0 && refusalGoesOut(s.reject, s.errorFd);
        assert.equal(r.code, written ? 82 : p.code, what);
        const clean = Buffer.from(p.refusal.map((c) => (c < 0x20 || c > 0x7e ? 0x3f : c)));
        assert.ok(r.errorText.equals(written ? clean : Buffer.alloc(0)), what);
        assert.equal(inst.ran(), undefined, what);
      } else if (p.decided && queued > 0) {
        assert.equal(r.code, queued >= p.copies ? 0 : 71, what);
        assert.equal(inst.ran(), undefined, what);
      } else {
        assert.equal(r.code, FALLBACK_CODE, what);
        const f = inst.ran();
        assert.ok(f, what);
        assert.ok(f.message.equals(message), `fallback message differs: ${what}`);
        assert.ok(f.envelope.equals(s.envelope), `fallback envelope differs: ${what}`);
        // The environment as given, plus the client's reason: one of its fixed words.
        const reasons = envList(f.env).filter((e) => e.startsWith('NQQUEUE_FALLBACK_REASON='));
        assert.equal(reasons.length, 1, what);
        assert.match(reasons[0]!, /^NQQUEUE_FALLBACK_REASON=(daemon-died|protocol-error|timeout)$/, what);
        assert.deepEqual(envList(f.env).filter((e) => !e.startsWith('NQQUEUE_FALLBACK_REASON=')), envOf(runEnv));
        for (const [fd, link] of f.fds) if (fd > 1) assert.doesNotMatch(link, /^socket:|memfd:/, what);
      }
    }),
    { numRuns: RUNS },
  );
  t.diagnostic(Object.entries(seen).map(([k, n]) => `${k}: ${n}`).sort().join(', '));
});
