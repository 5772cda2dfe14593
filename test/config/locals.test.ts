import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import fc from 'fast-check';

import { Cdb, controlDirProblem, loadLocals, makeCdb } from '../../src/config/locals.js';
import { NqqError } from '../../src/errors.js';

function control(rcpthosts: string, cdbDomains: string[] = []): string {
  const dir = mkdtempSync(join(tmpdir(), 'nqq-locals-'));
  writeFileSync(join(dir, 'rcpthosts'), rcpthosts);
  if (cdbDomains.length) writeFileSync(join(dir, 'morercpthosts.cdb'), makeCdb(cdbDomains.map((d) => [Buffer.from(d), Buffer.alloc(0)])));
  return dir;
}

test('rcpthosts: exact domains, ".domain" for every subdomain, case-insensitive', () => {
  const l = loadLocals(control('# local domains\nexample.com\n.sub.example.org\n\nEXAMPLE.NET\n'));
  assert.equal(l.isLocal('u@example.com'), true);
  assert.equal(l.isLocal('u@EXAMPLE.com'), true);
  assert.equal(l.isLocal('u@example.net'), true);
  assert.equal(l.isLocal('u@a.example.com'), false);
  assert.equal(l.isLocal('u@x.sub.example.org'), true);
  assert.equal(l.isLocal('u@a.b.sub.example.org'), true);
  assert.equal(l.isLocal('u@sub.example.org'), false);
  assert.equal(l.isLocal('u@elsewhere.com'), false);
  assert.equal(l.isLocal('postmaster'), true, 'no @: local');
  assert.equal(l.isLocal('u@'), false);
});

test('morercpthosts.cdb is consulted the same way', () => {
  const l = loadLocals(control('example.com\n', ['more.example', '.wild.example']));
  assert.equal(l.isLocal('u@more.example'), true);
  assert.equal(l.isLocal('u@x.wild.example'), true);
  assert.equal(l.isLocal('u@wild.example'), false);
  assert.equal(l.isLocal('u@other.example'), false);
  l.close();
});

test('no rcpthosts, or no control directory: an error that names what is missing, never "nothing is local"', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nqq-locals-'));
  assert.throws(() => loadLocals(dir), (err: unknown) => err instanceof NqqError && err.code === 'NQQ_ERR_CONTROL_MISSING' && err.message.includes(`${dir}/rcpthosts does not exist`));
  assert.throws(() => loadLocals(join(dir, 'nope')), (err: unknown) => err instanceof NqqError && err.message.includes(`control directory ${dir}/nope does not exist`));
  assert.match(controlDirProblem(join(dir, 'nope'))?.message ?? '', /does not exist/);
  writeFileSync(join(dir, 'rcpthosts'), 'example.com\n');
  assert.equal(controlDirProblem(dir), undefined);
  assert.deepEqual(controlDirProblem(join(dir, 'rcpthosts')), { path: join(dir, 'rcpthosts'), message: `control directory ${dir}/rcpthosts is not a directory (NQQUEUE_CONTROLDIR)` });
});

test('property: cdb finds every key it holds and nothing else', () => {
  fc.assert(
    fc.property(fc.uniqueArray(fc.stringMatching(/^[a-z0-9.-]{1,20}$/), { maxLength: 200 }), fc.stringMatching(/^[a-z0-9.-]{1,20}$/), (keys, probe) => {
      const dir = mkdtempSync(join(tmpdir(), 'nqq-cdb-'));
      const path = join(dir, 'x.cdb');
      writeFileSync(path, makeCdb(keys.map((k, i) => [Buffer.from(k), Buffer.from(String(i))])));
      const db = Cdb.open(path)!;
      keys.forEach((k, i) => assert.equal(db.get(Buffer.from(k))?.toString(), String(i)));
      if (!keys.includes(probe)) assert.equal(db.get(Buffer.from(probe)), undefined);
      db.close();
    }),
    { numRuns: 100 },
  );
});

test('a control directory or rcpthosts the user cannot read is an error naming it (run as nobody)', (t) => {
  if (process.getuid?.() !== 0) return t.skip('needs root to run a check as another user');
  const dir = mkdtempSync(join(tmpdir(), 'nqq-locals-'));
  chmodSync(dir, 0o755);
  const closed = join(dir, 'closed');
  mkdirSync(closed, { mode: 0o700 });
  writeFileSync(join(closed, 'rcpthosts'), 'example.com\n');
  const open = join(dir, 'open');
  mkdirSync(open, { mode: 0o755 });
  writeFileSync(join(open, 'rcpthosts'), 'example.com\n', { mode: 0o600 });
  const locals = new URL('../../src/config/locals.js', import.meta.url).href;
  const probe = (d: string) =>
    spawnSync(process.execPath, ['--input-type=module', '-e', `const m = await import(${JSON.stringify(locals)}); process.stdout.write(m.controlDirProblem(${JSON.stringify(d)})?.message ?? 'ok');`], {
      uid: 65534,
      gid: 65534,
      encoding: 'utf8',
    });
  assert.equal(probe(closed).stdout, `control directory ${closed} cannot be read: EACCES`, probe(closed).stderr);
  assert.equal(probe(open).stdout, `${open}/rcpthosts cannot be read: EACCES`);
  chmodSync(join(open, 'rcpthosts'), 0o644);
  assert.equal(probe(open).stdout, 'ok');
});
