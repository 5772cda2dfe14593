import assert from 'node:assert/strict';
import { test } from 'node:test';

import { parseParams } from '../../src/config/cfb.js';
import { parseSettingsFile } from '../../src/config/settings.js';
import { paramProblems, sectionEntryProblems } from '../../src/plugin-api/check-params.js';
import { definePlugin, PluginConfigError, type PluginDefinition } from '../../src/plugin-api/define.js';

const base = { version: '1', stages: ['general' as const], configure: () => ({}), run: async () => ({ verdict: 'accept' as const }) };

test('definePlugin checks the params declaration at load time', () => {
  assert.throws(() => definePlugin({ ...base, name: 'x', params: { keys: { Tag: {} } } }), /params key "Tag" is not a lower-case name/);
  assert.throws(() => definePlugin({ ...base, name: 'x', params: { words: 'pass' as unknown as string[] } }), /params.words must be/);
  assert.throws(() => definePlugin({ ...base, name: 'x', params: { keys: { tag: { check: 'no' as unknown as () => void } } } }), PluginConfigError);
  assert.ok(definePlugin({ ...base, name: 'x', params: { keys: { tag: {} }, words: ['loud'] } }));
});

test('the documentation of a declaration is optional, and checked when given', () => {
  // A third-party plugin written before keys had a doc still loads.
  assert.ok(definePlugin({ ...base, name: 'x', params: { keys: { tag: { list: true } }, words: true } }));
  const documented = definePlugin({
    ...base,
    name: 'x',
    description: 'adds a tag',
    params: { keys: { tag: { doc: 'the tag', default: 'none' } }, words: ['loud'], wordsDoc: { loud: 'log each tag' } },
  });
  assert.equal(documented.params?.keys?.tag?.doc, 'the tag');
  assert.ok(definePlugin({ ...base, name: 'x', params: { words: true, wordsDoc: 'the tags to add' } }));
  assert.throws(() => definePlugin({ ...base, name: 'x', params: { keys: { tag: { doc: 3 as unknown as string } } } }), /params.keys.tag.doc must be a string/);
  assert.throws(() => definePlugin({ ...base, name: 'x', params: { keys: { tag: { default: 1 as unknown as string } } } }), /params.keys.tag.default must be a string/);
  assert.throws(() => definePlugin({ ...base, name: 'x', params: { words: ['a'], wordsDoc: { a: 1 } as unknown as Record<string, string> } }), /params.wordsDoc must be/);
  assert.throws(() => definePlugin({ ...base, name: 'x', params: { words: ['a'], wordsDoc: ['a'] as unknown as string } }), /params.wordsDoc must be/);
  assert.throws(() => definePlugin({ ...base, name: 'x', params: { words: ['pass'], wordsDoc: { pss: 'a typo' } } }), /wordsDoc documents "pss", which is not one of its words/);
  assert.throws(() => definePlugin({ ...base, name: 'x', description: {} as unknown as string }), /description must be a string/);
});

test('PARAMS against a declaration: keys, words, lists, checks, case', () => {
  const def: PluginDefinition = definePlugin({
    ...base,
    name: 'x',
    params: {
      keys: {
        url: { list: true },
        level: {
          check: (v) => {
            if (!/^\d$/.test(v)) throw new PluginConfigError('one digit');
          },
        },
      },
      words: ['pass'],
    },
  });
  const p = (raw: string) => paramProblems(def, parseParams(raw));
  assert.deepEqual(p('pass,url=a,url=b,level=3,timeout=5s'), []);
  assert.deepEqual(p('Pass'), ['unknown word "Pass" (did you mean "pass"? names are lower-case)']);
  assert.deepEqual(p('level=3,level=4'), ['"level" is given twice']);
  assert.deepEqual(p('level=x'), ['level=x: one digit']);
  assert.deepEqual(p('timeout=forever'), ['timeout=forever: not a duration: "forever" (use e.g. 30, 30s, 500ms, 2m)']);
  assert.deepEqual(p('Level=3'), ['"Level=3": keys are lower-case (level=3)']);
  assert.deepEqual(p('level'), ['"level" needs a value (level=...)']);
  assert.deepEqual(p('lvel=2'), ['unknown key "lvel" (did you mean "level="?)']);
  assert.deepEqual(p('loud'), ['unknown word "loud" (it takes the words: pass)']);
  const fn = definePlugin({
    ...base,
    name: 'y',
    params: {
      words: (_w, i) => {
        if (i > 0) throw new PluginConfigError('one word only');
      },
    },
  });
  assert.deepEqual(paramProblems(fn, parseParams('/bin/a,/bin/b')), ['"/bin/b": one word only']);
  const none = definePlugin({ ...base, name: 'z' });
  assert.deepEqual(paramProblems(none, parseParams('onerror=accept')), []);
  assert.deepEqual(paramProblems(none, parseParams('tag=x')), ['unknown key "tag" (plugin z declares no PARAMS: it takes only timeout, onerror, maxsize)']);
  assert.deepEqual(paramProblems(none, parseParams('loud')), ['unknown word "loud" (plugin z declares no PARAMS: it takes only timeout, onerror, maxsize)']);
});

test('a settings section against a declaration, each problem at its line', () => {
  const def = definePlugin({ ...base, name: 'x', params: { keys: { url: { list: true }, level: {} } } });
  const s = parseSettingsFile('[x]\nurl = a\nurl = b\nlevel = 1\nlevel = 2\nconcurrency = 3\nlvel = 4\ntimeout = 5s\n', 'n.conf');
  assert.deepEqual(s.problems, []);
  assert.deepEqual(sectionEntryProblems(def, s.section('x')), [
    { line: 5, message: '"level" is set twice in [x] (first on line 4)' },
    { line: 6, message: '"concurrency" is a global setting, but here it is in [x] (from line 1): move it above the first [section]' },
    { line: 7, message: 'unknown key "lvel" in [x] (did you mean "level"?)' },
  ]);
});
