import assert from 'node:assert/strict';
import { test } from 'node:test';

import { candidateNames, nameVariants } from '../../src/mime/names.js';
import { boundaryValues, decodeEncodedWords, paramValues } from '../../src/mime/words.js';

const has = (list: readonly string[], v: string) => assert.ok(list.includes(v), `${JSON.stringify(v)} not in ${JSON.stringify(list)}`);

test('adjacent encoded words are joined as bytes before decoding: a character split across two words', () => {
  // "é" (c3 a9) split across two B words, and across two Q words.
  assert.equal(decodeEncodedWords('=?utf-8?B?Y2Fmw6k=?='), 'café');
  assert.equal(decodeEncodedWords('=?utf-8?B?Y2Fmww==?= =?utf-8?B?qS5leGU=?='), 'café.exe');
  assert.equal(decodeEncodedWords('=?utf-8?Q?caf=C3?=\r\n =?UTF-8?Q?=A9.exe?='), 'café.exe');
  // UTF-16: every character is two bytes, split at an odd byte.
  const a = Buffer.from([0x61, 0, 0x2e, 0, 0x65, 0, 0x78]).toString('base64');
  const b = Buffer.from([0, 0x65, 0]).toString('base64');
  assert.equal(decodeEncodedWords(`=?utf-16le?B?${a}?= =?utf-16le?B?${b}?=`), 'a.exe');
  // White space between encoded words goes; between a word and text it stays; different charsets are decoded apart.
  assert.equal(decodeEncodedWords('=?utf-8?Q?a?= \t =?utf-8?Q?b?= c =?iso-8859-1?Q?=E9?='), 'ab c é');
  assert.equal(decodeEncodedWords('=?utf-8?Q?a?==?iso-8859-1?Q?=E9?='), 'aé');
  assert.equal(decodeEncodedWords('no words here'), 'no words here');
});

test('every value of a parameter: repeats, RFC 2231 charsets, continuations read every way, naive splitting', () => {
  assert.deepEqual(paramValues('attachment; filename="a.txt"; filename="b.exe"', 'filename'), ['a.txt', 'b.exe']);
  has(paramValues("attachment; filename*=utf-8''na%C3%AFve.exe", 'filename'), 'naïve.exe');
  has(paramValues("attachment; filename*=iso-8859-1''caf%E9.exe", 'filename'), 'café.exe');
  has(paramValues('attachment; filename*0="evil."; filename*1="exe"', 'filename'), 'evil.exe');
  has(paramValues("attachment; filename*0*=utf-8''%E2%82%AC; filename*1=.scr", 'filename'), '€.scr');
  // A gap: a client that stops there shows the first piece alone.
  const gap = paramValues('attachment; filename*0="evil.exe"; filename*2=".txt"', 'filename');
  has(gap, 'evil.exe');
  has(gap, 'evil.exe.txt');
  // A repeated piece number: first and last readings.
  const rep = paramValues('attachment; filename*0="a"; filename*1=".txt"; filename*1=".exe"', 'filename');
  has(rep, 'a.txt');
  has(rep, 'a.exe');
  // Plain and extended forms are both candidates.
  const both = paramValues("attachment; filename=\"a.txt\"; filename*=utf-8''b.exe", 'filename');
  has(both, 'a.txt');
  has(both, 'b.exe');
  // A parser that splits at every ';' keeps the start of a quoted value.
  has(paramValues('attachment; filename="x.exe;.txt"', 'filename'), 'x.exe');
  // Encoded words inside a parameter (not standard, but clients decode them).
  has(paramValues('application/octet-stream; name="=?utf-8?B?aW52b2ljZS5leGU=?="', 'name'), 'invoice.exe');
  assert.deepEqual(paramValues('attachment', 'filename'), []);
});

test('boundaries: every declared one, never a naive reading', () => {
  assert.deepEqual(boundaryValues('multipart/mixed; boundary="a;b"'), ['a;b']);
  assert.deepEqual(boundaryValues('multipart/mixed; boundary=A; boundary=B'), ['A', 'B']);
});

test('candidate names come from name= and filename= of every Content-Type and Content-Disposition field', () => {
  const names = candidateNames(['text/plain; name="a.txt"', 'application/octet-stream; name="b.exe"'], ['attachment; filename="c.doc"', 'inline; filename="d.vbs"']);
  for (const n of ['a.txt', 'b.exe', 'c.doc', 'd.vbs']) has(names, n);
  assert.deepEqual(candidateNames(['text/plain'], []), []);
});

test('name variants: controls stripped, cut at NUL, invisible characters dropped, trailing dots and spaces, case', () => {
  has(nameVariants('Evil.EXE'), 'evil.exe');
  has(nameVariants('evil.exe\0.txt'), 'evil.exe');
  has(nameVariants('evil.e\x01xe'), 'evil.exe');
  has(nameVariants('evil.ex\u200be'), 'evil.exe');
  has(nameVariants('evil.ex\ufffde'), 'evil.exe');
  has(nameVariants('evil.exe. . '), 'evil.exe');
  has(nameVariants('evil.exe\x7f'), 'evil.exe');
  has(nameVariants('"evil.exe"'), 'evil.exe');
  has(nameVariants('evil.\uff45\uff58\uff45'), 'evil.exe'); // fullwidth letters
  has(nameVariants('evil.exe::$DATA'), 'evil.exe');
  assert.ok(!nameVariants('report.pdf').some((v) => v.endsWith('.exe')));
});

test('odd parameter syntax: text after the closing quote, comments, raw 8-bit text in an extended value', () => {
  has(paramValues('attachment; filename="evil".exe; size=1', 'filename'), 'evil.exe');
  has(paramValues('attachment; filename=evil(x).exe', 'filename'), 'evil.exe');
  has(paramValues("attachment; filename*=utf-8''€vil.exe", 'filename'), '€vil.exe');
});
