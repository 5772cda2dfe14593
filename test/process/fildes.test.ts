// A spilled message reaches a local clamd as its open file (FILDES), with the verdict, refusal text and
// log line an INSTREAM scan gives; `[clamav] fildes = no` and a TCP clamd stream it. Standalone and in
// daemon mode (nqqueue serve keeps its clamd sessions).

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { requireDaemon } from '../helpers/daemons.js';
import { setupsForThisFile, withoutTrace } from '../helpers/nqq.js';
import { RESULTS_PLUGIN, pluginDir, viaSmtpd } from '../helpers/e2e.js';
import { eicarPlain, ham } from '../fixtures/messages.js';

const LIMIT = { timeout: 120_000 };
const EICAR_NAME = 'Eicar-Test-NDB.UNOFFICIAL';
const VIRUS_TEXT = `DMessage rejected because it contains a virus: ${EICAR_NAME} (#5.7.1)`;
const make = setupsForThisFile();

/** Over the 1M spill threshold: kept in a private file. */
const bigEicar = () => viaSmtpd(Buffer.concat([ham(1536 * 1024), eicarPlain()]));

test('EICAR in a spilled message is refused through FILDES, as INSTREAM refuses it; fildes = no streams it', LIMIT, async (t) => {
  const sock = requireDaemon('NQQ_TEST_CLAMD_SOCKET', t);
  if (!sock) return;
  for (const fildes of ['', 'fildes = yes\n', 'fildes = no\n']) {
    const s = make();
    s.write('nqqueue.conf', `[clamav]\nsocket = ${sock}\n${fildes}`);
    s.write('general.cfb', ':clamav\n');
    const r = await s.run({ message: bigEicar() });
    assert.equal(r.code, 82, r.stderr);
    assert.equal(r.errorText.toString(), VIRUS_TEXT);
    assert.equal(s.standIn.calls().length, 0);
    assert.match(r.logLines[0]!, /result=reject /);
    const via = fildes === 'fildes = no\n' ? 'instream' : 'fildes';
    assert.match(r.logLines[0]!, new RegExp(`clamav flagged virus=${EICAR_NAME.replace(/\./g, '\\.')} backend=\\S+ ms=[\\d.]+ via=${via}`));
  }
});

test('a clean spilled message is delivered byte for byte after a FILDES scan; over TCP it is streamed', LIMIT, async (t) => {
  const sock = requireDaemon('NQQ_TEST_CLAMD_SOCKET', t);
  const tcp = requireDaemon('NQQ_TEST_CLAMD_TCP', t);
  if (!sock || !tcp) return;
  for (const [line, via] of [
    [`socket=${sock}`, 'fildes'],
    [`host=${tcp}`, 'instream'],
  ] as const) {
    const s = make();
    const dir = pluginDir(s, { results: RESULTS_PLUGIN });
    s.write('nqqueue.conf', `plugin_dir = ${dir}\n`);
    s.write('general.cfb', `:clamav=${line};results\n`);
    const message = viaSmtpd(ham(1536 * 1024));
    const r = await s.run({ message });
    assert.equal(r.code, 0, r.stderr);
    const got = withoutTrace(r.deliveries[0]!.message);
    const m = /^X-Results: (.*)\n/.exec(got.subarray(0, 4096).toString('latin1'));
    assert.ok(m);
    const [clamav] = JSON.parse(m[1]!) as { plugin: string; verdict: string; details: { virus: null; via: string } }[];
    assert.deepEqual([clamav!.plugin, clamav!.verdict, clamav!.details.virus, clamav!.details.via], ['clamav', 'accept', null, via]);
    assert.ok(got.subarray(got.indexOf('\n') + 1).equals(message), 'the message itself is unchanged');
  }
});

test('fildes takes yes or no', LIMIT, async () => {
  const s = make();
  s.write('nqqueue.conf', '[clamav]\nfildes = maybe\n');
  s.write('general.cfb', ':clamav\n');
  const r = s.command(['check-config']);
  assert.equal(r.code, 1);
  assert.match(r.stdout + r.stderr, /nqqueue\.conf:2: .*fildes/);
});
