import assert from 'node:assert/strict';
import { test } from 'node:test';

import fc from 'fast-check';

import { parseCfb, parseParams } from '../../src/config/cfb.js';

test('patterns: exact address, then the first matching regex, then the domain, then the fallback', () => {
  const f = parseCfb(
    [
      '# comment',
      '',
      ':black=billgates@microsoft.com',
      'example.com:header=Subject:/x/',
      '/^sales-.*@example\\.com$/:attach=.exe:.vbs',
      '/.*@example\\.com/:exec=/bin/true',
      'Boss@Example.COM:black=a@x.com;black=b@y.com',
    ].join('\n'),
    'test.cfb',
  );
  assert.deepEqual(f.problems, []);
  assert.equal(f.lookup('boss@example.com')?.line, 7);
  assert.equal(f.lookup('BOSS@EXAMPLE.COM')?.line, 7);
  assert.equal(f.lookup('sales-eu@example.com')?.line, 5);
  assert.equal(f.lookup('anyone@example.com')?.line, 6);
  assert.equal(f.lookup('someone@other.org')?.line, 3);
  assert.equal(f.fallback?.line, 3);
  const boss = f.lookup('boss@example.com')!;
  assert.deepEqual(
    boss.plugins.map((p) => [p.name, p.params]),
    [
      ['black', 'a@x.com'],
      ['black', 'b@y.com'],
    ],
  );
  assert.deepEqual(f.lookup('sales-x@example.com')!.plugins[0]!.items, [{ value: '.exe:.vbs' }]);
});

test('a domain line covers only that domain; no line means no plugins', () => {
  const f = parseCfb('example.com:black=x@y.z\n', 'd.cfb');
  assert.equal(f.lookup('u@example.com')?.line, 1);
  assert.equal(f.lookup('u@sub.example.com'), undefined);
  assert.equal(f.lookup('u@other.com'), undefined);
});

test('a regex is matched against the whole address', () => {
  const f = parseCfb('/a.c/:black=x@y.z\n', 'r.cfb');
  assert.equal(f.lookup('abc')?.line, 1);
  assert.equal(f.lookup('xabc@d'), undefined);
});

test('an empty chain is a line that says: no plugins', () => {
  const f = parseCfb('vip@example.com:\n:black=x@y.z\n', 'e.cfb');
  assert.deepEqual(f.lookup('vip@example.com')?.plugins, []);
});

test('errors name file and line', () => {
  const f = parseCfb(['ok.com:black=a@b.c', 'no colon here', '/unclosed:black', '/(/:black=x@y.z', 'x.com:Bad Name', 'a b@c:black=x@y.z', 'ok.com:header=x'].join('\n'), 'bad.cfb');
  assert.deepEqual(
    f.problems.map((p) => p.line),
    [2, 3, 4, 5, 6, 7],
  );
  assert.ok(f.problems.every((p) => p.file === 'bad.cfb' && p.message.length > 0));
  assert.match(f.problems[5]!.message, /already given on line 1/);
});

test('PARAMS: comma-separated words and key=value items', () => {
  assert.deepEqual(parseParams('pass,hits=5,user=global,x=1=2'), [
    { value: 'pass' },
    { key: 'hits', value: '5' },
    { key: 'user', value: 'global' },
    { key: 'x', value: '1=2' },
  ]);
  assert.deepEqual(parseParams('Subject:/a=b/'), [{ value: 'Subject:/a=b/' }]);
  assert.deepEqual(parseParams(''), []);
});

const word = fc.stringMatching(/^[a-z0-9.@_-]{1,12}$/);
const pluginName = fc.stringMatching(/^[a-z][a-z0-9_-]{0,10}$/);
const item = fc.oneof(word.map((value) => ({ value })), fc.tuple(fc.stringMatching(/^[a-z_][a-z0-9_]{0,6}$/), word).map(([key, value]) => ({ key, value })));
const plugin = fc.record({ name: pluginName, items: fc.array(item, { maxLength: 4 }) });
const label = fc.stringMatching(/^[a-z0-9-]{1,8}$/);

test('property: a written line parses back to the same plugins and PARAMS', () => {
  fc.assert(
    fc.property(fc.oneof(fc.constant(''), label.map((l) => `${l}.example`), fc.tuple(label, label).map(([u, d]) => `${u}@${d}.example`)), fc.array(plugin, { maxLength: 5 }), (pattern, plugins) => {
      const text = `${pattern}:${plugins.map((p) => (p.items.length ? `${p.name}=${p.items.map((i) => ('key' in i ? `${i.key}=${i.value}` : i.value)).join(',')}` : p.name)).join(';')}`;
      const f = parseCfb(text, 'p.cfb');
      assert.deepEqual(f.problems, []);
      const line = f.lines[0]!;
      assert.equal(line.pattern, pattern);
      assert.deepEqual(
        line.plugins.map((p) => ({ name: p.name, items: p.items })),
        plugins.map((p) => ({ name: p.name, items: p.items.map((i) => ('key' in i ? { key: i.key, value: i.value } : { value: i.value })) })),
      );
    }),
    { numRuns: 500 },
  );
});

test('property: lookup follows exact > first regex > domain > fallback', () => {
  const user = fc.constantFrom('a', 'b', 'sales', 'x1');
  const dom = fc.constantFrom('one.example', 'two.example', 'three.example');
  const line = fc.oneof(
    fc.tuple(user, dom).map(([u, d]) => ({ kind: 'address', text: `${u}@${d}` })),
    dom.map((d) => ({ kind: 'domain', text: d })),
    fc.tuple(user, dom).map(([u, d]) => ({ kind: 'regex', text: `/${u}.*@${d.replace('.', '\\.')}/`, re: new RegExp(`^(?:${u}.*@${d.replace('.', '\\.')})$`, 'i') })),
    fc.constant({ kind: 'fallback', text: '' }),
  );
  fc.assert(
    fc.property(fc.array(line, { maxLength: 10 }), user, dom, fc.boolean(), (lines, u, d, upper) => {
      const seen = new Set<string>();
      const unique = lines.filter((l) => l.kind === 'regex' || (!seen.has(l.text) && seen.add(l.text)));
      const f = parseCfb(unique.map((l) => `${l.text}:black=x@y.z`).join('\n'), 'l.cfb');
      assert.deepEqual(f.problems, []);
      const addr = upper ? `${u}@${d}`.toUpperCase() : `${u}@${d}`;
      const idx =
        [
          unique.findIndex((l) => l.kind === 'address' && l.text === `${u}@${d}`),
          unique.findIndex((l) => l.kind === 'regex' && (l as { re: RegExp }).re.test(addr)),
          unique.findIndex((l) => l.kind === 'domain' && l.text === d),
          unique.findIndex((l) => l.kind === 'fallback'),
        ].find((i) => i >= 0) ?? -1;
      assert.equal(f.lookup(addr)?.line, idx < 0 ? undefined : idx + 1);
    }),
    { numRuns: 1000 },
  );
});

test('patterns that can never match are refused, saying what to write instead', () => {
  const cases: [string, RegExp][] = [
    ['.example.com', /".example.com" never matches: a domain line covers exactly that domain, not its subdomains as in rcpthosts \(write "example.com"; for its subdomains a regex such as \/\.\*@\.\*\\\.example\\\.com\/\)/],
    ['*@example.com', /"\*@example.com" never matches: patterns have no wildcards \(write "example.com" for every address in that domain/],
    ['*.example.com', /no wildcards \(write "example.com"/],
    ['example.com.', /"example.com." never matches: addresses have no trailing dot \(write "example.com"\)/],
    ['alice@example.com.', /addresses have no trailing dot \(write "alice@example.com"\)/],
    ['@example.com', /an address needs its local part \(write "example.com"/],
    ['alice@example..com', /empty label/],
  ];
  for (const [pattern, re] of cases) {
    const f = parseCfb(`${pattern}:black=x@y.z\n:black=a@b.c\n`, 'p.cfb');
    assert.equal(f.problems.length, 1, pattern);
    assert.equal(f.problems[0]!.line, 1);
    assert.match(f.problems[0]!.message, re, pattern);
  }
});

test('qmail extension addresses: the address, a regex, then the address it extends (last separator first), then the domain', () => {
  const f = parseCfb(['alice@example.com:black=1@x.y', 'alice-lists@example.com:black=2@x.y', '/.*-noscan@example\\.com/:', 'example.com:black=3@x.y', ':black=4@x.y'].join('\n'), 'x.cfb');
  assert.deepEqual(f.problems, []);
  const m = (a: string) => {
    const r = f.match(a);
    return r && [r.line.line, r.rule, r.via];
  };
  assert.deepEqual(m('alice@example.com'), [1, 'address', undefined]);
  assert.deepEqual(m('alice-lists@example.com'), [2, 'address', undefined]);
  assert.deepEqual(m('alice-lists-x@example.com'), [2, 'extension', 'alice-lists@example.com'], 'the last separator first');
  assert.deepEqual(m('Alice-Other@Example.COM'), [1, 'extension', 'alice@example.com']);
  assert.deepEqual(m('alice-noscan@example.com'), [3, 'regex', undefined], "a regex on the address itself comes before the extension rule");
  assert.deepEqual(m('bob-lists@example.com'), [4, 'domain', undefined]);
  assert.deepEqual(m('-alice@example.com'), [4, 'domain', undefined], 'never an empty local part');
  assert.deepEqual(m('alice-x@other.example'), [5, 'fallback', undefined], 'the domain is part of the address');
  assert.equal(f.lookup('alice-x@example.com')?.line, 1);
  const plus = parseCfb('alice@example.com:black=1@x.y\nexample.com:black=2@x.y\n', 'p.cfb', { extensionSeparator: '+' });
  assert.equal(plus.lookup('alice+tag@example.com')?.line, 1);
  assert.equal(plus.lookup('alice-tag@example.com')?.line, 2);
  const none = parseCfb('alice@example.com:black=1@x.y\nexample.com:black=2@x.y\n', 'n.cfb', { extensionSeparator: '' });
  assert.equal(none.lookup('alice-tag@example.com')?.line, 2);
});

test('a plugin name in capitals says how to write it', () => {
  const f = parseCfb(':Spamassassin=pass\n', 'c.cfb');
  assert.equal(f.problems[0]!.message, 'invalid plugin name "Spamassassin" (names are lower-case: spamassassin)');
});
