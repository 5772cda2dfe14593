import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import { defaultSettings, GLOBAL_KEYS, loadSettings, parseSettings, parseSettingsFile, SettingsError } from '../../src/config/settings.js';

test('a missing or empty settings file gives the documented defaults', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nqq-settings-'));
  const s = loadSettings(dir);
  assert.equal(s.file, undefined);
  assert.equal(s.deadlineMs, 240_000);
  assert.equal(s.pluginTimeoutMs, 60_000);
  assert.equal(s.onerror, 'tempfail');
  assert.equal(s.concurrency, 'auto');
  assert.equal(s.spillBytes, 1024 * 1024);
  assert.equal(s.spillTotalBytes, 16 * 1024 * 1024, 'daemon mode: 16 MB of messages in memory, all together');
  assert.equal(s.maxRecipients, 10_000);
  const { section: _a, sections: _e, file: _b, ...fromEmpty } = parseSettings('', 'x');
  const { section: _c, sections: _f, file: _d, ...defaults } = defaultSettings();
  assert.deepEqual(fromEmpty, defaults);
  for (const [key, spec] of Object.entries(GLOBAL_KEYS)) assert.ok(spec.doc.length > 10, `${key} is documented`);
});

test('values, units, sections and repeatable keys', () => {
  const s = parseSettings(
    ['# settings', 'deadline = 90s', 'timeout = 500ms', 'spill = 64K', 'concurrency = 3', 'plugin_dir = /a', 'plugin_dir = /b', '', '[clamav]', 'socket = /run/clamd.sock', 'host = 127.0.0.1:3310', 'host = 10.0.0.1:3310', 'onerror = accept'].join('\n'),
    'n.conf',
  );
  assert.equal(s.deadlineMs, 90_000);
  assert.equal(s.pluginTimeoutMs, 500);
  assert.equal(s.spillBytes, 65536);
  assert.equal(s.concurrency, 3);
  assert.deepEqual(s.pluginDirs, ['/a', '/b']);
  assert.equal(parseSettings('concurrency = auto\n', 'n.conf').concurrency, 'auto');
  assert.equal(s.section('clamav').get('socket'), '/run/clamd.sock');
  assert.deepEqual(s.section('clamav').all('host'), ['127.0.0.1:3310', '10.0.0.1:3310']);
  assert.equal(s.section('nothing').get('x'), undefined);
  assert.ok(Object.isFrozen(s));
});

test('every mistake is reported as file:line', () => {
  const bad: [string, number, RegExp][] = [
    ['deadline = soon', 1, /deadline: not a duration/],
    ['\n\nbogus = 1', 3, /unknown setting "bogus"/],
    ['concurrency = 0', 1, /between 1 and 1024/],
    ['onerror = ignore', 1, /tempfail, accept or reject/],
    ['no equals sign', 1, /expected "key = value"/],
    ['[clamav]\ntimeout = forever', 2, /timeout: not a duration/],
    ['[Bad Section]', 1, /invalid section/],
    ['deadline = 1s\ndeadline = 2s', 2, /set twice/],
    ['plugin_dir = relative/path', 1, /absolute path/],
  ];
  for (const [text, line, re] of bad) {
    assert.throws(
      () => parseSettings(text, '/etc/n.conf'),
      (err: unknown) => err instanceof SettingsError && err.line === line && err.message.startsWith(`/etc/n.conf:${line}: `) && re.test(err.message),
      text,
    );
  }
});

test('every problem of the file at once, in line order, each line with a problem left out', () => {
  const s = parseSettingsFile(['deadline = soon', 'plugin_dirr = /x', 'Timeout = 5s', 'concurrency = 3', '[ClamAV]', 'socket = /x', '[clamav]', 'timeout = never', 'socket = /run/c.sock'].join('\n'), '/etc/n.conf');
  assert.deepEqual(
    s.problems.map((p) => [p.line, p.message]),
    [
      [1, 'deadline: not a duration: "soon" (use e.g. 30, 30s, 500ms, 2m)'],
      [2, 'unknown setting "plugin_dirr" (did you mean "plugin_dir"?)'],
      [3, 'invalid key "Timeout" (names are lower-case: timeout)'],
      [5, 'invalid section name [ClamAV] (names are lower-case: clamav)'],
      [8, 'timeout: not a duration: "never" (use e.g. 30, 30s, 500ms, 2m)'],
    ],
  );
  assert.equal(s.concurrency, 3, 'the good lines still count');
  assert.equal(s.deadlineMs, 240_000, 'a bad line is left out');
  assert.deepEqual(s.section('clamav').entries(), [{ key: 'socket', value: '/run/c.sock', line: 9 }], 'the keys of a bad section go nowhere');
  assert.equal(s.section('clamav').line, 7);
});

test('extension_separator: - by default, one punctuation character, or none', () => {
  assert.equal(parseSettings('', 'n.conf').extensionSeparator, '-');
  assert.equal(parseSettings('extension_separator = +', 'n.conf').extensionSeparator, '+');
  assert.equal(parseSettings('extension_separator = none', 'n.conf').extensionSeparator, '');
  for (const bad of ['x', '--', '@', '']) assert.throws(() => parseSettings(`extension_separator = ${bad}`, 'n.conf'), /extension_separator: must be one punctuation character/, bad);
});
