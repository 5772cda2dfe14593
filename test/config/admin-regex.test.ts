import assert from 'node:assert/strict';
import { test } from 'node:test';

import fc from 'fast-check';

import { AdminRegexError, compileAdminRegex, foldCase, MATCH_BUDGET, maxTextFor, programSize, regexCost } from '../../src/config/admin-regex.js';

test('a catastrophic pattern runs in linear time', () => {
  const re = compileAdminRegex('(a+)+$');
  const started = performance.now();
  assert.equal(re.test(`${'a'.repeat(5000)}!`), false);
  assert.equal(compileAdminRegex('^(\\w+\\s?)*$', 'i').test(`${'aaaa '.repeat(2000)}!`), false);
  assert.ok(performance.now() - started < 2000, `${performance.now() - started} ms`);
  assert.equal(re.test('aaa'), true);
});

test('patterns the linear engine cannot run, bad flags and bad syntax are refused with a reason', () => {
  for (const [src, flags, why] of [
    ['(a)\\1', '', /linear time/],
    ['(?=x)y', '', /linear time/],
    ['a{17}', '', /linear time/],
    ['x', 'u', /flag "u" cannot be used/],
    ['x', 'g', /flag "g"/],
    ['(unclosed', '', /Invalid regular expression/],
  ] as const) {
    assert.throws(() => compileAdminRegex(src, flags), (e) => e instanceof AdminRegexError && why.test(e.message), `${src}/${flags}`);
  }
});

test('lookbehind runs on the linear engine (Node.js 22 and later, the supported lines)', () => {
  const re = compileAdminRegex('(?<!x)y', 'i');
  assert.equal(re.test('ay'), true);
  assert.equal(re.test('XY'), false);
  assert.equal(compileAdminRegex('(?<=a)b').test('ab'), true);
  assert.equal(compileAdminRegex('(?<=a)b').test('cb'), false);
});

test('the i flag is rewritten into an equivalent pattern without it', () => {
  const patterns = ['lottery', '[a-z]+x', '[^a-z]', 'caf\u00e9', '\\x41b', '[\\w.-]+@[A-Z]+\\.com', '\u00b5', '(?<n>ab)c', '[a\\-z]', '[\\d-z]', '\\bviagra\\b', '^(a|B)+$', '[\u00c0-\u00ff]', '\\u004b', '[^\\W_]k', 'a.b', '\\Q', '[\\s-a-z]k', '[\\s-a-\u03a3][a]', '[a-\\d-z]'];
  const alphabet = 'aAbBkKzZxX09_.-@ \u00b5\u039c\u03bc\u00df\u1e9e\u00e9\u00c9\u01c4\u01c5\u01c6\u00ff\u0178\u017f\u212a\u0130\u0131iIqQ';
  const words = ['lottery', 'LOTTERY', 'café', 'CAFÉ', 'Ab', 'AB', 'viagra', 'ViAgRa', 'É', 'kk', 'q', ''];
  let seed = 7;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  for (const p of patterns) {
    const want = new RegExp(p, 'i');
    const got = compileAdminRegex(p, 'i');
    assert.equal(got.flags.includes('i'), false);
    for (let n = 0; n < 2000; n++) {
      let s = '';
      for (let k = rnd(6); k > 0; k--) s += alphabet[rnd(alphabet.length)];
      s += words[rnd(words.length)];
      for (let k = rnd(3); k > 0; k--) s += alphabet[rnd(alphabet.length)];
      assert.equal(got.test(s), want.test(s), `/${p}/i on ${JSON.stringify(s)} (rewritten ${foldCase(p)})`);
    }
  }
  assert.equal(foldCase('a1'), '[\\u0041\\u0061]1');
});

test('routing patterns use the same compile: case-insensitive, anchored by the caller', () => {
  const re = compileAdminRegex('^(?:.*@example\\.(com|org))$', 'i');
  assert.equal(re.test('Someone@EXAMPLE.org'), true);
  assert.equal(re.test('someone@example.net'), false);
});

test('property: a rewritten case-insensitive pattern matches exactly what /.../i matches (classes, ranges across case, escapes, non-ASCII)', () => {
  // Letters whose case mappings are odd: Kelvin sign, long s, dotted/dotless i, DŽ/Dž/dž, final sigma, ß/ẞ, µ.
  const chars = ['a', 'A', 'z', 'Z', 'k', 'K', 's', 'S', 'i', 'I', '_', '`', '.', 'é', 'É', 'ß', '\u1e9e', 'ÿ', 'Ÿ', 'µ', 'Μ', 'μ', 'ſ', '\u212a', 'İ', 'ı', 'Ǆ', 'ǅ', 'ǆ', '0', ' ', 'σ', 'ς', 'Σ', 'ϐ', 'β', 'Ω', 'ω', '\u2126', '\u0345', 'ι', 'Ι', '\u1fbe'];
  const escapes = ['\\w', '\\W', '\\d', '\\D', '\\s', '\\S', '\\x41', '\\x61', '\\u00e9', '\\u00C9', '\\cJ', '\\0', '\\.', '\\-', '\\u212a', '\\K'];
  const outside = fc.constantFrom(...chars, ...escapes, '\\b', '\\B', '.', '^', '$');
  const inClass = fc.oneof(fc.constantFrom(...chars, ...escapes, '^', '-'), fc.tuple(fc.constantFrom(...chars), fc.constantFrom(...chars)).map(([a, b]) => `${a}-${b}`));
  const klass = fc.tuple(fc.boolean(), fc.array(inClass, { maxLength: 4 })).map(([neg, items]) => `[${neg ? '^' : ''}${items.join('')}]`);
  const { pattern } = fc.letrec((tie) => ({
    pattern: fc.array(tie('term'), { minLength: 1, maxLength: 4 }).map((ts) => (ts as string[]).join('')),
    term: fc.tuple(tie('atom'), fc.constantFrom('', '', '*', '+', '?', '{2}', '{1,3}')).map(([a, q]) => `${a as string}${q}`),
    atom: fc.oneof(
      { depthSize: 'small' },
      outside,
      klass,
      fc.tuple(fc.constantFrom('(', '(?:'), tie('pattern'), fc.option(tie('pattern'))).map(([o, a, b]) => `${o}${a as string}${b === null ? '' : `|${b as string}`})`),
    ),
  }));
  const text = fc.array(fc.constantFrom(...chars.map((c) => JSON.parse(`"${c}"`) as string), 'x', '\n', 'ĸ', 'ǳ', 'Ǳ', 'ǲ'), { maxLength: 8 }).map((a) => a.join(''));
  fc.assert(
    fc.property(pattern, fc.array(text, { minLength: 10, maxLength: 10 }), (p, texts) => {
      let want: RegExp;
      try {
        want = new RegExp(p, 'i');
      } catch {
        return; // not a pattern at all
      }
      let got: RegExp;
      try {
        got = compileAdminRegex(p, 'i');
      } catch (err) {
        // Refused with a reason (an engine limit, a construct the rewrite does not take) is fine.
        if (err instanceof AdminRegexError) return;
        throw err;
      }
      for (const s of texts) assert.equal(got.test(s), want.test(s), `/${p}/i on ${JSON.stringify(s)} (rewritten ${foldCase(p)})`);
    }),
    { numRuns: 3000 },
  );
});

test('programSize is an upper bound that grows with what the engine spells out', () => {
  assert.ok(programSize('abc') >= 3);
  assert.ok(programSize('a{16}'.repeat(60)) >= 960, 'counted repetitions spelled out');
  assert.ok(programSize('(?:ab){16}') >= 32, 'a group repeated');
  assert.ok(programSize('(?:a|b|c)+') >= 6);
  assert.ok(programSize('[a-z\\]]x') >= 2, 'a class is one state');
  const re = compileAdminRegex('lottery', 'i');
  assert.ok(regexCost(re) < 20, 'a plain word stays cheap after the i rewrite');
  assert.equal(maxTextFor(re), Math.floor(MATCH_BUDGET / regexCost(re)));
});
