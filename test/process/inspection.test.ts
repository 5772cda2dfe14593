// The whole message is inspected however it is shaped: `attach` and `header` see every part at any
// depth and every header line of every block; ambiguous attachment names are refused; a message past a
// hard bound of the walk is not accepted unless `onlimit` says so; an admin regular expression cannot
// hold a message (or the daemon) past its deadline.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { setupsForThisFile, type Outcome, type Setup } from '../helpers/nqq.js';

const make = setupsForThisFile();

const EXE_PART = 'Content-Type: application/octet-stream\nContent-Disposition: attachment; filename="evil.exe"\n\nTVqQAAMAAAAEAAAA\n';
const TXT_PART = 'Content-Type: text/plain\nContent-Disposition: attachment; filename="notes.txt"\n\nhello\n';

/** A message whose multiparts nest `levels` deep, with `leaf` (a part: headers, blank line, body) at the bottom. */
function nested(levels: number, leaf: string): string {
  let out = 'From: a@client.example\nSubject: nested\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b0"\n\n';
  for (let i = 1; i < levels; i++) out += `--b${i - 1}\nContent-Type: multipart/mixed; boundary="b${i}"\n\n`;
  out += `--b${levels - 1}\n${leaf}`;
  for (let i = levels - 1; i >= 0; i--) out += `--b${i}--\n`;
  return out;
}

/** A multipart message with these parts (each: headers, blank line, body). */
function multipart(...parts: string[]): string {
  return (
    'From: a@client.example\nSubject: parts\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="XX"\n\npreamble\n' +
    parts.map((p) => `--XX\n${p}`).join('') +
    '--XX--\n'
  );
}

function padding(bytes: number, name = 'X-Pad'): string {
  const line = `${name}: ${'p'.repeat(70)}\n`;
  return line.repeat(Math.ceil(bytes / line.length));
}

/** Run `message` through `s`: it must be refused with `text`, and nothing queued by this run. */
async function refused(s: Setup, message: string, text: RegExp, timeoutMs = 30_000): Promise<Outcome> {
  const before = s.standIn.calls().length;
  const r = await s.run({ message, timeoutMs });
  assert.equal(r.code, 82, r.stderr);
  assert.match(r.errorText.toString(), text);
  assert.equal(s.standIn.calls().length, before, 'nothing queued');
  return r;
}

function attachSetup(conf = '', line = ':attach=.exe:.vbs\n'): Setup {
  const s = make({ files: { 'nqqueue.conf': conf } });
  s.write('general.cfb', line);
  return s;
}

const EXE_REFUSED = /^Dmessage refused: attachments of type \.exe are not accepted/;

test('an .exe 33 and 150 multipart levels down is refused; a clean 150-deep message is accepted', async () => {
  const s = attachSetup();
  for (const levels of [33, 150]) await refused(s, nested(levels, EXE_PART), EXE_REFUSED);
  const ok = await s.run({ message: nested(150, TXT_PART) });
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(ok.deliveries.length, 1);
});

test('an .exe behind 300 KB of padding header lines is refused (in a part and in the message header)', async () => {
  const s = attachSetup();
  const inPart = multipart(TXT_PART, `Content-Type: application/octet-stream\n${padding(300 * 1024)}Content-Disposition: attachment; filename="evil.exe"\n\nTVqQ\n`);
  await refused(s, inPart, EXE_REFUSED);
  const top = `From: a@client.example\n${padding(300 * 1024)}Content-Type: application/octet-stream; name="evil.exe"\n\nTVqQ\n`;
  await refused(s, top, EXE_REFUSED);
  // A part header block cut short by the next boundary still counts.
  const cut = multipart('Content-Type: application/octet-stream; name="evil.exe"\n', TXT_PART);
  await refused(s, cut, EXE_REFUSED);
});

test('a header rule sees a Subject after 64 KB of other headers, and the header lines of MIME parts', async () => {
  const s = make();
  s.write('general.cfb', ':header=Subject:/lottery/i;header=X-Mailer:/BulkBlaster/\n');
  const late = `From: a@client.example\n${padding(64 * 1024 + 100)}Subject: You won the LOTTERY\n\nbody\n`;
  await refused(s, late, /^Dmessage refused: its subject header is not accepted/);
  const inPart = multipart(TXT_PART, 'Content-Type: text/plain\nX-Mailer: BulkBlaster 2.0\n\nhi\n');
  await refused(s, inPart, /^Dmessage refused: its x-mailer header is not accepted/);
  const clean = await s.run({ message: multipart(TXT_PART) });
  assert.equal(clean.code, 0, clean.stderr);
});

const AMBIGUOUS: Record<string, string> = {
  'filename=a.txt but name=b.exe': 'Content-Type: application/octet-stream; name="b.exe"\nContent-Disposition: attachment; filename="a.txt"\n\nx\n',
  'two Content-Disposition fields': 'Content-Type: application/octet-stream\nContent-Disposition: attachment; filename="a.txt"\nContent-Disposition: attachment; filename="b.exe"\n\nx\n',
  'two Content-Type fields': 'Content-Type: text/plain; name="a.txt"\nContent-Type: application/octet-stream; name="b.exe"\n\nx\n',
  'a repeated filename parameter': 'Content-Type: application/octet-stream\nContent-Disposition: attachment; filename="a.txt"; filename="b.exe"\n\nx\n',
  'an RFC 2231 continuation spelling .exe': 'Content-Type: application/octet-stream; name*0="evil."; name*1="exe"\nContent-Disposition: attachment; filename="a.txt"\n\nx\n',
  'an RFC 2231 continuation with a gap': 'Content-Type: application/octet-stream\nContent-Disposition: attachment; filename*0="evil.exe"; filename*2=".txt"\n\nx\n',
  'a percent-encoded NUL in an RFC 2231 name': "Content-Type: application/octet-stream\nContent-Disposition: attachment; filename*=utf-8''evil.exe%00.txt\n\nx\n",
  'a NUL inside a name': 'Content-Type: application/octet-stream\nContent-Disposition: attachment; filename="evil.exe\0.txt"\n\nx\n',
  'a control character before the dot': 'Content-Type: application/octet-stream\nContent-Disposition: attachment; filename="evil\x01.exe\x7f"\n\nx\n',
  // "a.exe" in UTF-16LE, split at an odd byte across two encoded words: only joined bytes decode to it.
  'an encoded word split across two words': `Content-Type: application/octet-stream; name="=?utf-16le?B?${Buffer.from([0x61, 0, 0x2e, 0, 0x65, 0, 0x78]).toString('base64')}?= =?utf-16le?B?${Buffer.from([0, 0x65, 0]).toString('base64')}?="\n\nx\n`,
  'an .exe inside a base64-encoded attached message': `Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\n${Buffer.from(`Subject: fwd\n${EXE_PART}`).toString('base64')}\n`,
  'trailing dots and spaces': 'Content-Type: application/octet-stream\nContent-Disposition: attachment; filename="evil.exe. . "\n\nx\n',
};

let ambiguous: Setup | undefined;
for (const [what, part] of Object.entries(AMBIGUOUS)) {
  test(`ambiguous attachment name refused: ${what}`, async () => {
    ambiguous ??= attachSetup();
    await refused(ambiguous, multipart(TXT_PART, part), EXE_REFUSED);
  });
}

test('an attachment whose every name is harmless is accepted', async () => {
  const s = attachSetup();
  const ok = await s.run({ message: multipart(TXT_PART, 'Content-Type: application/pdf; name="report.pdf"\nContent-Disposition: attachment; filename="report.pdf"\n\nx\n') });
  assert.equal(ok.code, 0, ok.stderr);
});

/** Messages past each hard bound of the walk (nothing in them but harmless text parts). */
const PAST: Record<string, () => string> = {
  depth: () => nested(300, TXT_PART),
  parts: () => multipart(...Array.from({ length: 50_001 }, () => 'Content-Type: text/plain\n\nx\n')),
  'header block': () => multipart(`Content-Type: text/plain\n${padding(2 * 1024 * 1024 + 1000)}\nx\n`),
  'all headers': () => multipart(...Array.from({ length: 5 }, () => `Content-Type: text/plain\n${padding(1800 * 1024)}\nx\n`)),
};

let bounds: Setup | undefined;
for (const [what, build] of Object.entries(PAST)) {
  test(`a message past a hard bound is refused by attach by default: ${what}`, async () => {
    bounds ??= attachSetup();
    const r = await refused(bounds, build(), /^Dmessage refused: it has .* which attach cannot inspect \(#5\.3\.4\)$/, 60_000);
    assert.match(r.logLines.at(-1)!, /result=reject/);
  });
}

test('onlimit: defer (in the [attach] section) and accept (PARAMS) at a hard bound; a bad value is a configuration error', async () => {
  const d = attachSetup('[attach]\nonlimit = defer\n');
  for (const what of ['depth', 'parts']) {
    const r = await d.run({ message: PAST[what]!() });
    assert.equal(r.code, 82, `${what}: ${r.stderr}`);
    assert.match(r.errorText.toString(), /^Zmessage has .* which attach cannot inspect; try again later/, what);
  }
  assert.equal(d.standIn.calls().length, 0);
  const a = attachSetup('', ':attach=.exe,onlimit=accept\n');
  const r = await a.run({ message: PAST.depth!() });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.deliveries.length, 1);
  // What was found before the bound still counts: accept at a limit is not accept of an .exe.
  const early = multipart(EXE_PART, ...Array.from({ length: 50_001 }, () => 'Content-Type: text/plain\n\nx\n'));
  const a2 = attachSetup('', ':attach=.exe,onlimit=accept\n');
  await refused(a2, early, EXE_REFUSED);
  const bad = attachSetup('', ':attach=.exe,onlimit=maybe\n');
  const b = await bad.run({ errorFd: 'none' });
  assert.equal(b.code, 71);
  assert.match(b.stderr, /general\.cfb:1: .*onlimit must be refuse, defer or accept/);
});

test('header: a field over the bound is refused by default, deferred with onlimit=defer', async () => {
  const s = make();
  s.write('general.cfb', ':header=Subject:/lottery/\n');
  const huge = `From: a@client.example\nSubject: ${'x'.repeat(300 * 1024)} lottery\n\nbody\n`;
  await refused(s, huge, /^Dmessage refused: it has a header field over 64 KB, which header cannot inspect/);
  s.write('general.cfb', ':header=Subject:/lottery/,onlimit=defer\n');
  const r = await s.run({ message: huge });
  assert.equal(r.code, 82);
  assert.match(r.errorText.toString(), /^Z/);
  // The bound is per plugin rule name: a huge field no rule looks at is not a reason to refuse.
  s.write('general.cfb', ':header=X-Other:/lottery/\n');
  assert.equal((await s.run({ message: huge })).code, 0);
});

test('a catastrophic header regex cannot hold the message past its deadline, nor stall other messages', async () => {
  const s = make({ files: { 'nqqueue.conf': 'deadline = 5s\n' } });
  s.write('general.cfb', ':header=Subject:/(a+)+$/;header=X-Test:/^(\\w+\\s?)*$/i\n');
  const evil = `From: a@client.example\nSubject: ${'a'.repeat(40)}!\nX-Test: ${'aaaa '.repeat(12)}!\n\nbody\n`;
  const plain = 'From: a@client.example\nSubject: hello\n\nbody\n';
  const [r, other] = await Promise.all([s.run({ message: evil, timeoutMs: 20_000 }), s.run({ message: plain, timeoutMs: 20_000 })]);
  assert.equal(r.timedOut, false, 'the message did not hang');
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.ms < 5000, `answered within the deadline (${r.ms} ms)`);
  assert.equal(other.code, 0, other.stderr);
  assert.ok(other.ms < 5000, `the other message was not held up (${other.ms} ms)`);
  const hit = await s.run({ message: `From: a@client.example\nSubject: ${'a'.repeat(40)}\n\nbody\n` });
  assert.equal(hit.code, 82, 'the pattern still matches what it should');
});

test('a header pattern the linear-time engine cannot run is refused when the configuration is loaded', async () => {
  const s = make();
  s.write('general.cfb', ':header=Subject:/(a)\\1/\n');
  const r = await s.run({ errorFd: 'none' });
  assert.equal(r.code, 71);
  assert.match(r.stderr, /general\.cfb:1: .*cannot be matched in linear time/);
  const cc = s.command(['check-config']);
  assert.equal(cc.code, 1);
  assert.match(cc.stderr, /general\.cfb:1: plugin header: .*cannot be matched in linear time/);
});

test('a catastrophic /regex/ routing pattern cannot hang the message', async () => {
  const s = make({ files: { 'nqqueue.conf': 'deadline = 5s\n' } });
  s.write('nqqueue.cfb', '/(a+)+b/:header=X-Never:/x/\n:header=X-Default:/never/\n');
  const r = await s.run({ to: [`${'a'.repeat(40)}@example.com`], timeoutMs: 20_000 });
  assert.equal(r.timedOut, false, 'the message did not hang');
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.ms < 5000, `answered within the deadline (${r.ms} ms)`);
});

// A pattern the linear engine accepts may still cost much per character (counted repetitions are
// spelled out): `(a{16}){60}b`-like rules against a 60 KB field took seconds, holding the daemon's other
// messages. The field a rule takes is bounded by what its pattern costs; a rule too large to take a
// field of 1000 characters is refused when the configuration is loaded.
const COSTLY = `${'a{16}'.repeat(60)}b`;

test('a costly but linear header pattern takes only as long a field as it can match in bounded time', async () => {
  const s = make();
  s.write('general.cfb', `:header=Subject:/${COSTLY}/\n`);
  const long = `From: a@client.example\nSubject: ${'a'.repeat(60_000)}\n\nbody\n`;
  const r = await s.run({ message: long, errorFd: 'none', timeoutMs: 60_000 });
  assert.equal(r.code, 31, r.stderr);
  assert.match(r.stderr, /header field longer than the header rules for it can be matched against in bounded time/);
  s.write('general.cfb', `:header=Subject:/${COSTLY}/,onlimit=accept\n`);
  assert.equal((await s.run({ message: long, timeoutMs: 60_000 })).code, 0);
  // A field it can take is matched as usual.
  const hit = await s.run({ message: `From: a@client.example\nSubject: ${'a'.repeat(960)}b\n\nbody\n` });
  assert.equal(hit.code, 82, hit.stderr);
  const miss = await s.run({ message: `From: a@client.example\nSubject: ${'a'.repeat(500)}\n\nbody\n` });
  assert.equal(miss.code, 0, miss.stderr);
});

test('header rules or a /regex/ routing pattern too large to match in bounded time are refused with file:line', async () => {
  const s = make();
  const huge = `${'a{16}'.repeat(150)}b`;
  s.write('general.cfb', `:header=Subject:/${huge}/\n`);
  const r = await s.run({ errorFd: 'none' });
  assert.equal(r.code, 71, r.stderr);
  assert.match(r.stderr, /general\.cfb:1: .*too large to match a field of 1000 characters in bounded time/);
  s.write('general.cfb', ':header=Subject:/x/\n');
  s.write('nqqueue.cfb', `/${'[a-z]{16}'.repeat(70)}@example\\.com/:header=X-Never:/x/\n`);
  const cc = s.command(['check-config']);
  assert.equal(cc.code, 1);
  assert.match(cc.stderr, /nqqueue\.cfb:1: the regular expression .* is too large to match a 1002-byte address in bounded time/);
});
