// The manual pages: generated from the declarations by scripts/man.js, valid roff that groff and man
// render without a warning, naming exactly the keys the code declares — and the README's key tables too.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { definePlugin } from '../../src/plugin-api/define.js';
import { compareReadme, comparePages, declared, describePlugin, pageEntries, undocumented, type Declared } from '../helpers/man-check.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const PAGES = ['nqqueue.8', 'nqqueue-qq.8', 'nqqueue.cfb.5', 'nqqueue.conf.5', 'nqqueue-plugins.7'];

let dir: string;
let decl: Declared;
const page = (name: string) => readFileSync(join(dir, name), 'utf8');
const entriesOf = (conf: string, plugins: string) => pageEntries(plugins, pageEntries(conf));

function groffWarnings(file: string): { status: number | null; stderr: string } {
  const r = spawnSync('groff', ['-ww', '-z', '-man', file], { encoding: 'utf8' });
  assert.ifError(r.error);
  return { status: r.status, stderr: r.stderr };
}

const hasMan = spawnSync('man', ['--version'], { encoding: 'utf8' }).status === 0;

function manRender(file: string) {
  return spawnSync('man', ['--warnings', '-l', file], { encoding: 'utf8', env: { ...process.env, MANWIDTH: '80', MAN_KEEP_FORMATTING: '', MAN_DISABLE_SECCOMP: '1', PAGER: 'cat' } });
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'nqq-man-'));
  const r = spawnSync(process.execPath, [join(REPO, 'scripts', 'man.js'), '--out', dir, '--quiet'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  decl = await declared();
});

after(() => rmSync(dir, { recursive: true, force: true }));

test('the generator writes the pages package.json lists, and no other', () => {
  assert.deepEqual(readdirSync(dir).sort(), [...PAGES].sort());
  const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { man: string[]; scripts: { build: string } };
  assert.deepEqual(pkg.man.map((p) => p.replace(/^\.\/dist\/man\//, '')).sort(), [...PAGES].sort());
  assert.match(pkg.scripts.build, /(^|&& )tsc [^&]*&&.*node scripts\/man\.js/, 'the build generates the pages after tsc');
});

test('groff -ww reports no warning on any page', () => {
  for (const name of PAGES) {
    const { status, stderr } = groffWarnings(join(dir, name));
    assert.equal(stderr, '', `${name}: ${stderr}`);
    assert.equal(status, 0, name);
  }
});

test('the groff check fails on a page with a mistake', () => {
  const bad = join(dir, 'bad.7');
  writeFileSync(bad, `${page('nqqueue-plugins.7')}\n.XX an undefined macro\n'a line taken for a request\n`);
  try {
    const { stderr } = groffWarnings(bad);
    assert.match(stderr, /XX/);
    if (hasMan) assert.match(manRender(bad).stderr, /XX/, 'man --warnings says so too');
  } finally {
    rmSync(bad);
  }
});

test('man renders every page at 80 columns without a warning', { skip: hasMan ? false : 'man-db is not installed' }, () => {
  for (const name of PAGES) {
    const r = manRender(join(dir, name));
    assert.equal(r.stderr, '', `${name}: ${r.stderr}`);
    assert.equal(r.status, 0, name);
    assert.match(r.stdout, /^NAME$/m, name);
    const wide = r.stdout.split('\n').filter((l) => l.replace(/.\x08/g, '').length > 80);
    assert.deepEqual(wide, [], `${name}: lines wider than 80 columns`);
  }
});

test('options and code are written with \\- and no text line is taken for a request', () => {
  for (const name of PAGES) {
    const lines = page(name).split('\n');
    lines.forEach((l, i) => {
      if (l.startsWith('.\\"')) return;
      assert.doesNotMatch(l, /(^|[^\\])--/, `${name}:${i + 1}: a typed -- is written \\-\\-`);
      assert.doesNotMatch(l, /^'/, `${name}:${i + 1}`);
    });
  }
  assert.match(page('nqqueue.8'), /\\fB\\-\\-probe\\fR/, 'check-config --probe, from its usage');
  assert.match(page('nqqueue.8'), /escapes \(\\ex1b, \\eu009b\)/, 'a backslash in a usage text is written \\e');
});

test('every declared key, section, plugin and bare word has a meaning', () => {
  assert.deepEqual(undocumented(decl), []);
  assert.ok(Object.keys(decl.plugins).length >= 10, 'the built-in plugins are all there');
});

test('the check of declarations finds a plugin key or word without a meaning', () => {
  const def = definePlugin({
    name: 'tagger',
    version: '1.0.0',
    stages: ['general'],
    description: 'adds a tag',
    params: { keys: { tag: { doc: 'the tag' }, loud: {} }, words: ['quiet', 'shout'], wordsDoc: { quiet: 'no log line' } },
    configure: () => ({}),
    run: async () => ({ verdict: 'accept' }) as never,
  });
  const problems = undocumented({ ...decl, plugins: { tagger: describePlugin(def) } });
  assert.deepEqual(problems, ['plugin tagger key loud has no doc', 'plugin tagger word shout has no doc']);
});

test('the pages document every declared key and word, and only those', () => {
  const e = entriesOf(page('nqqueue.conf.5'), page('nqqueue-plugins.7'));
  assert.deepEqual(comparePages(decl, e), []);
  // What the entries say is what the code says.
  assert.match(e.get('global')!.get('deadline')!, /whole-message deadline/);
  assert.match(e.get('[learn]')!.get('junk')!, /Maildir\+\+ folders/);
  assert.match(e.get('plugin clamav keys')!.get('fildes')!, /FILDES/);
  assert.match(e.get('plugin quarantine words')!.get('all')!, /any earlier result/);
  assert.match(e.get('plugin black words')!.get('*')!, /bounces/);
  assert.ok(e.get('common COMMON KEYS')!.has('maxsize'));
});

test('the pages check fails on a missing, an extra, a doubled or an empty entry', () => {
  const conf = page('nqqueue.conf.5');
  const plugins = page('nqqueue-plugins.7');
  const check = (c: string, p: string) => comparePages(decl, entriesOf(c, p));

  const renamed = check(conf.replace('.B deadline\n', '.B deadlin\n'), plugins);
  assert.ok(renamed.includes('global settings: deadline is not in the pages'), renamed.join('\n'));
  assert.ok(renamed.includes('global settings: the pages document deadlin, which is not declared'), renamed.join('\n'));

  const extra = check(conf.replace('.SS [web]\n', '.SS [web]\n.TP\n.B colour\nthe colour of the console.\n'), plugins);
  assert.deepEqual(extra, ['[web]: the pages document colour, which is not declared']);

  const empty = check(conf, plugins.replace(/(\.TP\n\.B fildes\n)[^\n]*\n/, '$1'));
  assert.deepEqual(empty, ['plugin clamav keys: fildes has an empty meaning']);

  const twice = check(conf, plugins.replace('.TP\n.B fildes\n', '.TP\n.B fildes\nonce more.\n.TP\n.B fildes\n'));
  assert.deepEqual(twice, ['plugin clamav keys: fildes is documented twice']);

  const noWords = check(conf, plugins.replace(/^Bare words: the senders.*$/m, 'Bare words: none.'));
  assert.deepEqual(noWords, ['plugin black words: * is not in the pages']);

  const reworded = check(conf.replace(/^timeout of one qmail-queue call\.$/m, 'timeout of every qmail-queue call.'), plugins);
  assert.deepEqual(reworded, ['global settings: queue_timeout means "timeout of every qmail-queue call." in the pages, but "timeout of one qmail-queue call." in the code']);

  const section = check(conf.replace(/\.SS \[digest\][\s\S]*?(?=\.SS \[learn\])/, ''), plugins);
  assert.ok(section.includes('[digest]: cadence is not in the pages'), section.join('\n'));
});

test("the README's key tables name only declared keys and cover every global and service key", () => {
  assert.deepEqual(compareReadme(decl, readFileSync(join(REPO, 'README.md'), 'utf8')), []);
});

test('the README check fails on a table with an extra or a missing key', () => {
  const md = readFileSync(join(REPO, 'README.md'), 'utf8');
  const check = (text: string) => compareReadme(decl, text);

  const extraGlobal = check(md.replace('| `timeout` | `60s` |', '| `timeout`, `timeuot` | `60s` |'));
  assert.equal(extraGlobal.length, 1, extraGlobal.join('\n'));
  assert.match(extraGlobal[0]!, /timeuot is not a global setting/);

  const missingGlobal = check(md.replace(/^\| `spill_total` \|.*\n/m, ''));
  assert.deepEqual(missingGlobal, ['README.md: the settings table lacks the global key spill_total']);

  const web = check(md.replace('| `session` | `8h` |', '| `sesion` | `8h` |'));
  assert.ok(web.some((p) => /sesion is not a key of \[web\]/.test(p)) && web.includes('README.md: no table has [web] session'), web.join('\n'));

  const learn = check(md.replace('| `[learn] junk` |', '| `[learn] junc` |'));
  assert.ok(learn.some((p) => /junc is not a key of \[learn\]/.test(p)), learn.join('\n'));

  const scanner = check(md.replace('| | `fildes` | `yes` |', '| | `filedes` | `yes` |'));
  assert.deepEqual(scanner.length, 1, scanner.join('\n'));
  assert.match(scanner[0]!, /filedes is not a key of plugin clamav/);

  const pluginRow = check(md.replace('| `dspam` | `bin` | `pass` |', '| `dspam` | `binary` | `pass`, `loud` |'));
  assert.ok(pluginRow.some((p) => /binary is not a key of plugin dspam/.test(p)), pluginRow.join('\n'));
  assert.ok(pluginRow.some((p) => /plugin dspam's key bin is missing/.test(p)), pluginRow.join('\n'));
  assert.ok(pluginRow.some((p) => /loud is not a bare word of plugin dspam/.test(p)), pluginRow.join('\n'));

  const stage = check(md.replace('| `clamav` | general |', '| `clamav` | per-user |'));
  assert.ok(stage.some((p) => /plugin clamav runs in general, not per-user/.test(p)), stage.join('\n'));

  const unknownTable = check(`${md}\n### Somewhere\n\n| key | default | meaning |\n|---|---|---|\n| \`x\` | 1 | y |\n`);
  assert.ok(unknownTable.some((p) => /a key table whose keys are of no known section/.test(p)), unknownTable.join('\n'));
});
