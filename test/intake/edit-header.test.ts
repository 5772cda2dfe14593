// Editing the header block of a message view: the result is the new block over the old body, read
// from where it is (memory or the spill file), byte for byte — however the view was made.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import { editHeader, FileMessage, MAX_EDIT_HEAD, MemoryMessage, PrefixedMessage, prefixMessage, TailMessage } from '../../src/intake/message.js';
import { removeFields, replaceSubject } from '../../src/mime/header-block.js';
import { messageKey } from '../../src/plugin-api/message-key.js';
import type { MessageView } from '../../src/pipeline/types.js';

const X_SPAM = (n: string) => /^x-spam/i.test(n);

async function bytes(v: MessageView): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of v.chunks()) parts.push(Buffer.from(c));
  const viaChunks = Buffer.concat(parts);
  const viaStream: Buffer[] = [];
  for await (const c of v.stream()) viaStream.push(c as Buffer);
  assert.ok(viaChunks.equals(Buffer.concat(viaStream)), 'chunks() and stream() agree');
  assert.ok(viaChunks.equals(await v.buffer()), 'chunks() and buffer() agree');
  assert.equal(v.size, viaChunks.length);
  return viaChunks;
}

const HEAD = 'Received: from a\nX-Spam: forged\nSubject: hello\n\tfolded\nTo: b\nX-Spam-Flag: YES\n\n';
const BODY = 'body X-Spam: stays\nSubject: in the body\n'.repeat(5000);

test('a removal and a Subject rewrite of a spilled message: the body is read from the file, the bytes are exact', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'nqq-edit-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'msg');
  writeFileSync(path, HEAD + BODY);
  const file = new FileMessage(path, Buffer.byteLength(HEAD + BODY));
  const edited = await editHeader(file, (h) => replaceSubject(removeFields(h, X_SPAM) ?? h, 'new'));
  assert.ok(edited instanceof PrefixedMessage);
  assert.ok(edited.base instanceof TailMessage && edited.base.root === file, 'the body is the file, not a copy');
  assert.equal(edited.prefix.toString(), 'Received: from a\nSubject: new\nTo: b\n\n');
  assert.equal((await bytes(edited)).toString(), `Received: from a\nSubject: new\nTo: b\n\n${BODY}`);
  // A second edit of the edited view, and headers added in front of it, still end on the same body.
  const again = await editHeader(prefixMessage(Buffer.from('X-Added: 1\n'), edited), (h) => removeFields(h, (n) => n === 'To'));
  assert.ok(again instanceof PrefixedMessage && again.base === edited.base);
  assert.equal((await bytes(again)).toString(), `X-Added: 1\nReceived: from a\nSubject: new\n\n${BODY}`);
  assert.equal(await editHeader(file, () => undefined), undefined);
});

test('different edits of one message share one body view; the same edit gives the same key', async () => {
  const base = new MemoryMessage(Buffer.from(HEAD + BODY));
  const a = (await editHeader(base, (h) => replaceSubject(h, 'a'))) as PrefixedMessage;
  const b = (await editHeader(base, (h) => replaceSubject(h, 'b'))) as PrefixedMessage;
  const a2 = (await editHeader(base, (h) => replaceSubject(h, 'a'))) as PrefixedMessage;
  assert.equal(a.base, b.base);
  assert.notEqual(messageKey(a), messageKey(b));
  assert.equal(messageKey(a), messageKey(a2));
  assert.equal((await bytes(b)).toString(), HEAD.replace('Subject: hello\n\tfolded\n', 'Subject: b\n') + BODY);
});

test('a header block that lies all in a prefix; a message with no body; a message with no blank line', async () => {
  const inPrefix = new PrefixedMessage(Buffer.from('X-Spam: a\nB: 1\n\nbody start '), new MemoryMessage(Buffer.from('and the rest\n')));
  const e1 = await editHeader(inPrefix, (h) => removeFields(h, X_SPAM));
  assert.equal((await bytes(e1!)).toString(), 'B: 1\n\nbody start and the rest\n');
  const noBody = new MemoryMessage(Buffer.from('X-Spam: a\nB: 1\n'));
  assert.equal((await bytes((await editHeader(noBody, (h) => removeFields(h, X_SPAM)))!)).toString(), 'B: 1\n');
  const blankFirst = new MemoryMessage(Buffer.from('\nX-Spam: body\n'));
  assert.equal(await editHeader(blankFirst, (h) => removeFields(h, X_SPAM)), undefined);
});

test('a header block over MAX_EDIT_HEAD is refused (NQQ_ERR_HEADER_TOO_LARGE), never half edited', async () => {
  const pad = 'X-Pad: '.padEnd(70, 'p') + '\n';
  const huge = new MemoryMessage(Buffer.from(`${pad.repeat(Math.ceil(MAX_EDIT_HEAD / pad.length) + 10)}X-Spam: hidden\n\nbody\n`));
  await assert.rejects(() => editHeader(huge, (h) => removeFields(h, X_SPAM)), (err: unknown) => (err as { code?: string }).code === 'NQQ_ERR_HEADER_TOO_LARGE');
});

test('a CRLF message (local injection) is edited at its CRLF blank line', async () => {
  const crlf = new MemoryMessage(Buffer.from(`A: 1\r\nX-Spam: x\r\n\r\n${'X-Spam: in the body\r\n'.repeat(100_000)}`));
  const e = await editHeader(crlf, (h) => removeFields(h, X_SPAM));
  assert.equal((await bytes(e!)).toString(), `A: 1\r\n\r\n${'X-Spam: in the body\r\n'.repeat(100_000)}`);
});
