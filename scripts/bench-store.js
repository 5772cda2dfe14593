// The store row of `npm run bench`: how long a quarantined message spends in the store — the index
// entry written at the commit point, with the message's bytes where the store keeps them (PostgreSQL,
// shared by several hosts) — on the embedded SQLite and on a real PostgreSQL (a throw-away cluster, on
// its Unix socket; fsync on, as a site runs it). Median of many, in a child on the Node.js NQqueue
// runs on, through the same Store interface the quarantine plugin uses.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

export const STORE_ITEMS = 300;

function childScript(root) {
  const url = (p) => JSON.stringify(pathToFileURL(join(root, 'dist', p)).href);
  return `
    const [{ openStore }, { parseSettings }] = await Promise.all([import(${url('store/open.js')}), import(${url('config/settings.js')})]);
    const [home, storeSetting, n] = process.argv.slice(1);
    const store = await openStore(home, parseSettings('store = ' + storeSetting + '\\n', 'nqqueue.conf'));
    const bytes = Buffer.alloc(10 * 1024, 'x');
    const item = (i) => ({
      id: (1800000000000 + i).toString(36) + i.toString(16).padStart(16, '0'), date: new Date().toISOString(), messageId: 'bench' + i, host: 'mx1.example.com', size: bytes.length,
      sender: { text: 'sender@client.example', base64: Buffer.from('sender@client.example').toString('base64') },
      recipient: { text: 'rcpt@example.com', base64: Buffer.from('rcpt@example.com').toString('base64') },
      owner: 'rcpt@example.com', domain: 'example.com', subject: 'a bench message',
      results: [{ plugin: 'spamassassin', params: '', stage: 'per-user', verdict: 'accept', flagged: true, score: 9, details: {} }],
      caughtBy: ['spamassassin'], routing: { user: { file: '/var/qmail/control/nqqueue.cfb', line: 1 } },
    });
    for (let i = 0; i < 20; i++) await store.addItem(item(1e6 + i), store.shared ? bytes : undefined);
    const ms = [];
    for (let i = 0; i < Number(n); i++) {
      const t = performance.now();
      await store.addItem(item(i), store.shared ? bytes : undefined);
      ms.push(performance.now() - t);
    }
    await store.close();
    ms.sort((a, b) => a - b);
    process.stdout.write(JSON.stringify({ median: ms[Math.floor((ms.length - 1) / 2)], p95: ms[Math.floor(ms.length * 0.95)] }));`;
}

/** `h`: { node, root, helper } — helper(name) imports a compiled test helper (the PostgreSQL cluster). */
export async function storeRow(h) {
  const row = { node: h.node.key, items: STORE_ITEMS };
  const script = childScript(h.root);
  const run = (home, setting) => {
    const r = spawnSync(h.node.bin, ['--no-warnings', '--input-type=module', '-e', script, home, setting, String(STORE_ITEMS)], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`the store timing failed (${r.status}): ${r.stderr}`);
    return JSON.parse(r.stdout);
  };
  const dir = mkdtempSync(join(tmpdir(), 'nqq-bench-store-'));
  try {
    row.sqlite = run(join(dir, 'home'), 'sqlite');
    const { postgresBin, startPostgres } = await h.helper('postgres');
    if (postgresBin()) {
      const pg = await startPostgres({ durable: true });
      try {
        row.postgres = run(join(dir, 'home-pg'), pg.url(pg.createDatabase()));
      } finally {
        await pg.stop();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return row;
}

export function storeTable(rows, label, fmt) {
  if (!rows.length) return [];
  const L = ['', `The store: the time a quarantined message spends in it (its index entry, and on PostgreSQL its 10 KB of bytes too), median and p95 of ${STORE_ITEMS}, ms:`, ''];
  L.push('| | SQLite (WAL, synchronous=FULL) | PostgreSQL (Unix socket, fsync on) |');
  L.push('|---|---:|---:|');
  for (const r of rows) {
    const cell = (x) => (x ? `${fmt(x.median)} (p95 ${fmt(x.p95)})` : 'not measured');
    L.push(`| ${label(r.node)} | ${cell(r.sqlite)} | ${cell(r.postgres)} |`);
  }
  return L;
}
