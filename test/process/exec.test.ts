// `exec` under size and time: a recipient list of any length reaches the program (on fd 3), and at
// its timeout the program's whole process group is killed — nothing it started stays alive.

import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { setupsForThisFile, withoutTrace } from '../helpers/nqq.js';

const make = setupsForThisFile();

/** Is `pid` still running (a zombie waiting for its parent counts as gone)? */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

async function until(what: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (what()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return what();
}

test('10,000 recipients reach the program intact on fd 3 (too many for the environment)', async () => {
  const s = make();
  const got = join(s.dir, 'got');
  const prog = s.script(
    'list.sh',
    `#!/bin/sh\ncat >/dev/null\ncat <&3 >${got}\nprintf 'X-Count: %s\\nX-Env: %s\\n' "$NQQ_RECIPIENT_COUNT" "\${NQQ_RECIPIENTS+set}"\n`,
  );
  s.write('general.cfb', `:exec=${prog}\n`);
  const many = Array.from({ length: 10_000 }, (_, i) => `recipient-number-${i}@remote${i % 7}.example`);
  const r = await s.run({ to: many, timeoutMs: 60_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(readFileSync(got, 'utf8'), `${many.join('\n')}\n`);
  const head = withoutTrace(r.deliveries[0]!.message).toString();
  assert.match(head, /^X-Count: 10000\nX-Env: \n/, 'NQQ_RECIPIENTS is left out when it does not fit');
  assert.equal(r.deliveries[0]!.recipients.length, 10_000);
});

test('a short list is in NQQ_RECIPIENTS as before, and on fd 3 as well', async () => {
  const s = make();
  const prog = s.script('short.sh', `#!/bin/sh\ncat >/dev/null\nfd=$(cat <&3 | tr '\\n' ' ')\nenv=$(printf %s "$NQQ_RECIPIENTS" | tr '\\n' ' ')\nprintf 'X-Fd: %s\\nX-Env: %s\\nX-Which: %s\\n' "$fd" "$env" "$NQQ_RECIPIENTS_FD"\n`);
  s.write('general.cfb', `:exec=${prog}\n`);
  const r = await s.run({ to: ['a@example.com', 'b@remote.example'] });
  assert.equal(r.code, 0, r.stderr);
  assert.match(withoutTrace(r.deliveries[0]!.message).toString(), /^X-Fd: a@example\.com b@remote\.example \nX-Env: a@example\.com b@remote\.example\nX-Which: 3\n/);
});

test('at its timeout the program and everything it started are killed (SIGTERM ignored: SIGKILL), and the message is deferred', async () => {
  const s = make();
  const pids = join(s.dir, 'pids');
  // Children that ignore SIGTERM, sleep, and hold the program's stdout and fd 3.
  const prog = s.script(
    'forks.sh',
    [
      '#!/bin/sh',
      `echo $$ >>${pids}`,
      "trap '' TERM",
      'sleep 300 &',
      `echo $! >>${pids}`,
      "sh -c 'sleep 300 & echo $! >>" + pids + "; exec sleep 301' &",
      `echo $! >>${pids}`,
      'cat >/dev/null',
      'sleep 302',
      '',
    ].join('\n'),
  );
  s.write('general.cfb', `:exec=${prog},timeout=1\n`);
  const r = await s.run({ errorFd: 'none', timeoutMs: 30_000 });
  assert.equal(r.code, 71, r.stderr);
  assert.match(r.stderr, /exec failed: timed out after 1000 ms/);
  assert.equal(s.standIn.calls().length, 0);
  assert.ok(await until(() => existsSync(pids) && readFileSync(pids, 'utf8').trim().split('\n').length >= 4, 5000), 'the program wrote its PIDs');
  const all = readFileSync(pids, 'utf8').trim().split('\n').map(Number);
  const gone = await until(() => all.every((p) => !running(p)), 6000);
  assert.ok(gone, `still running: ${all.filter(running).join(' ')}`);
});

test('what a program leaves running when it exits is killed', async () => {
  const s = make();
  const pids = join(s.dir, 'pids');
  const prog = s.script('leaves.sh', `#!/bin/sh\ncat >/dev/null\nsleep 300 >/dev/null 2>&1 &\necho $! >${pids}\nprintf 'X-Done: yes\\n'\n`);
  s.write('general.cfb', `:exec=${prog}\n`);
  const r = await s.run({});
  assert.equal(r.code, 0, r.stderr);
  assert.match(withoutTrace(r.deliveries[0]!.message).toString(), /^X-Done: yes\n/);
  const pid = Number(readFileSync(pids, 'utf8'));
  assert.ok(await until(() => !running(pid), 3000), `sleep ${pid} still running`);
});
