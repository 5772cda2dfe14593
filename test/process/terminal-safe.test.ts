// The log line is terminal-safe: control characters that came from outside (addresses, plugin texts,
// header lines) are written as visible escapes, never raw, in the text and the JSON format alike.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { envelopeOf, setupsForThisFile } from '../helpers/nqq.js';

const make = setupsForThisFile();

/** Bytes a terminal acts on: C0 but the line's own newline, DEL, C1 as UTF-8 (\xc2\x80-\xc2\x9f). */
function rawControls(buf: Buffer): string[] {
  const found: string[] = [];
  for (let i = 0; i < buf.length; i++) {
    const b = buf[i]!;
    if ((b < 0x20 && b !== 0x0a) || b === 0x7f) found.push(`\\x${b.toString(16).padStart(2, '0')} at ${i}`);
    if (b === 0xc2 && buf[i + 1]! >= 0x80 && buf[i + 1]! <= 0x9f) found.push(`\\xc2\\x${buf[i + 1]!.toString(16)} at ${i}`);
  }
  return found;
}

// ESC[2J (clear screen), CSI as one UTF-8 character (\xc2\x9b), a raw \x9b byte, CR, BEL.
const SENDER = Buffer.concat([Buffer.from('evil\xc2\x9b2J', 'latin1'), Buffer.from([0x9b]), Buffer.from('x@client.example')]);
const REJECT = `#!/bin/sh\ncat >/dev/null\nprintf 'go away \\033[2J\\302\\2332J\\007 now\\r later\\n'\nexit 100\n`;

for (const format of ['text', 'json'] as const) {
  test(`log line (${format}): a hostile sender and a plugin's refusal text are escaped, never raw`, async () => {
    const s = make();
    const prog = s.script('reject.sh', REJECT);
    s.write('general.cfb', `:exec=${prog}\n`);
    s.write('nqqueue.conf', `log_format = ${format}\n`);
    const r = await s.run({ envelope: envelopeOf(SENDER, ['rcpt@example.com']), extraEnv: { NQQUEUE_REJECT: 'plain' } });
    assert.equal(r.code, 31, r.stderr);
    assert.equal(s.standIn.calls().length, 0);
    const stderr = Buffer.from(r.stderr, 'utf8');
    assert.deepEqual(rawControls(stderr), [], r.stderr);
    const line = r.stderr.split('\n').find((l) => /result.{1,3}reject/.test(l));
    assert.ok(line, r.stderr);
    // The escapes are visible: whoever reads the log sees that something was there.
    assert.match(line, /evil\\u009b2J/);
    assert.match(line, /go away \\u001b\[2J\\u009b2J\\u0007 now/);
    if (format === 'json') {
      const parsed = JSON.parse(line.slice(line.indexOf('{')));
      assert.equal(parsed.reason.includes('\x1b[2J\u009b2J\x07'), true, 'the JSON still parses to the very text');
    }
  });
}

test('log line: a plugin failure whose text carries control characters (a refused header) is escaped', async () => {
  const s = make();
  // ESC ] 0 ; ... BEL retitles the terminal window; the header is refused, the failure text names it.
  const flag = s.script('flag.sh', `#!/bin/sh\ncat >/dev/null\nprintf 'X-\\302\\233Note\\033]0;pwned\\007: x\\n'\nexit 0\n`);
  s.write('general.cfb', `:exec=${flag}\n`);
  const r = await s.run({ extraEnv: { NQQUEUE_DEBUG: '3', NQQUEUE_REJECT: 'plain' } });
  assert.equal(r.code, 71, r.stderr);
  assert.deepEqual(rawControls(Buffer.from(r.stderr, 'utf8')), [], r.stderr);
  assert.match(r.stderr, /notes=.*exec failed/);
});
