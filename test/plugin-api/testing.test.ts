// nqqueue/testing runs a plugin as the host does: failure policy, timeout, header checks, onSettled.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { definePlugin, NqqError } from '../../src/index.js';
import { runPlugin } from '../../src/testing.js';

const base = { version: '1.0.0', stages: ['per-user'] as const, configure: ({ params }: { params: { get(k: string): string | undefined } }) => ({ mode: params.get('mode') }) };

test('a throw, a timeout and a bad header yield the failure policy, with the plugin\'s own error', async () => {
  const thrower = definePlugin({ ...base, name: 'thrower', async run() { throw new Error('backend said no'); } });
  const failed = await runPlugin(thrower, { message: 'Subject: x\n\nbody\n' });
  assert.equal(failed.result.verdict, 'tempfail');
  assert.equal(failed.result.error, 'backend said no');
  assert.match(failed.result.text ?? '', /mail scanner unavailable/);
  const accepting = await runPlugin(thrower, { message: 'Subject: x\n\n', params: 'onerror=accept' });
  assert.equal(accepting.result.verdict, 'accept');

  const own = definePlugin({ ...base, name: 'own', async run() { throw new NqqError('NQQ_ERR_KEEP', 'disk gone'); } });
  assert.match((await runPlugin(own, { message: 'x\n\n' })).result.text ?? '', /cannot store the message/);

  const slow = definePlugin({ ...base, name: 'slow', run: (ctx) => new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason))) });
  const timedOut = await runPlugin(slow, { message: 'x\n\n', params: 'timeout=200ms' });
  assert.equal(timedOut.result.verdict, 'tempfail');
  assert.match(timedOut.result.error ?? '', /timed out after 200 ms/);

  const badHeader = definePlugin({ ...base, name: 'badheader', async run() { return { verdict: 'accept', headers: [{ name: 'X-A', value: 'a\rB: c' }] }; } });
  assert.equal((await runPlugin(badHeader, { message: 'x\n\n' })).result.verdict, 'tempfail');
});

test('PARAMS, settings, recipient, shared() and onSettled reach the plugin as in the host', async () => {
  let settledWith: boolean | undefined;
  const p = definePlugin({
    ...base,
    name: 'probe',
    params: { keys: { mode: {} } },
    async run(ctx) {
      const v = await ctx.shared('k', async () => `${ctx.config.mode}:${ctx.recipient}:${ctx.client.ip}`);
      ctx.onSettled((accepted) => {
        settledWith = accepted;
      });
      return { verdict: 'accept', headers: [{ name: 'X-Probe', value: v }] };
    },
  });
  const out = await runPlugin(p, { message: 'Subject: x\n\nbody\n', settings: '[probe]\nmode = strict\n', recipients: ['a@example.com', 'b@example.com'], recipient: 'b@example.com', env: { TCPREMOTEIP: '192.0.2.1' } });
  assert.deepEqual(out.result.headers, [{ name: 'X-Probe', value: 'strict:b@example.com:192.0.2.1' }]);
  assert.equal(out.message.toString(), 'X-Probe: strict:b@example.com:192.0.2.1\nSubject: x\n\nbody\n');
  assert.equal(settledWith, undefined);
  await out.settle(true);
  assert.equal(settledWith, true);
  const line = await runPlugin(p, { message: 'x\n\n', params: 'mode=loose', settings: '[probe]\nmode = strict\n' });
  assert.match(line.result.headers[0]!.value, /^loose:/, 'the routing line over the settings section');
});

test('a host range this NQqueue is outside of throws, as at load time', async () => {
  const p = definePlugin({ ...base, name: 'future', host: '>=9', async run() { return { verdict: 'accept' }; } });
  await assert.rejects(runPlugin(p, { message: 'x\n\n' }), /needs NQqueue ">=9", this is NQqueue/);
});
