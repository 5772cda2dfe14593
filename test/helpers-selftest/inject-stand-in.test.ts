// The qmail-inject stand-in does what qmail-inject(8) documents for the flags NQqueue uses, so the
// digest tests cannot pass against a caller qmail-inject would refuse or misread.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, test } from 'node:test';

import { makeInjectStandIn, type InjectStandIn } from '../helpers/inject.js';
import { sgetopt } from '../helpers/qmail-inject-stand-in.js';

const made: InjectStandIn[] = [];
after(() => made.forEach((m) => m.cleanup()));
function standIn(): InjectStandIn {
  const m = makeInjectStandIn();
  made.push(m);
  return m;
}

const MESSAGE = 'From: a@example.com\nTo: b@example.com\nSubject: x\n\nbody\n';

function run(m: InjectStandIn, args: string[], input = MESSAGE, env: Record<string, string> = {}) {
  return spawnSync(m.path, args, { input, env, encoding: 'utf8' });
}

test("sgetopt: qmail-inject's option rules (clusters, -fX and -f X, --, the first operand ends them)", () => {
  assert.deepEqual(sgetopt(['-fs@x', '-a', 'r@y']), { opts: [['f', 's@x'], ['a']], operands: ['r@y'] });
  assert.deepEqual(sgetopt(['-f', 's@x', '-a', 'r@y']), { opts: [['f', 's@x'], ['a']], operands: ['r@y'] });
  assert.deepEqual(sgetopt(['-af', 's@x', 'r@y']), { opts: [['a'], ['f', 's@x']], operands: ['r@y'] });
  assert.deepEqual(sgetopt(['-a', '--', '-r@y']), { opts: [['a']], operands: ['-r@y'] });
  assert.deepEqual(sgetopt(['r@y', '-a']), { opts: [], operands: ['r@y', '-a'] });
  assert.deepEqual(sgetopt(['-a', '-x@y']), { bad: 'x' }, 'a recipient that starts with a dash is taken for options');
  assert.deepEqual(sgetopt(['-f']), { bad: 'f' });
});

test('-f and -a: the envelope is the sender given and the argument recipients; the bytes and argv are recorded', () => {
  const m = standIn();
  const r = run(m, ['-fsender@example.com', '-a', 'rcpt@example.org']);
  assert.equal(r.status, 0, r.stderr);
  const [c] = m.calls();
  assert.ok(c);
  assert.equal(c.outcome, 'queued');
  assert.equal(c.sender, 'sender@example.com');
  assert.deepEqual(c.recipients, ['rcpt@example.org'], 'not b@example.com of the To field');
  assert.deepEqual(c.argv, ['-fsender@example.com', '-a', 'rcpt@example.org']);
  assert.equal(Buffer.from(c.message, 'base64').toString(), MESSAGE);
  assert.deepEqual(c.env, {});
});

test('without -f: the default sender from QMAILSUSER / QMAILSHOST, as qmail-inject documents; the environment is recorded', () => {
  const m = standIn();
  assert.equal(run(m, ['-a', 'r@example.org'], MESSAGE, { QMAILSUSER: 'bounces', QMAILSHOST: 'lists.example', QMAILINJECT: 'f' }).status, 0);
  const [c] = m.calls();
  assert.equal(c!.sender, 'bounces@lists.example');
  assert.deepEqual(c!.env, { QMAILSUSER: 'bounces', QMAILSHOST: 'lists.example', QMAILINJECT: 'f' });
});

test('refusals qmail-inject makes: a bad option, a bad header field (100); header recipients are not done (100)', () => {
  const m = standIn();
  assert.equal(run(m, ['-x', 'r@example.org']).status, 100);
  assert.equal(run(m, ['-a', 'r@example.org'], 'Bad Name: x\n\nbody\n').status, 100);
  assert.equal(run(m, ['-a', 'r@example.org'], 'no colon here\n\nbody\n').status, 100);
  assert.equal(run(m, ['-a', 'r@example.org'], 'X\u0001: y\n\nbody\n').status, 100);
  assert.equal(run(m, ['-h']).status, 100);
  assert.equal(run(m, []).status, 100);
  assert.deepEqual(
    m.calls().map((c) => c.outcome.split(' ').slice(0, 2).join(' ')),
    ['exit 100', 'exit 100', 'exit 100', 'exit 100', 'exit 100', 'exit 100'],
  );
  assert.equal(m.queued().length, 0);
  // A folded field is one field, and a body line with a colon and spaces is not a header.
  assert.equal(run(m, ['-a', 'r@example.org'], 'Subject: a\n  folded\n\nnot a: header line\n').status, 0);
});

test('failure modes: 111 or 100 on chosen calls or on every call, after reading the message', () => {
  const m = standIn();
  m.setOptions({ failOn: [{ call: 2, code: 111 }] });
  assert.equal(run(m, ['-a', 'r@example.org']).status, 0);
  assert.equal(run(m, ['-a', 'r@example.org']).status, 111);
  assert.equal(run(m, ['-a', 'r@example.org']).status, 0);
  m.setOptions({ failAll: 100 });
  assert.equal(run(m, ['-a', 'r@example.org']).status, 100);
  assert.deepEqual(
    m.calls().map((c) => c.outcome),
    ['queued', 'fail 111', 'queued', 'fail 100'],
  );
  assert.ok(m.calls().every((c) => Buffer.from(c.message, 'base64').toString() === MESSAGE));
});

test('-n prints the message instead of queueing it', () => {
  const m = standIn();
  const r = run(m, ['-n', '-a', 'r@example.org']);
  assert.equal(r.status, 0);
  assert.equal(r.stdout, MESSAGE);
  assert.equal(m.queued().length, 0);
});
