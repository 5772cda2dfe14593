import assert from 'node:assert/strict';
import { test } from 'node:test';

import { MemoryMessage } from '../../src/intake/message.js';
import { walkMime, type MimePart } from '../../src/mime/walk.js';
import { decodeEncodedWords, parseHeaderValue } from '../../src/mime/words.js';

async function parts(text: string): Promise<MimePart[]> {
  const out: MimePart[] = [];
  await walkMime(new MemoryMessage(Buffer.from(text)).stream(), { part: (p) => void out.push(p) });
  return out;
}

test('RFC 2047 encoded words (B and Q, adjacent words joined)', () => {
  assert.equal(decodeEncodedWords('=?UTF-8?B?cmVwb3J0LmV4ZQ==?='), 'report.exe');
  assert.equal(decodeEncodedWords('=?iso-8859-1?Q?r=E9sum=E9_final.vbs?='), 'résumé final.vbs');
  assert.equal(decodeEncodedWords('=?utf-8?Q?a?= =?utf-8?Q?b.exe?='), 'ab.exe');
  assert.equal(decodeEncodedWords('plain.txt'), 'plain.txt');
});

test('RFC 2231 parameters: charset, continuations, quoted values', () => {
  assert.equal(parseHeaderValue("attachment; filename*=utf-8''na%C3%AFve.exe").params.get('filename'), 'naïve.exe');
  assert.equal(parseHeaderValue('attachment; filename*0="a"; filename*1="b.e"; filename*2="xe"').params.get('filename'), 'ab.exe');
  assert.equal(parseHeaderValue("attachment; filename*0*=utf-8''%E2%82%AC; filename*1=.scr").params.get('filename'), '€.scr');
  assert.equal(parseHeaderValue('attachment; filename="semi;colon.exe"; size=3').params.get('filename'), 'semi;colon.exe');
  assert.equal(parseHeaderValue('multipart/mixed; boundary="=_b1"').params.get('boundary'), '=_b1');
});

test('walks nested multiparts, message/rfc822 and octet-stream with a name', async () => {
  const msg = [
    'Subject: x',
    'Content-Type: multipart/mixed; boundary="A"',
    '',
    'preamble',
    '--A',
    'Content-Type: text/plain',
    '',
    '--not-a-boundary',
    '--A',
    'Content-Type: multipart/alternative; boundary=B',
    '',
    '--B',
    'Content-Type: text/html',
    '',
    '<p>hi</p>',
    '--B',
    'Content-Type: application/octet-stream; name="=?utf-8?B?aW52b2ljZS5leGU=?="',
    '',
    'AAAA',
    '--B--',
    '--A',
    'Content-Type: message/rfc822',
    '',
    'Subject: inner',
    'Content-Type: multipart/mixed; boundary="C"',
    '',
    '--C',
    'Content-Disposition: attachment;',
    '\tfilename="deep.vbs"',
    '',
    'x',
    '--C--',
    '--A--',
    'epilogue',
  ].join('\r\n');
  const p = await parts(msg);
  assert.deepEqual(
    p.map((x) => [x.depth, x.contentType, x.filename]),
    [
      [0, 'multipart/mixed', undefined],
      [1, 'text/plain', undefined],
      [1, 'multipart/alternative', undefined],
      [2, 'text/html', undefined],
      [2, 'application/octet-stream', 'invoice.exe'],
      [1, 'message/rfc822', undefined],
      [2, 'multipart/mixed', undefined],
      [3, 'text/plain', 'deep.vbs'],
    ],
  );
});
