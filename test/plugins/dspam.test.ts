// dspam: reading its output (the X-DSPAM-* fields it added, its classes).

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { BackendError } from '../../src/plugin-api/define.js';
import { addedFields, dspamFields, dspamVerdict } from '../../src/plugins/dspam.js';

const OUTPUT = Buffer.from(
  'Received: from x\nSubject: hi\nX-DSPAM-Result: Innocent\nX-DSPAM-Processed: Thu Nov 26 16:00:53 2026\n' +
    'X-DSPAM-Confidence: 0.9997\nX-DSPAM-Improbability: 1 in 47847 chance of being spam\nX-DSPAM-Probability: 0.0000\n' +
    'X-DSPAM-Signature: 1,52e9868836001165617631\nX-DSPAM-Factors: 27,\n\t$+git, 0.00010,\n    is+deprecated, 0.00010\n\nbody\nX-DSPAM-Result: Spam\n',
);

test('the X-DSPAM-* fields of the header block, folds kept as \\n\\t, nothing from the body', () => {
  const fields = dspamFields(OUTPUT);
  assert.deepEqual(
    fields.map((f) => f.name),
    ['X-DSPAM-Result', 'X-DSPAM-Processed', 'X-DSPAM-Confidence', 'X-DSPAM-Improbability', 'X-DSPAM-Probability', 'X-DSPAM-Signature', 'X-DSPAM-Factors'],
  );
  assert.equal(fields[6]!.value, '27,\n\t$+git, 0.00010,\n\tis+deprecated, 0.00010');
  assert.equal(fields[1]!.value, 'Thu Nov 26 16:00:53 2026');
  assert.deepEqual(dspamVerdict(fields), { result: 'Innocent', spam: false });
});

test('fields the message already had are not dspam\'s', () => {
  const input = [{ name: 'X-DSPAM-Result', value: 'Innocent' }];
  const output = [
    { name: 'X-DSPAM-Result', value: 'Innocent' },
    { name: 'X-DSPAM-Result', value: 'Spam' },
    { name: 'X-DSPAM-Signature', value: 'abc' },
  ];
  assert.deepEqual(addedFields(input, output), output.slice(1));
  assert.deepEqual(dspamVerdict(addedFields(input, output)), { result: 'Spam', spam: true });
});

test('classes: Spam, Virus, Blacklisted and Blocklisted are spam; Innocent and Whitelisted are not; anything else is a failure', () => {
  const v = (result: string) => dspamVerdict([{ name: 'X-DSPAM-Result', value: result }]).spam;
  assert.deepEqual(['Spam', 'Virus', 'Blacklisted', 'Blocklisted', 'Innocent', 'Whitelisted'].map(v), [true, true, true, true, false, false]);
  assert.throws(() => v('Maybe'), BackendError);
  assert.throws(() => dspamVerdict([]), /no X-DSPAM-Result/);
});
