import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { test } from 'node:test';

import { MIME_LIMITS, MimeLimitError } from '../../src/mime/limits.js';
import { walkMime, type MimePart } from '../../src/mime/walk.js';

/** The message in chunks of `chunk` bytes, so lines are split across reads. */
function stream(text: string | Buffer, chunk = 7): Readable {
  const buf = Buffer.isBuffer(text) ? text : Buffer.from(text);
  const parts: Buffer[] = [];
  for (let i = 0; i < buf.length; i += chunk) parts.push(buf.subarray(i, i + chunk));
  return Readable.from(parts);
}

async function walk(text: string | Buffer, chunk?: number) {
  const fields: [number, string, string][] = [];
  const parts: MimePart[] = [];
  const bodyNames: string[] = [];
  await walkMime(stream(text, chunk), {
    field: (p, n, v) => void fields.push([p.index, n, v]),
    part: (p) => void parts.push(p),
    bodyName: (_p, n) => void bodyNames.push(n),
  });
  return { fields, parts, bodyNames };
}

test('every header field of every part, unfolded, with its part; lines split across reads', async () => {
  const msg = 'Subject: a\r\n b\r\nContent-Type: multipart/mixed; boundary=X\r\n\r\n--X\r\nX-One: 1\r\n\r\nbody\r\n--X\r\nX-Two: 2\r\n\r\n--X--\r\n';
  for (const chunk of [1, 3, 7, 1000]) {
    const { fields } = await walk(msg, chunk);
    assert.deepEqual(fields, [
      [0, 'subject', 'a b'],
      [0, 'content-type', 'multipart/mixed; boundary=X'],
      [1, 'x-one', '1'],
      [2, 'x-two', '2'],
    ]);
  }
});

test('a header block cut short by a boundary ends the part there', async () => {
  const { parts } = await walk('Content-Type: multipart/mixed; boundary=X\n\n--X\nContent-Type: application/octet-stream; name=a.exe\n--X\nContent-Type: text/plain\n\nhi\n--X--\n');
  assert.deepEqual(parts.map((p) => [p.index, p.contentType, p.filename]), [
    [0, 'multipart/mixed', undefined],
    [1, 'application/octet-stream', 'a.exe'],
    [2, 'text/plain', undefined],
  ]);
});

test('a stray close delimiter or a second boundary parameter does not end the walk', async () => {
  const msg = [
    'Content-Type: multipart/mixed; boundary=A; boundary=B',
    '',
    '--A',
    'Content-Type: text/plain',
    '',
    '--A--',
    '--B',
    'Content-Type: application/octet-stream; name=hidden.exe',
    '',
    'x',
    '--B--',
    '',
  ].join('\n');
  const { parts } = await walk(msg);
  assert.ok(parts.some((p) => p.names.includes('hidden.exe')));
});

test('several Content-Type fields: the part is walked as a multipart if any of them says so', async () => {
  const msg = 'Content-Type: text/plain\nContent-Type: multipart/mixed; boundary=Q\n\n--Q\nContent-Disposition: attachment; filename=x.vbs\n\n--Q--\n';
  const { parts } = await walk(msg);
  assert.deepEqual(parts.map((p) => p.names), [[], ['x.vbs']]);
});

test('message/rfc822 and digest parts are read as messages; uuencoded names in bodies are reported', async () => {
  const msg = [
    'Content-Type: multipart/digest; boundary=D',
    '',
    '--D',
    '',
    'Subject: inner',
    'Content-Type: application/octet-stream; name=in.exe',
    '',
    'x',
    '--D',
    'Content-Type: text/plain',
    '',
    'begin 644 old.exe',
    'M',
    'end',
    '--D--',
    '',
  ].join('\n');
  const { parts, bodyNames, fields } = await walk(msg);
  assert.deepEqual(parts.map((p) => [p.depth, p.contentType]), [
    [0, 'multipart/digest'],
    [1, 'message/rfc822'],
    [2, 'application/octet-stream'],
    [1, 'text/plain'],
  ]);
  assert.ok(fields.some(([, n, v]) => n === 'subject' && v === 'inner'));
  assert.deepEqual(bodyNames, ['old.exe']);
});

test('depth: 200 levels are walked; past the bound the walk stops with MimeLimitError', async () => {
  const nested = (levels: number) => {
    let out = 'Content-Type: multipart/mixed; boundary=b0\n\n';
    for (let i = 1; i < levels; i++) out += `--b${i - 1}\nContent-Type: multipart/mixed; boundary=b${i}\n\n`;
    return out + `--b${levels - 1}\nContent-Type: text/plain; name=leaf.txt\n\nx\n`;
  };
  const { parts } = await walk(nested(200), 4096);
  assert.equal(parts.at(-1)!.depth, 200);
  assert.deepEqual(parts.at(-1)!.names, ['leaf.txt']);
  await assert.rejects(walk(nested(MIME_LIMITS.depth + 1), 4096), (e) => e instanceof MimeLimitError && e.kind === 'depth');
});

test('header bytes: a block over the bound, and all blocks together over theirs, stop the walk', async () => {
  const line = `X-Pad: ${'p'.repeat(100)}\n`;
  const block = (bytes: number) => line.repeat(Math.ceil(bytes / line.length));
  const big = `Subject: x\n${block(MIME_LIMITS.blockBytes + 10)}\nbody\n`;
  await assert.rejects(walk(big, 65536), (e) => e instanceof MimeLimitError && e.kind === 'header-block');
  // One line longer than the bound, without a newline, is caught as it arrives.
  await assert.rejects(walk(`Subject: ${'x'.repeat(MIME_LIMITS.blockBytes + 10)}`, 65536), (e) => e instanceof MimeLimitError && e.kind === 'header-block');
  const parts = Array.from({ length: 5 }, () => `--X\n${block(MIME_LIMITS.blockBytes * 0.9)}\nx\n`).join('');
  await assert.rejects(walk(`Content-Type: multipart/mixed; boundary=X\n\n${parts}--X--\n`, 65536), (e) => e instanceof MimeLimitError && e.kind === 'header-total');
  // A long body line is not header: no bound, nothing kept.
  const { parts: ok } = await walk(`Subject: x\n\n${'y'.repeat(MIME_LIMITS.blockBytes * 2)}\n`, 65536);
  assert.equal(ok.length, 1);
});

test('parts: past the bound the walk stops', async () => {
  const many = (n: number) => `Content-Type: multipart/mixed; boundary=X\n\n${'--X\n\n'.repeat(n)}--X--\n`;
  const { parts } = await walk(many(MIME_LIMITS.parts - 1), 65536);
  assert.equal(parts.length, MIME_LIMITS.parts);
  await assert.rejects(walk(many(MIME_LIMITS.parts), 65536), (e) => e instanceof MimeLimitError && e.kind === 'parts');
});

test('a handler that returns true stops the walk; an aborted signal rejects it', async () => {
  let seen = 0;
  await walkMime(stream('A: 1\nB: 2\nC: 3\n\n'), { field: () => ++seen === 2 });
  assert.equal(seen, 2);
  const ac = new AbortController();
  ac.abort(new Error('deadline'));
  await assert.rejects(walkMime(stream('A: 1\n\n'), {}, ac.signal), /deadline/);
});

test('delimiters are matched as leniently as a client would: trailing text, ASCII case, non-ASCII boundaries, the longest boundary', async () => {
  const msg = [
    'Content-Type: multipart/mixed; boundary="Outer"',
    '',
    '--OUTER trailing junk',
    'Content-Type: multipart/alternative; boundary="Outer_inner"',
    '',
    '--Outer_inner',
    'Content-Type: text/plain; name=in.txt',
    '',
    'x',
    '--Outer_inner--',
    '--Outerxyz',
    'Content-Type: multipart/mixed; boundary="é"',
    '',
    '--é',
    'Content-Type: application/octet-stream; name=utf8.exe',
    '',
    'x',
    '--é--',
    '--Outer--',
    '',
  ].join('\n');
  const { parts } = await walk(msg);
  assert.deepEqual(parts.map((p) => [p.depth, p.names.join()]), [
    [0, ''],
    [1, ''],
    [2, 'in.txt'],
    [1, ''],
    [2, 'utf8.exe'],
  ]);
});

test('an attached message sent base64 or quoted-printable is decoded and walked, its parts and fields included', async () => {
  const inner = 'Subject: inside\r\nContent-Type: multipart/mixed; boundary=IN\r\n\r\n--IN\r\nContent-Type: application/octet-stream; name="deep.exe"\r\n\r\nx\r\n--IN--\r\n';
  const b64 = Buffer.from(inner).toString('base64').replace(/.{1,76}/g, '$&\n');
  const qp = inner.replace(/=/g, '=3D').replace(/\r\n/g, '=0D=0A=\n');
  const oneLine = Buffer.from(inner).toString('base64'); // one long line, longer than any kept line start
  for (const [cte, body] of [
    ['base64', b64],
    ['quoted-printable', qp],
    ['base64', oneLine.repeat(1) + '\n'],
  ] as const) {
    const msg = `Content-Type: multipart/mixed; boundary=OUT\n\n--OUT\nContent-Type: message/rfc822\nContent-Transfer-Encoding: ${cte}\n\n${body}--OUT\nContent-Type: text/plain\n\nafter\n--OUT--\n`;
    const { parts, fields } = await walk(msg);
    assert.ok(parts.some((p) => p.depth === 3 && p.names.includes('deep.exe')), `${cte}: ${JSON.stringify(parts.map((p) => [p.depth, p.names]))}`);
    assert.ok(fields.some(([, n, v]) => n === 'subject' && v === 'inside'), cte);
    assert.equal(parts.at(-1)!.contentType, 'text/plain', `${cte}: the walk goes on after the encoded message`);
  }
});
