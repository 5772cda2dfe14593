import assert from 'node:assert/strict';
import { test } from 'node:test';

import * as api from '../src/index.js';
import { ERRORS } from '../src/errors.js';

test('every error code maps to an exit code of the SPEC §3 table', () => {
  const allowed = new Set([11, 31, 54, 71, 81, 91]);
  for (const [code, spec] of Object.entries(ERRORS)) {
    assert.match(code, /^NQQ_ERR_[A-Z_]+$/);
    assert.ok(allowed.has(spec.exit), `${code} -> ${spec.exit}`);
    assert.equal(spec.kind, spec.exit === 11 || spec.exit === 31 ? 'permanent' : 'temporary', code);
    assert.ok(spec.text.length > 0 && !/[\r\n]/.test(spec.text), code);
  }
  assert.equal(new api.NqqError('NQQ_ERR_ENVELOPE_FORMAT').exit, 91);
  assert.equal(new api.NqqError('NQQ_ERR_TRUNCATED_ENVELOPE').exit, 54);
  assert.equal(new api.NqqError('NQQ_ERR_ADDRESS_TOO_LONG').exit, 11);
  assert.equal(new api.NqqError('NQQ_ERR_BUG').exit, 81);
});

test('the public API: definePlugin checks the declaration at load time', () => {
  const ok = api.definePlugin({ name: 'x', version: '1', stages: ['general'], configure: () => ({}), run: async () => ({ verdict: 'accept' }) });
  assert.equal(ok.name, 'x');
  assert.ok(Object.isFrozen(ok));
  assert.throws(() => api.definePlugin({ name: 'Bad Name', version: '1', stages: ['general'], configure: () => ({}), run: async () => ({ verdict: 'accept' }) }), api.PluginConfigError);
  assert.throws(
    () => api.definePlugin({ name: 'x', version: '1', stages: ['sometimes' as 'general'], configure: () => ({}), run: async () => ({ verdict: 'accept' }) }),
    /stages/,
  );
  assert.match(api.VERSION, /^\d+\.\d+\.\d+$/);
});
