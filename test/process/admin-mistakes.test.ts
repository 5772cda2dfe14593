// Mistakes an administrator makes that the program accepts (they are allowed by the contract) must at
// least be visible where the admin looks: explain and check-config.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { setupsForThisFile } from '../helpers/nqq.js';

const make = setupsForThisFile();

test('explain: an NQQFILE whose file does not exist is named, with the file that applies instead', () => {
  const s = make();
  s.write('nqqueue.cfb', ':black=bad@example.org\n');
  s.write('strict.cfb', ':black=worse@example.org\n');
  const typo = s.command(['explain', '--from', 'a@client.example', '--to', 'rcpt@example.com', '--env', 'NQQFILE=strickt']);
  assert.equal(typo.code, 0, typo.stderr);
  assert.match(typo.stdout, /NQQFILE=strickt, but \S*\/strickt\.cfb does not exist: the next file applies/);
  assert.match(typo.stdout, /per-user stage \(\S*\/nqqueue\.cfb\)/);
  const right = s.command(['explain', '--from', 'a@client.example', '--to', 'rcpt@example.com', '--env', 'NQQFILE=strict']);
  assert.equal(right.code, 0, right.stderr);
  assert.doesNotMatch(right.stdout, /does not exist/);
  assert.match(right.stdout, /per-user stage \(\S*\/strict\.cfb\)/);
});

test('check-config: an rcpthosts with only comments says that per-user files never apply', () => {
  const s = make();
  s.write('rcpthosts', '# example.com\n\n');
  s.write('nqqueue.cfb', ':black=bad@example.org\n');
  const r = s.command(['check-config']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /note: \S*\/rcpthosts lists no domain .*every recipient with a domain is remote .*nqqueue\.cfb never apply/);
  s.write('rcpthosts', 'example.com\n');
  assert.doesNotMatch(s.command(['check-config']).stdout, /lists no domain/);
});
