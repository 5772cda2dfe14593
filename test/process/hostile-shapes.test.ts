// Message shapes a spammer or a malware author builds to get a name or a header past `attach` and
// `header`: what a mail client would show must be what the plugins see.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { setupsForThisFile, type Outcome, type Setup } from '../helpers/nqq.js';

const make = setupsForThisFile();

const EXE_REFUSED = /^Dmessage refused: attachments of type \.exe are not accepted/;
const SUBJECT_REFUSED = /^Dmessage refused: its subject header is not accepted/;

/** Run `message` through `s`: it must be refused with `text`, and nothing queued by this run. */
async function refused(s: Setup, message: Buffer | string, text: RegExp): Promise<Outcome> {
  const before = s.standIn.calls().length;
  const r = await s.run({ message });
  assert.equal(r.code, 82, r.stderr);
  assert.match(r.errorText.toString(), text);
  assert.equal(s.standIn.calls().length, before, 'nothing queued');
  return r;
}

async function accepted(s: Setup, message: Buffer | string): Promise<void> {
  const r = await s.run({ message });
  assert.equal(r.code, 0, r.stderr);
}

let attachS: Setup | undefined;
const attach = () => (attachS ??= (() => {
  const s = make();
  s.write('general.cfb', ':attach=.exe\n');
  return s;
})());

let headerS: Setup | undefined;
const header = () => (headerS ??= (() => {
  const s = make();
  s.write('general.cfb', ':header=Subject:/lottery/i\n');
  return s;
})());

test('a header block that ends at the end of the message (no blank line, no body) is inspected to its last field', async () => {
  await refused(header(), 'Received: from x\nFrom: a@client.example\nSubject: You won the lottery\n', SUBJECT_REFUSED);
  await refused(attach(), 'From: a@client.example\nContent-Type: application/octet-stream; name="evil.exe"\n', EXE_REFUSED);
  // The last part of a multipart whose header block the end of the message cuts short.
  await refused(
    attach(),
    'From: a@client.example\nContent-Type: multipart/mixed; boundary="XX"\n\n--XX\nContent-Type: text/plain\n\nhi\n--XX\nContent-Disposition: attachment; filename="evil.exe"\n',
    EXE_REFUSED,
  );
  await accepted(header(), 'From: a@client.example\nSubject: hello\n');
});

test('lone CR line ends (which some clients end a line at) hide neither a part nor a header', async () => {
  const cr = (text: string) => text.replace(/\n/g, '\r');
  const exe = 'Content-Type: multipart/mixed; boundary="XX"\n\npre\n--XX\nContent-Type: application/octet-stream; name="evil.exe"\n\nTVqQ\n--XX--\n';
  // The whole message with CR line ends, and only the part's lines.
  await refused(attach(), cr(`From: a@client.example\nSubject: x\nMIME-Version: 1.0\n${exe}`), EXE_REFUSED);
  await refused(
    attach(),
    'From: a@client.example\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="XX"\n\npre\n--XX\rContent-Type: application/octet-stream; name="evil.exe"\r\rTVqQ\n--XX--\n',
    EXE_REFUSED,
  );
  await refused(header(), 'Received: from x\nFrom: a@client.example\rSubject: lottery\r\rbody\n', SUBJECT_REFUSED);
  // CRLF line ends are one line end, and a lone CR inside a harmless message changes nothing.
  await accepted(attach(), 'From: a@client.example\r\nSubject: x\r\n\r\nbody\rmore\r\n');
});

/** A multipart message with one attachment part whose Content-Type is `type`. */
const withPart = (type: string) =>
  `From: a@client.example\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="XX"\n\n--XX\nContent-Type: text/plain\n\nhi\n--XX\nContent-Type: ${type}\n\nTVqQ\n--XX--\n`;
const b64 = (b: Buffer) => b.toString('base64');

test('names and Subjects in charsets clients decode: UTF-7, UTF-16 without a byte order mark (either byte order)', async () => {
  await refused(attach(), withPart('application/octet-stream; name="=?utf-7?Q?evil+AC4-exe?="'), EXE_REFUSED);
  await refused(attach(), withPart("application/octet-stream; name*=utf-7''evil+AC4-exe"), EXE_REFUSED);
  await refused(attach(), withPart(`application/octet-stream; name="=?utf-16?B?${b64(Buffer.from('evil.exe', 'utf16le').swap16())}?="`), EXE_REFUSED);
  await refused(attach(), withPart(`application/octet-stream; name="=?utf-16?B?${b64(Buffer.from('evil.exe', 'utf16le'))}?="`), EXE_REFUSED);
  // White space inside an encoded word, which lenient decoders take.
  await refused(attach(), withPart('application/octet-stream; name="=?utf-8?Q?evil.exe ?="'), EXE_REFUSED);
  await refused(header(), 'From: a@client.example\nSubject: =?utf-7?Q?lot+AHQ-ery?=\n\nbody\n', SUBJECT_REFUSED);
  await refused(header(), `From: a@client.example\nSubject: =?utf-16?B?${b64(Buffer.from('lottery', 'utf16le').swap16())}?=\n\nbody\n`, SUBJECT_REFUSED);
  await accepted(attach(), withPart(`application/pdf; name="=?utf-16?B?${b64(Buffer.from('report.pdf', 'utf16le').swap16())}?="`));
});

test('a NUL or a lone CR inside a header field does not split a word a header rule looks for', async () => {
  await refused(header(), Buffer.from('From: a@client.example\nSubject: You won the lot\0tery\n\nbody\n', 'latin1'), SUBJECT_REFUSED);
  await refused(header(), 'From: a@client.example\nSubject: You won the lot\rtery\n\nbody\n', SUBJECT_REFUSED);
  await accepted(header(), Buffer.from('From: a@client.example\nSubject: a\0b\n\nbody\n', 'latin1'));
});

test('a media type or a boundary written with comments, white space or no subtype is read as lenient clients read it', async () => {
  const exe = 'Content-Type: application/octet-stream; name="evil.exe"\n\nTVqQ\n';
  for (const ct of [
    'multipart; boundary=XX',
    'multipart (mixed) / mixed; boundary=XX',
    '(c) Multipart/Mixed; boundary=XX',
    'multipart/mixed; boundary=XX(comment)',
    'multipart/mixed; boundary=(c)"XX"',
  ]) {
    await refused(attach(), `From: a@client.example\nMIME-Version: 1.0\nContent-Type: ${ct}\n\n--XX\n${exe}--XX--\n`, EXE_REFUSED);
  }
});

test('control characters and percent escapes in a parameter field do not hide a name', async () => {
  for (const ct of [
    'application/octet-stream;\0 name="evil.exe"',
    'application/octet-stream; na\0me="evil.exe"',
    'application/octet-stream; name="evil.exe%00.txt"',
    'application/octet-stream; name="evil%2Eexe"',
  ]) {
    await refused(attach(), Buffer.from(withPart(ct), 'latin1'), EXE_REFUSED);
  }
  await accepted(attach(), withPart('application/pdf; name="100%25 report.pdf"'));
});

test('a multipart sent base64 or quoted-printable (which some clients decode) does not hide the parts inside', async () => {
  const inside = '--XX\nContent-Type: text/plain\n\nhi\n--XX\nContent-Type: application/octet-stream; name="evil.exe"\n\nTVqQ\n--XX--\n';
  const top = (cte: string, body: string) => `From: a@client.example\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="XX"\nContent-Transfer-Encoding: ${cte}\n\n${body}`;
  await refused(attach(), top('base64', `${Buffer.from(inside).toString('base64').replace(/.{76}/g, '$&\n')}\n`), EXE_REFUSED);
  await refused(attach(), top('quoted-printable', `${inside.replace(/=/g, '=3D').replace(/\n/g, '=0A=\n')}\n`), EXE_REFUSED);
  // Nested: an encoded multipart inside a part.
  const nestedPart = `Content-Type: multipart/alternative; boundary="YY"\nContent-Transfer-Encoding: base64\n\n${Buffer.from(inside.replace(/XX/g, 'YY')).toString('base64')}\n`;
  await refused(attach(), withPart('text/plain').replace('--XX\nContent-Type: text/plain\n\nhi\n', `--XX\n${nestedPart}`), EXE_REFUSED);
  // A raw delimiter line ahead of the encoded parts (four base64 letters: a decoding client reads three
  // bytes of noise, then the parts) does not end what such a client shows.
  const in4 = `\n${inside.replace(/XX/g, 'XXXX')}`;
  await refused(
    attach(),
    `From: a@client.example\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="XXXX"\nContent-Transfer-Encoding: base64\n\n--XXXX\n${Buffer.from(in4).toString('base64')}\n`,
    EXE_REFUSED,
  );
  // A plain multipart that only says quoted-printable (some generators do) still passes.
  await accepted(attach(), top('quoted-printable', '--XX\nContent-Type: text/plain\n\nhi\n--XX--\n'));
});

test('more encoded multiparts than the bound is a bound like the others: refused by default', async () => {
  const part = (i: number) => `--XX\nContent-Type: multipart/mixed; boundary="E${i}"\nContent-Transfer-Encoding: quoted-printable\n\n--E${i}--\n`;
  const msg = (n: number) => `From: a@client.example\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="XX"\n\n${Array.from({ length: n }, (_, i) => part(i)).join('')}--XX--\n`;
  await accepted(attach(), msg(16));
  await refused(attach(), msg(17), /^Dmessage refused: it has more than 16 multiparts sent encoded, which attach cannot inspect/);
});
