// `nqqueue web` over real HTTP (the built program, a separate process, stopped by PID): what it refuses
// to start with, logging in through the checkpassword interface, the session cookie, CSRF on the login
// and logout forms, the login limits, no user enumeration, and the security headers of every answer.

import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { describe, test } from 'node:test';

import { setupsForThisFile, type Setup } from '../helpers/nqq.js';
import { Browser, checkpasswordCalls, csrfOf, installConsole, SPECIAL, startWeb, type Answer, type WebServer } from '../helpers/web.js';

const make = setupsForThisFile();
const LIMIT = { timeout: 120_000 };

async function consoleFor(o: Parameters<typeof installConsole>[1] = {}): Promise<{ s: Setup; web: WebServer; record: string }> {
  const s = make();
  const { record } = installConsole(s, o);
  const web = await startWeb(s);
  return { s, web, record };
}

function cookieLine(a: Answer, name: string): string {
  const line = [a.headers['set-cookie'] ?? []].flat().find((c) => c.startsWith(`${name}=`));
  assert.ok(line, `a ${name} cookie is set: ${JSON.stringify(a.headers['set-cookie'])}`);
  return line;
}

describe('nqqueue web: starting', LIMIT, () => {
  test('without a checkpassword program it refuses to start (111), saying what to set', () => {
    const s = make();
    installConsole(s);
    s.write('nqqueue.conf', `[web]\nlisten = ${s.dir}/web.sock\n`);
    const r = s.command(['web']);
    assert.equal(r.code, 111);
    assert.match(r.stderr, /nqqueue web: cannot start: no checkpassword program: set it in the \[web\] section of .*nqqueue\.conf/);
  });

  test('a listen address that is not loopback is refused (111); a broken [web] value is named with its line', () => {
    const s = make();
    installConsole(s, { web: { listen: '192.0.2.1:8025' } });
    const r = s.command(['web']);
    assert.equal(r.code, 111);
    assert.match(r.stderr, /\[web\] listen = 192\.0\.2\.1:8025 is not a loopback address/);
    installConsole(s, { web: { session: 'forever' } });
    const b = s.command(['web']);
    assert.equal(b.code, 111);
    assert.match(b.stderr, /nqqueue\.conf:\d+: \[web\] session: not an age/);
  });

  test('--help shows the usage and loads nothing else', () => {
    const s = make();
    const r = s.command(['web', '--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^usage: nqqueue web\n/);
    assert.match(r.stdout, /checkpassword/);
  });

  test('on 127.0.0.1 with a port of its own: answers, and SIGTERM stops it (exit 0)', async () => {
    const { web } = await consoleFor({ tcp: true });
    assert.ok('port' in web.target && web.target.port > 0);
    const a = await web.request('GET', '/login');
    assert.equal(a.status, 200);
    assert.deepEqual(await web.stop(), { code: 0, signal: null });
  });
});

describe('nqqueue web: logging in', LIMIT, () => {
  test('the right password logs in: checkpassword got the address on fd 3 and ran /bin/true; the cookie is HttpOnly, SameSite=Strict', async () => {
    const { web, record } = await consoleFor();
    const b = new Browser(web);
    const page = await b.get('/login');
    assert.equal(page.status, 200);
    assert.match(page.body, /<form method="post" action="\/login">/);
    const a = await b.post('/login', { csrf: csrfOf(page.body), login: 'Alice@Example.com', password: 'alice-secret' });
    assert.equal(a.status, 303, a.body);
    assert.equal(a.headers.location, '/');
    const c = cookieLine(a, 'nqq_session');
    assert.match(c, /; HttpOnly/);
    assert.match(c, /; SameSite=Strict/);
    assert.match(c, /; Path=\//);
    assert.doesNotMatch(c, /Secure/, 'plain HTTP without a proxy saying https: not Secure');
    assert.match(c, /^nqq_session=[A-Za-z0-9_-]{43};/, '32 random bytes');
    assert.deepEqual(checkpasswordCalls(record), ['alice@example.com ok /bin/true']);
    const list = await b.get('/');
    assert.equal(list.status, 200);
    assert.match(list.body, /alice@example\.com/);
    // Another browser (no cookie) is not logged in.
    const other = await new Browser(web).get('/');
    assert.equal(other.status, 303);
    assert.equal(other.headers.location, '/login');
    await web.stop();
  });

  test('a wrong password and an unknown address get the same answer, after about the same time', async () => {
    const { web, record } = await consoleFor();
    const timed = async (login: string) => {
      const b = new Browser(web);
      const page = await b.get('/login');
      const t = Date.now();
      const a = await b.post('/login', { csrf: csrfOf(page.body), login, password: 'not it' });
      return { a, ms: Date.now() - t };
    };
    const wrong = await timed('alice@example.com');
    const unknown = await timed('nobody@example.com');
    assert.equal(wrong.a.status, 401);
    assert.equal(unknown.a.status, 401);
    const text = (a: Answer) => a.body.replace(/name="csrf" value="[^"]*"/, '').replace(/value="[^"]*@example\.com"/, '');
    assert.equal(text(wrong.a), text(unknown.a));
    assert.match(wrong.a.body, /The address or the password is not right/);
    // The program took 150 ms longer for the known address; the answers do not show it.
    assert.deepEqual(checkpasswordCalls(record), ['alice@example.com wrong', 'nobody@example.com unknown']);
    assert.ok(wrong.ms >= 550 && unknown.ms >= 550, `both wait for the floor: ${wrong.ms} ${unknown.ms}`);
    assert.ok(Math.abs(wrong.ms - unknown.ms) < 120, `similar times: ${wrong.ms} ms and ${unknown.ms} ms`);
    assert.equal([wrong.a.headers['set-cookie'] ?? []].flat().some((c) => c.startsWith('nqq_session=')), false, 'no session');
    await web.stop();
  });

  test('checkpassword exit 111 is "try again later" (503), any other exit or no answer in time is a refusal', async () => {
    const { web, record } = await consoleFor({ web: { checkpassword_timeout: '1s' } });
    const down = await new Browser(web).login(SPECIAL.temporary, 'x');
    assert.equal(down.status, 503);
    assert.match(down.body, /try again later/);
    assert.equal(down.headers['retry-after'], '30');
    const crash = await new Browser(web).login(SPECIAL.crash, 'x');
    assert.equal(crash.status, 401);
    const t = Date.now();
    const hang = await new Browser(web).login(SPECIAL.hang, 'x');
    assert.equal(hang.status, 401);
    assert.ok(Date.now() - t >= 900 && Date.now() - t < 5000, `${Date.now() - t} ms`);
    assert.match(web.stderr(), /login refused login="hang@example\.com" .*no answer in 1000 ms \(killed\)/);
    assert.deepEqual(checkpasswordCalls(record), ['down@example.com temporary', 'crash@example.com crash', 'hang@example.com hang']);
    // None of them is a session.
    for (const a of [down, crash, hang]) assert.equal([a.headers['set-cookie'] ?? []].flat().some((c) => c.startsWith('nqq_session=')), false);
    await web.stop();
  });

  test('the login form needs its CSRF token: without it or with another browser\'s, checkpassword is not even asked', async () => {
    const { web, record } = await consoleFor();
    const b = new Browser(web);
    await b.get('/login');
    const none = await b.post('/login', { login: 'alice@example.com', password: 'alice-secret' });
    assert.equal(none.status, 403);
    const other = new Browser(web);
    const token = csrfOf((await other.get('/login')).body);
    const foreign = await b.post('/login', { csrf: token, login: 'alice@example.com', password: 'alice-secret' });
    assert.equal(foreign.status, 403);
    // No login cookie at all (a form posted from a page that never came from here).
    const bare = await web.request('POST', '/login', { body: `csrf=${token}&login=alice%40example.com&password=alice-secret` });
    assert.equal(bare.status, 403);
    assert.deepEqual(checkpasswordCalls(record), []);
    await web.stop();
  });

  test('logging out needs the CSRF token and ends the session', async () => {
    const { web } = await consoleFor();
    const b = new Browser(web);
    assert.equal((await b.login('bob@example.com', 'bob pass word')).status, 303);
    const token = await b.csrf();
    const forged = await b.post('/logout', { csrf: 'x'.repeat(43) });
    assert.equal(forged.status, 403);
    assert.equal((await b.get('/')).status, 200, 'still logged in');
    const session = b.cookies.get('nqq_session')!;
    const out = await b.post('/logout', { csrf: token });
    assert.equal(out.status, 200);
    // The old cookie, sent again, is nothing.
    const again = await web.request('GET', '/', { headers: { cookie: `nqq_session=${session}` } });
    assert.equal(again.status, 303);
    await web.stop();
  });

  test('a session ends after [web] session without use, and lasts while used', async () => {
    const { web } = await consoleFor({ web: { session: '2s' } });
    const b = new Browser(web);
    assert.equal((await b.login('bob@example.com', 'bob pass word')).status, 303);
    for (let i = 0; i < 3; i++) {
      await delay(1000);
      assert.equal((await b.get('/')).status, 200, `used after ${i + 1} s`);
    }
    await delay(2300);
    const late = await b.get('/');
    assert.equal(late.status, 303);
    assert.equal(late.headers.location, '/login');
    await web.stop();
  });

  test('cookies are Secure behind a trusted proxy saying https, and always when [web] url is https', async () => {
    const { web } = await consoleFor({ web: { trust_proxy: 'yes' } });
    const viaProxy = new Browser(web, { 'x-forwarded-proto': 'https', 'x-forwarded-for': '203.0.113.9' });
    const a = await viaProxy.login('bob@example.com', 'bob pass word');
    assert.match(cookieLine(a, 'nqq_session'), /; Secure/);
    assert.match(String(a.headers['strict-transport-security']), /max-age=/);
    const plain = await new Browser(web).login('bob@example.com', 'bob pass word');
    assert.doesNotMatch(cookieLine(plain, 'nqq_session'), /Secure/);
    await web.stop();
    const second = await consoleFor({ web: { url: 'https://quarantine.example.com/' } });
    const c = await new Browser(second.web).login('bob@example.com', 'bob pass word');
    assert.match(cookieLine(c, 'nqq_session'), /; Secure/);
    // Without trust_proxy a client's own X-Forwarded-Proto changes nothing, and its X-Forwarded-For is not its address.
    await second.web.stop();
  });
});

describe('nqqueue web: login limits', LIMIT, () => {
  test('per address: after 5 failures (from 5 clients) the 6th try is 429 with Retry-After, even with the right password', async () => {
    const { web, record } = await consoleFor({ web: { trust_proxy: 'yes' } });
    const tries = await Promise.all([1, 2, 3, 4, 5].map((n) => new Browser(web, { 'x-forwarded-for': `198.51.100.${n}` }).login('alice@example.com', `guess ${n}`)));
    assert.deepEqual(
      tries.map((t) => t.status),
      [401, 401, 401, 401, 401],
    );
    const sixth = await new Browser(web, { 'x-forwarded-for': '198.51.100.6' }).login('alice@example.com', 'alice-secret');
    assert.equal(sixth.status, 429);
    const retry = Number(sixth.headers['retry-after']);
    assert.ok(retry > 800 && retry <= 900, `Retry-After ${sixth.headers['retry-after']}`);
    assert.match(sixth.body, /Too many failed logins/);
    assert.equal(checkpasswordCalls(record).length, 5, 'the 6th never reached checkpassword');
    // The limit is the same for an address that does not exist: a 429 tells nothing.
    await Promise.all([1, 2, 3, 4, 5].map((n) => new Browser(web, { 'x-forwarded-for': `198.51.100.${10 + n}` }).login('ghost@example.com', `guess ${n}`)));
    const ghost = await new Browser(web, { 'x-forwarded-for': '198.51.100.16' }).login('ghost@example.com', 'x');
    assert.equal(ghost.status, 429);
    // Another address from those clients is not limited.
    assert.equal((await new Browser(web, { 'x-forwarded-for': '198.51.100.1' }).login('bob@example.com', 'bob pass word')).status, 303);
    await web.stop();
  });

  test('per client: after 5 failures from one address of any logins, that client gets 429; another client logs in', async () => {
    const { web, record } = await consoleFor({ web: { trust_proxy: 'yes' } });
    const from = { 'x-forwarded-for': '192.0.2.50' };
    const tries = await Promise.all([1, 2, 3, 4, 5].map((n) => new Browser(web, from).login(`user${n}@example.com`, 'x')));
    assert.deepEqual(
      tries.map((t) => t.status),
      [401, 401, 401, 401, 401],
    );
    const blocked = await new Browser(web, from).login('bob@example.com', 'bob pass word');
    assert.equal(blocked.status, 429);
    assert.ok(Number(blocked.headers['retry-after']) > 0);
    const elsewhere = await new Browser(web, { 'x-forwarded-for': '192.0.2.51' }).login('bob@example.com', 'bob pass word');
    assert.equal(elsewhere.status, 303);
    assert.equal(checkpasswordCalls(record).length, 6);
    await web.stop();
  });
});

describe('nqqueue web: headers', LIMIT, () => {
  test('every answer carries the security headers; private pages are no-store; no page has a script', async () => {
    const { web } = await consoleFor();
    const b = new Browser(web);
    const answers: [string, Answer][] = [
      ['login', await b.get('/login')],
      ['404', await b.get('/no/such/page')],
      ['refused POST', await b.post('/login', { login: 'x' })],
      ['redirect', await b.get('/')],
    ];
    await b.login('alice@example.com', 'alice-secret');
    answers.push(['list', await b.get('/')], ['preferences', await b.get('/preferences')], ['style', await b.get('/style.css')], ['bad link', await b.get('/link/nonsense')]);
    for (const [name, a] of answers) {
      const csp = String(a.headers['content-security-policy']);
      assert.match(csp, /default-src 'none'/, name);
      assert.match(csp, /frame-ancestors 'none'/, name);
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|script-src/, name);
      assert.equal(a.headers['x-content-type-options'], 'nosniff', name);
      assert.equal(a.headers['referrer-policy'], 'no-referrer', name);
      assert.equal(a.headers['x-frame-options'], 'DENY', name);
      if (name !== 'style') assert.equal(a.headers['cache-control'], 'no-store', name);
      assert.doesNotMatch(a.body, /<script/i, name);
    }
    assert.match(String(answers.find(([n]) => n === 'style')![1].headers['content-type']), /^text\/css/);
    await web.stop();
  });

  test('a form posted from another site (Sec-Fetch-Site: cross-site) is refused', async () => {
    const { web, record } = await consoleFor();
    const b = new Browser(web);
    const page = await b.get('/login');
    const a = await b.post('/login', { csrf: csrfOf(page.body), login: 'alice@example.com', password: 'alice-secret' }, { 'sec-fetch-site': 'cross-site' });
    assert.equal(a.status, 403);
    assert.deepEqual(checkpasswordCalls(record), []);
    await web.stop();
  });
});
