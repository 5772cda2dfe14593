import assert from 'node:assert/strict';
import { test } from 'node:test';

import { submissionTrust } from '../../src/qmail/submission.js';

test('a submission is trusted on RELAYCLIENT (even empty), an SMTP AUTH user, or local injection only', () => {
  const ip = { TCPREMOTEIP: '192.0.2.7' };
  assert.equal(submissionTrust(ip).trusted, false);
  assert.match(submissionTrust(ip).rule, /TCPREMOTEIP=192\.0\.2\.7 without RELAYCLIENT, SMTPAUTHUSER or AUTHUSER/);
  assert.equal(submissionTrust({ ...ip, RELAYCLIENT: '' }).trusted, true);
  assert.equal(submissionTrust({ ...ip, RELAYCLIENT: '.relay' }).trusted, true);
  assert.equal(submissionTrust({ ...ip, SMTPAUTHUSER: 'alice' }).rule, 'SMTPAUTHUSER is set (an authenticated client)');
  assert.equal(submissionTrust({ ...ip, AUTHUSER: 'alice' }).trusted, true);
  assert.equal(submissionTrust({ ...ip, SMTPAUTHUSER: '', AUTHUSER: '' }).trusted, false, 'an empty user authenticates nobody');
  assert.equal(submissionTrust({}).rule, 'TCPREMOTEIP is unset (local injection)');
  assert.equal(submissionTrust({ TCPREMOTEIP: '' }).trusted, false, 'set, even empty, is not local injection');
});
