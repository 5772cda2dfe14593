// The defaults the manual pages print for the settings file (nqqueue.conf(5): the global keys and the
// service sections) against the settings a file without the key gives: `key = DEFAULT` written out
// must change nothing.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { SERVICE_SECTIONS, serviceSettings, type ServiceName } from '../../src/config/service-sections.js';
import { COMMON_PLUGIN_KEYS, defaultSettings, GLOBAL_KEYS, parseSettings, type Settings } from '../../src/config/settings.js';

/** The values of a Settings, without its section accessors. */
function values(s: Settings): Record<string, unknown> {
  const { file, section, sections, ...rest } = s;
  return rest;
}

test('every global key written with its documented default gives the default settings', () => {
  const defaults = values(defaultSettings('localhost'));
  const checked: string[] = [];
  for (const [key, spec] of Object.entries(GLOBAL_KEYS)) {
    // '' is "none": a key without a value (plugin_dir, hostname, store_password_file).
    if (spec.default === '') continue;
    assert.deepEqual(values(parseSettings(`${key} = ${spec.default}\n`, 'nqqueue.conf', 'localhost')), defaults, `${key} = ${spec.default} is not the default`);
    checked.push(key);
  }
  assert.ok(checked.length >= 15, `only ${checked.length} global keys have a default`);
});

test('every service section key written with its documented default gives the section its defaults', () => {
  const base = defaultSettings('localhost');
  for (const [name, keys] of Object.entries(SERVICE_SECTIONS)) {
    const defaults = serviceSettings(base, name as ServiceName);
    for (const [key, spec] of Object.entries(keys)) {
      if (spec.default === '') continue;
      const s = parseSettings(`[${name}]\n${key} = ${spec.default}\n`, 'nqqueue.conf', 'localhost');
      assert.deepEqual(serviceSettings(s, name as ServiceName), defaults, `[${name}] ${key} = ${spec.default} is not the default`);
    }
  }
});

test("the common plugin keys' defaults name the global ones as they are", () => {
  assert.ok(COMMON_PLUGIN_KEYS.timeout!.default.includes(`(${GLOBAL_KEYS.timeout!.default})`), COMMON_PLUGIN_KEYS.timeout!.default);
  assert.ok(COMMON_PLUGIN_KEYS.onerror!.default.includes(`(${GLOBAL_KEYS.onerror!.default})`), COMMON_PLUGIN_KEYS.onerror!.default);
});
