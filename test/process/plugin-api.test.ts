// The plugin contract as a third-party author meets it: the README's example loads exactly as written
// from a plugin_dir, the test kit works as the README says, and the host gives every plugin its own
// shared() keys, a per-recipient default scope and a version check.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { pluginDir, REPO, setupsForThisFile, withoutTrace } from '../helpers/nqq.js';

const make = setupsForThisFile();

/** The fenced ```js blocks of the README's "Writing a plugin" section, in order. */
function readmeBlocks(): string[] {
  const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
  const start = readme.indexOf('\n### Writing a plugin\n');
  assert.ok(start >= 0, 'the README has a "Writing a plugin" section');
  const rest = readme.slice(start + 1);
  const end = rest.search(/\n##? /);
  const section = end < 0 ? rest : rest.slice(0, end);
  return [...section.matchAll(/^```js\n([^]*?)^```$/gm)].map((m) => m[1]!);
}

test('the README plugin example loads as written from a plugin_dir and runs through bin/nqqueue', async () => {
  const [plugin] = readmeBlocks();
  assert.ok(plugin, 'an example plugin block');
  assert.match(plugin, /from 'nqqueue'/, 'the example imports the package by name, as an author would');
  const s = make();
  const dir = pluginDir(s, { 'subject-tag': plugin });
  s.write('nqqueue.conf', `plugin_dir = ${dir}\n`);
  s.write('general.cfb', ':subject-tag=tag=external\n');
  const r = await s.run({});
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.deliveries.length, 1);
  assert.match(withoutTrace(r.deliveries[0]!.message).toString(), /^X-Tag: external\n/);
  assert.match(r.logLines.join('\n'), /general=subject-tag:accept/);
  const ext = await s.run({ message: 'Subject: [ext] hi\n\nbody\n' });
  assert.equal(ext.code, 0, ext.stderr);
  assert.doesNotMatch(ext.deliveries.at(-1)!.message.toString(), /X-Tag:/);
  // check-config and explain load it the same way.
  const cc = s.command(['check-config']);
  assert.equal(cc.code, 0, cc.stderr);
  assert.match(s.command(['explain', '--from', 'a@b.example', '--to', 'c@example.com']).stdout, /- subject-tag=tag=external +\[\/.*subject-tag\.js, v1\.0\.0/);
});

test("the README's test-kit example passes against the README's plugin (nqqueue/testing)", () => {
  const [plugin, kitTest] = readmeBlocks();
  assert.ok(plugin && kitTest, 'a plugin block and a test-kit block');
  const s = make();
  // A plugin author's project with NQqueue installed as a development dependency.
  const project = join(s.dir, 'project');
  mkdirSync(join(project, 'node_modules'), { recursive: true });
  symlinkSync(REPO, join(project, 'node_modules', 'nqqueue'));
  writeFileSync(join(project, 'package.json'), '{ "type": "module" }\n');
  writeFileSync(join(project, 'subject-tag.js'), plugin);
  writeFileSync(join(project, 'subject-tag.test.js'), kitTest);
  // A test run of its own: without NODE_TEST_CONTEXT, which would make it report to this runner instead.
  const { NODE_TEST_CONTEXT: _, ...env } = process.env;
  const r = spawnSync(process.execPath, ['--test', 'subject-tag.test.js'], { cwd: project, env, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, `${r.error ?? ''}${r.stdout}${r.stderr}`);
  // Node's default reporter: TAP on Node 22 ("# pass 2"), spec from Node 23 on ("ℹ pass 2").
  assert.match(r.stdout, /^(?:#|ℹ) pass 2$/m);
  assert.match(r.stdout, /^(?:#|ℹ) fail 0$/m);
});

test('a plugin whose host range excludes this NQqueue is a clear load error, and defers', async () => {
  const s = make();
  const dir = pluginDir(s, {
    future: `import { definePlugin } from 'nqqueue';
export default definePlugin({ name: 'future', version: '3.1.0', host: '>=2 <3', stages: ['general'], configure: () => ({}), async run() { return { verdict: 'accept' }; } });
`,
    badrange: `export default { name: 'badrange', version: '1.0.0', host: 'soon', stages: ['general'], configure: () => ({}), async run() { return { verdict: 'accept' }; } };
`,
  });
  s.write('nqqueue.conf', `plugin_dir = ${dir}\n`);
  s.write('general.cfb', ':future\n');
  const r = await s.run({ extraEnv: { NQQUEUE_REJECT: 'plain' } });
  assert.equal(r.code, 71, r.stderr);
  assert.equal(r.deliveries.length, 0);
  assert.match(r.stderr, /plugin future 3\.1\.0 needs NQqueue \\?">=2 <3\\?", this is NQqueue 0\.\d+\.\d+/);
  const cc = s.command(['check-config']);
  assert.equal(cc.code, 1);
  assert.match(cc.stderr, /general\.cfb:1: .*future\.js: plugin future 3\.1\.0 needs NQqueue ">=2 <3", this is NQqueue/);
  s.write('general.cfb', ':badrange\n');
  const bad = s.command(['check-config']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /general\.cfb:1: .*badrange\.js: plugin badrange: host: cannot read "soon"/);
});

test('a third-party plugin without scope runs once per recipient; with scope () => undefined, once for all', async () => {
  const s = make();
  const count = (name: string, scope: string) => `let runs = 0;
export default { name: '${name}', version: '1.0.0', stages: ['per-user'], configure: () => ({}),${scope}
  async run(ctx) { runs++; return { verdict: 'accept', headers: [{ name: 'X-${name}', value: ctx.recipient + ' run ' + runs + ' group ' + ctx.group.length }] }; } };
`;
  const dir = pluginDir(s, { noscope: count('noscope', ''), shareable: count('shareable', ' scope: () => undefined,') });
  s.write('nqqueue.conf', `plugin_dir = ${dir}\n`);
  s.write('nqqueue.cfb', ':noscope\n');
  const r = await s.run({ to: ['a@example.com', 'b@example.com'] });
  assert.equal(r.code, 0, r.stderr);
  const texts = r.deliveries.map((d) => d.message.toString());
  assert.equal(r.deliveries.length, 2, 'each recipient got its own run, so its own copy');
  assert.ok(texts.some((t) => /X-noscope: a@example\.com run \d group 1/.test(t)), texts.join('\n---\n'));
  assert.ok(texts.some((t) => /X-noscope: b@example\.com run \d group 1/.test(t)), texts.join('\n---\n'));
  s.write('nqqueue.cfb', ':shareable\n');
  const shared = await s.run({ to: ['a@example.com', 'b@example.com'] });
  assert.equal(shared.code, 0, shared.stderr);
  const fresh = shared.deliveries.slice(r.deliveries.length);
  assert.equal(fresh.length, 1, 'one run stood for both');
  assert.match(fresh[0]!.message.toString(), /X-shareable: a@example\.com run \d+ group 2/);
});

test('shared() keys are each plugin\'s own: two plugins using the same key do not see each other\'s work', async () => {
  const s = make();
  const mod = (name: string) => `export default { name: '${name}', version: '1.0.0', stages: ['general'], configure: () => ({}),
  async run(ctx) { const v = await ctx.shared('scan', async () => '${name}'); return { verdict: 'accept', headers: [{ name: 'X-${name}', value: v }] }; } };
`;
  const dir = pluginDir(s, { first: mod('first'), second: mod('second') });
  s.write('nqqueue.conf', `plugin_dir = ${dir}\n`);
  s.write('general.cfb', ':first;second\n');
  const r = await s.run({});
  assert.equal(r.code, 0, r.stderr);
  const text = r.deliveries[0]!.message.toString();
  assert.match(text, /X-first: first\n/);
  assert.match(text, /X-second: second\n/, 'not the first plugin\'s answer under the same key');
});

test("a plugin whose own helper module imports 'nqqueue' loads too", async () => {
  const s = make();
  const dir = pluginDir(s, {
    // The plugin file itself does not name the package; the module it imports does.
    indirect: `import { make } from './lib/make.js';
export default make('indirect');
`,
  });
  mkdirSync(join(dir, 'lib'), { mode: 0o755 });
  writeFileSync(
    join(dir, 'lib', 'make.js'),
    `import { definePlugin } from 'nqqueue';
export const make = (name) => definePlugin({ name, version: '1.0.0', stages: ['general'], configure: () => ({}), async run() { return { verdict: 'accept', headers: [{ name: 'X-Made', value: name }] }; } });
`,
    { mode: 0o644 },
  );
  s.write('nqqueue.conf', `plugin_dir = ${dir}\n`);
  s.write('general.cfb', ':indirect\n');
  const r = await s.run({});
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.deliveries[0]!.message.toString(), /X-Made: indirect\n/);
});
