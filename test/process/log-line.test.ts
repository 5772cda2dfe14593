// The log line's fields that join a message up with qmail's own logs (qp, qq, msgid), the way it came
// (via), and its exit as qmail-smtpd sees it — in both modes (the daemon-mode rerun of this suite).

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { DAEMON_MODE, setupsForThisFile } from '../helpers/nqq.js';

const make = setupsForThisFile();

/** The value of `name=` in a text log line (a quoted value unquoted). */
function field(line: string, name: string): string | undefined {
  const m = new RegExp(`(?:^|\\s)${name}=("(?:[^"\\\\]|\\\\.)*"|\\S*)`).exec(line);
  if (!m) return undefined;
  return m[1]!.startsWith('"') ? (JSON.parse(m[1]!) as string) : m[1];
}

const MODE = DAEMON_MODE ? 'daemon' : 'standalone';

test('qp is the pid of the program qmail-smtpd started, qq each qmail-queue pid, msgid the Message-ID', async () => {
  const s = make({ rcpthosts: ['example.com', 'example.org'] });
  s.write('general.cfb', ':black=nobody@nowhere.example\n');
  // Two groups (a header for one recipient only): two qmail-queue calls.
  const tag = s.script('tag.sh', '#!/bin/sh\ncat >/dev/null\nprintf "X-Tag: yes\\n"\n');
  s.write('example.org.cfb', `:exec=${tag}\n`);
  const message = 'Subject: joined up\nMessage-ID: <abc.123@client.example>\n\nbody\n';
  const r = await s.run({ message, to: ['a@example.com', 'b@example.org'] });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.logLines.length, 1, r.stderr);
  const line = r.logLines[0]!;
  assert.equal(field(line, 'qp'), String(r.pid), line);
  assert.equal(field(line, 'msgid'), '<abc.123@client.example>', line);
  assert.equal(field(line, 'via'), MODE, line);
  const pids = s.standIn.calls().map((c) => String(c.pid));
  assert.equal(pids.length, 2);
  assert.equal(field(line, 'qq'), pids.join(','), line);
  assert.equal(field(line, 'groups'), '1:queued,1:queued', line);
});

test('a Message-ID with control bytes, quotes or 1000 characters is escaped and cut; none: no msgid', async () => {
  const s = make();
  const odd = await s.run({ message: 'Subject: x\nMessage-ID: <a\x1b[31m"b\\c\xe9@x>\n\nbody\n' });
  assert.equal(odd.code, 0, odd.stderr);
  const line = odd.logLines[0]!;
  assert.doesNotMatch(line, /\x1b/);
  assert.equal(field(line, 'msgid'), '<a\\x1b[31m"b\\x5cc\\xc3\\xa9@x>', line);
  const long = await s.run({ message: `Subject: x\nMessage-ID:\n <${'y'.repeat(1000)}@x>\n\nbody\n` });
  const id = field(long.logLines[0]!, 'msgid')!;
  assert.equal(id.length, 200);
  assert.ok(id.startsWith('<yyy') && id.endsWith('...'), id);
  const none = await s.run({ message: 'Subject: x\n\nMessage-ID: <in-the-body@x>\n' });
  assert.equal(field(none.logLines[0]!, 'msgid'), undefined, none.logLines[0]);
});

test("the line's exit is the process's exit: 82 when the refusal went out on fd 6 or fd 4, 31 without", async () => {
  const s = make({ files: { 'general.cfb': ':black=sender@client.example\n' } });
  for (const errorFd of [6, 4, 'none'] as const) {
    const r = await s.run({ errorFd });
    const want = errorFd === 'none' ? 31 : 82;
    assert.equal(r.code, want, `fd ${errorFd}: ${r.stderr}`);
    assert.equal(field(r.logLines[0]!, 'exit'), String(want), `fd ${errorFd}: ${r.logLines[0]}`);
  }
  const plain = await s.run({ extraEnv: { NQQUEUE_REJECT: 'plain' } });
  assert.equal(plain.code, 31);
  assert.equal(field(plain.logLines[0]!, 'exit'), '31', plain.logLines[0]);
});

test('a NQQUEUE_FALLBACK_REASON forged in the environment (a tcprules line) injects nothing', async () => {
  const s = make();
  const r = await s.run({ extraEnv: { NQQUEUE_FALLBACK_REASON: 'x injected=1 "exit=0' } });
  assert.equal(r.code, 0, r.stderr);
  const line = r.logLines[0]!;
  assert.doesNotMatch(line, /injected/);
  assert.equal(line.match(/ exit=/g)?.length, 1, line);
  // The client drops the forged variable (and sets its own only when it falls back); the standalone
  // program takes nothing but one of the client's fixed words from it.
  if (DAEMON_MODE) assert.equal(field(line, 'via'), 'daemon', line);
  else assert.equal(field(line, 'why'), 'other', line);
});
