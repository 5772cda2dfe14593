// clamav: addresses and timeouts from PARAMS and the settings file.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { PluginConfigError } from '../../src/plugin-api/define.js';
import clamav, { DEFAULT_SOCKET, virusText } from '../../src/plugins/clamav.js';
import { configure } from '../helpers/configure.js';

const endpoints = (raw: string, settings?: string) => configure(clamav, raw, settings).client.endpoints.map((e) => `${e.kind}:${e.text}`);

test('addresses: the default socket; PARAMS in the order written, replacing the settings file; the settings file otherwise', () => {
  assert.deepEqual(endpoints(''), [`unix:${DEFAULT_SOCKET}`]);
  assert.deepEqual(endpoints('host=10.0.0.2:3310,socket=/run/a.sock,host=[::1]:3310,pass'), ['tcp:10.0.0.2:3310', 'unix:/run/a.sock', 'tcp:[::1]:3310']);
  const conf = '[clamav]\nsocket = /run/s1.sock\nhost = 127.0.0.1:3310\nsocket = unix:/run/s2.sock\n';
  assert.deepEqual(endpoints('', conf), ['unix:/run/s1.sock', 'unix:/run/s2.sock', 'tcp:127.0.0.1:3310']);
  assert.deepEqual(endpoints('host=10.0.0.9:3310', conf), ['tcp:10.0.0.9:3310']);
});

test('bad addresses and timeouts are configuration errors', () => {
  for (const raw of ['socket=relative.sock', 'host=/run/clamd.sock', 'host=nohost', 'host=h:99999', 'connect_timeout=soon', 'read_timeout=0']) {
    assert.throws(() => configure(clamav, raw), PluginConfigError, raw);
  }
});

test('pass, connect_timeout and read_timeout', () => {
  const c = configure(clamav, 'pass,connect_timeout=250ms,read_timeout=3s');
  assert.equal(c.pass, true);
  assert.deepEqual(c.timeouts, { connectTimeoutMs: 250, readTimeoutMs: 3000 });
  assert.equal(configure(clamav, '').pass, false);
  assert.deepEqual(configure(clamav, '').timeouts, {});
});

test('the refusal names the virus', () => {
  assert.equal(virusText('Win.Test.EICAR_HDB-1'), 'Message rejected because it contains a virus: Win.Test.EICAR_HDB-1 (#5.7.1)');
  assert.deepEqual(clamav.stages, ['general']);
});
