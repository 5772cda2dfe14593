// Signed one-click links (src/links/links.ts): what a token binds, what changes to it are caught, and
// the site key on disk (0600, refused when others can read it, of the wrong size or a symlink; made
// exactly once when several processes ask for it at the same moment).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';

import { KEY_FILE, makeLink, readLink, signingKey, type LinkAction } from '../../src/links/links.js';

const made: string[] = [];
after(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));

function home(): string {
  const dir = mkdtempSync(join(tmpdir(), 'nqq-links-'));
  made.push(dir);
  return join(dir, 'home');
}

const KEY = Buffer.alloc(32, 7);
const HOUR = 3_600_000;
const claims = (over: Partial<{ id: string; owner: string; action: LinkAction; expires: number }> = {}) => ({
  id: '0123456789abcdefghij',
  owner: 'alice@example.com',
  action: 'release' as LinkAction,
  expires: Date.now() + HOUR,
  ...over,
});

describe('tokens', () => {
  test('round trip: the claims come back exactly, with a fresh nonce per token', () => {
    const c = claims();
    const t1 = makeLink(KEY, c);
    const t2 = makeLink(KEY, c);
    assert.match(t1, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/, 'URL-safe as it is');
    const r1 = readLink(KEY, t1);
    const r2 = readLink(KEY, t2);
    assert.ok(r1.ok && r2.ok);
    assert.deepEqual({ ...r1.claims, nonce: undefined }, { ...c, nonce: undefined });
    assert.notEqual(t1, t2);
    assert.notEqual(r1.claims.nonce, r2.claims.nonce);
    assert.ok(r1.claims.nonce.length >= 16);
  });

  test('every character of a token changed to any other: tampered or malformed, never ok', () => {
    const token = makeLink(KEY, claims());
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ \n\x00%';
    let tried = 0;
    for (let i = 0; i < token.length; i++) {
      for (const ch of alphabet) {
        if (ch === token[i]) continue;
        const bad = token.slice(0, i) + ch + token.slice(i + 1);
        const r = readLink(KEY, bad);
        tried++;
        assert.equal(r.ok, false, `position ${i} changed to ${JSON.stringify(ch)} was read as ok`);
        if (!r.ok) assert.ok(r.why === 'tampered' || r.why === 'malformed', `position ${i}: ${r.why}`);
      }
    }
    assert.ok(tried > token.length * 60);
    // Also as bytes: each bit of each byte flipped.
    const raw = Buffer.from(token, 'latin1');
    for (let i = 0; i < raw.length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const b = Buffer.from(raw);
        b[i]! ^= 1 << bit;
        const r = readLink(KEY, b.toString('latin1'));
        assert.equal(r.ok, false, `byte ${i} bit ${bit} flipped was read as ok`);
      }
    }
    // Cut short, lengthened, doubled, empty.
    for (const bad of [token.slice(0, -1), `${token}A`, `${token}.${token}`, '', '.', token.split('.')[0]!, `.${token.split('.')[1]}`]) {
      assert.equal(readLink(KEY, bad).ok, false, JSON.stringify(bad));
    }
  });

  test('a token signed with another key is tampered', () => {
    const other = Buffer.alloc(32, 8);
    const r = readLink(KEY, makeLink(other, claims()));
    assert.deepEqual(r, { ok: false, why: 'tampered' });
  });

  test('expiry: ok until the millisecond before, expired from then on (and a valid signature is checked first)', () => {
    const expires = Date.now() + 1000;
    const token = makeLink(KEY, claims({ expires }));
    assert.equal(readLink(KEY, token, expires - 1).ok, true);
    assert.deepEqual(readLink(KEY, token, expires), { ok: false, why: 'expired' });
    assert.deepEqual(readLink(KEY, token, expires + 365 * 24 * HOUR), { ok: false, why: 'expired' });
    assert.deepEqual(readLink(KEY, makeLink(KEY, claims({ expires: Date.now() - 1 }))), { ok: false, why: 'expired' });
    // An expired token with a bad signature says tampered: nothing in it is believed.
    const stale = makeLink(Buffer.alloc(32, 9), claims({ expires: Date.now() - 1 }));
    assert.deepEqual(readLink(KEY, stale), { ok: false, why: 'tampered' });
  });

  test('the claims are bound: changing the id, owner, action or expiry inside a token breaks its signature', () => {
    const c = claims();
    const token = makeLink(KEY, c);
    const [body, sig] = token.split('.') as [string, string];
    const parts = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as unknown[];
    assert.deepEqual(parts.slice(0, 4), [c.id, c.owner, c.action, c.expires]);
    const changes: [number, unknown][] = [
      [0, 'zzzzzzzzzzzzzzzzzzzz'],
      [1, 'mallory@example.com'],
      [1, 'ALICE@example.com'],
      [2, 'delete'],
      [2, 'view'],
      [3, c.expires + 1],
      [3, c.expires + 365 * 24 * HOUR],
      [4, 'another-nonce-xxxxxx'],
    ];
    for (const [i, v] of changes) {
      const p = [...parts];
      p[i] = v;
      const forged = `${Buffer.from(JSON.stringify(p)).toString('base64url')}.${sig}`;
      assert.deepEqual(readLink(KEY, forged), { ok: false, why: 'tampered' }, `part ${i} = ${JSON.stringify(v)}`);
    }
    // Each action reads back as itself, and only the three actions can be made.
    for (const action of ['release', 'delete', 'view'] as const) {
      const r = readLink(KEY, makeLink(KEY, claims({ action })));
      assert.ok(r.ok && r.claims.action === action);
    }
    assert.throws(() => makeLink(KEY, claims({ action: 'approve' as LinkAction })), /action/);
    assert.throws(() => makeLink(KEY, claims({ expires: Number.NaN })), /expir/);
    assert.throws(() => makeLink(Buffer.alloc(8), claims()), /key/);
  });

  test('well signed but not a claim list: malformed, never ok', () => {
    // What a bug (or a leaked key) could sign: each shape must still be refused by its reading.
    const sign = (body: string) => `${body}.${createHmac('sha256', KEY).update(`nqqueue-link-1\n${body}`).digest('base64url')}`;
    const enc = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const good = sign(enc(['id', 'a@b', 'view', Date.now() + HOUR, 'n']));
    assert.equal(readLink(KEY, good).ok, true, 'the hand-made signature is right');
    for (const v of [
      ['id', 'a@b', 'approve', Date.now() + HOUR, 'n'],
      ['id', 'a@b', 'view', String(Date.now() + HOUR), 'n'],
      ['id', 'a@b', 'view', Date.now() + HOUR],
      ['id', 'a@b', 'view', Date.now() + HOUR, 'n', 'extra'],
      [1, 'a@b', 'view', Date.now() + HOUR, 'n'],
      { id: 'id' },
      null,
    ]) {
      assert.deepEqual(readLink(KEY, sign(enc(v))), { ok: false, why: 'malformed' }, JSON.stringify(v));
    }
    assert.deepEqual(readLink(KEY, sign(Buffer.from('not json').toString('base64url'))), { ok: false, why: 'malformed' });
    assert.deepEqual(readLink(KEY, 'x'.repeat(5000)), { ok: false, why: 'malformed' });
  });
});

describe('the signing key', () => {
  test('made on first use: 32 bytes, mode 0600, in a 0700 home; the same key ever after', () => {
    const h = home();
    const key = signingKey(h);
    assert.equal(key.length, 32);
    const path = join(h, KEY_FILE);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(statSync(h).mode & 0o777, 0o700);
    assert.ok(readFileSync(path).equals(key), 'the bytes on disk are the key');
    assert.ok(signingKey(h).equals(key));
    assert.notDeepEqual(key, Buffer.alloc(32));
  });

  test('refused when the group or the world can read it (or write it)', () => {
    const h = home();
    signingKey(h);
    const path = join(h, KEY_FILE);
    for (const mode of [0o640, 0o604, 0o620, 0o602, 0o644]) {
      chmodSync(path, mode);
      assert.throws(() => signingKey(h), /can be read by others|chmod 600/, mode.toString(8));
    }
    chmodSync(path, 0o600);
    assert.equal(signingKey(h).length, 32);
    chmodSync(path, 0o400);
    assert.equal(signingKey(h).length, 32, 'read-only for its owner is fine');
  });

  test('refused when it is not 32 bytes (an empty file left behind included); never overwritten', () => {
    for (const size of [0, 16, 31, 33, 64]) {
      const h = home();
      mkdirSync(h, { mode: 0o700 });
      const path = join(h, KEY_FILE);
      writeFileSync(path, Buffer.alloc(size, 1), { mode: 0o600 });
      assert.throws(() => signingKey(h), new RegExp(`${size} bytes, not 32`));
      assert.equal(readFileSync(path).length, size, 'left as it was');
    }
  });

  test('a symlink is refused (O_NOFOLLOW), whether it points at a key, at nothing, or at another file', () => {
    const h = home();
    mkdirSync(h, { mode: 0o700 });
    const elsewhere = join(h, '..', 'elsewhere.key');
    writeFileSync(elsewhere, Buffer.alloc(32, 3), { mode: 0o600 });
    const path = join(h, KEY_FILE);
    symlinkSync(elsewhere, path);
    assert.throws(() => signingKey(h), /symlink/);
    rmSync(path);
    // Dangling: following it would create the key where the link points.
    const target = join(h, '..', 'planted.key');
    symlinkSync(target, path);
    assert.throws(() => signingKey(h), /symlink/);
    assert.throws(() => lstatSync(target), /ENOENT/, 'nothing made through the link');
    assert.ok(lstatSync(path).isSymbolicLink(), 'the link is left for the administrator to look at');
  });

  test('a directory in its place is refused', () => {
    const h = home();
    mkdirSync(join(h, KEY_FILE), { recursive: true });
    assert.throws(() => signingKey(h), /not a regular file|EISDIR/);
  });

  test('processes asking for it at the same moment end with one key, and each gets that key', async () => {
    const url = new URL('../../src/links/links.js', import.meta.url).href;
    const script = join(home(), '..', 'key-racer.mjs');
    writeFileSync(
      script,
      `const [url, home, at] = process.argv.slice(2);\n` +
        `const m = await import(url);\n` +
        `while (Date.now() < Number(at)) {}\n` +
        `try { process.stdout.write(m.signingKey(home).toString('hex')); } catch (e) { process.stdout.write('error: ' + e.message); }\n`,
    );
    for (let round = 0; round < 12; round++) {
      const h = home();
      const at = Date.now() + 400;
      const outs = await Promise.all(
        Array.from({ length: 6 }, () =>
          new Promise<string>((resolve, reject) => {
            const c = spawn(process.execPath, [script, url, h, String(at)], { stdio: ['ignore', 'pipe', 'inherit'] });
            let out = '';
            c.stdout.on('data', (d: Buffer) => (out += d.toString()));
            c.on('error', reject);
            c.on('exit', () => resolve(out));
          }),
        ),
      );
      const onDisk = readFileSync(join(h, KEY_FILE)).toString('hex');
      assert.equal(onDisk.length, 64);
      for (const o of outs) assert.equal(o, onDisk, `round ${round}: every process has the key on disk`);
      assert.equal(statSync(join(h, KEY_FILE)).mode & 0o777, 0o600);
    }
  });
});
