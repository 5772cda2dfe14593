// The lists row of `npm run bench`: what a store holding 100,000 allow/block entries adds to a message,
// against the same installation with an empty store. Both run `:lists` per recipient; the lists are
// filled through `nqqueue lists import` (the path an administrator uses). The figure is the lists
// plugin's own time as the pipeline measures it (the log line's `lists:accept:Xms`): the difference of
// the medians is what the 100,000 entries add. The sender and client of the bench messages match no
// entry, so every key is looked up (address, domain and each parent, the client's IP under every prefix
// length the lists use) and nothing ends the chain early.

import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

export const LISTS_ENTRIES = 100_000;
export const LISTS_TARGET_MS = 0.2;

/** 100,000 entries in the export format: user, domain and global lists, addresses, domains, networks. */
export function listsFile(n = LISTS_ENTRIES) {
  const lines = ['# nqqueue lists export: scope\towner\taction\tvalue\tskip\tnote'];
  let i = 0;
  const push = (scope, owner, action, value) => {
    if (i++ < n) lines.push([scope, owner, action, value, '-', ''].join('\t'));
  };
  // 60,000 addresses in 1,000 users' lists (d01@example.com, the bench's recipient, has some too).
  for (let u = 0; u < 1000; u++) {
    const owner = u === 0 ? 'd01@example.com' : `user${u}@example.com`;
    for (let k = 0; k < 60; k++) push('user', owner, k % 3 ? 'allow' : 'block', `sender${k}@partner${u % 97}.example`);
  }
  // 10,000 domains in 100 domains' lists.
  for (let d = 0; d < 100; d++) for (let k = 0; k < 100; k++) push('domain', d === 0 ? 'example.com' : `dom${d}.example`, k % 2 ? 'allow' : 'block', `${k % 2 ? '' : '.'}site${k}.org${d}.example`);
  // 20,000 global domains, 10,000 global networks over 17 IPv4 and 5 IPv6 prefix lengths.
  for (let k = 0; k < 20_000; k++) push('global', '-', 'block', `${k % 2 ? '.' : ''}spam${k}.example`);
  for (let k = 0; k < 8_500; k++) {
    const prefix = 16 + (k % 17);
    // 10.0.0.0 plus k in the network bits: every (network, prefix) different, host bits zero.
    const net = ((10 << 24) + k * 2 ** (32 - prefix)) >>> 0;
    push('global', '-', 'block', `${[24, 16, 8, 0].map((s) => (net >>> s) & 255).join('.')}/${prefix}`);
  }
  for (let k = 0; i < n; k++) push('global', '-', 'block', `2001:db8:${(k % 65536).toString(16)}:${Math.floor(k / 65536).toString(16)}::/${[48, 56, 64, 64, 64][k % 5]}`);
  return `${lines.join('\n')}\n`;
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)] : undefined;
}

/**
 * The row: for an empty store and a store of 100,000 entries, in each mode, the lists plugin's median
 * time and the message's; `addsMs` the difference of the plugin's medians.
 * `h` is what the bench gives: makeInstall, deliver, startServe, the binaries and the message maker.
 */
export async function listsRow(h) {
  const file = join(h.work, 'lists-100k.tsv');
  writeFileSync(file, listsFile());
  const installs = {};
  for (const size of ['empty', 'full']) {
    const inst = h.makeInstall(`lists-${size}`, { 'nqqueue.cfb': ':lists\n' });
    const r = spawnSync(h.NQQUEUE_BIN, ['lists', 'import', '--format', 'nqqueue', size === 'full' ? file : '/dev/null'], { env: { ...inst.paths }, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`nqqueue lists import failed (${r.status}): ${r.stderr}`);
    installs[size] = inst;
  }
  const row = { node: h.node.key, entries: LISTS_ENTRIES, lookup: await lookupTimes(h, installs) };
  for (const mode of h.daemonAvailable ? ['standalone', 'daemon'] : ['standalone']) {
    const m = {};
    for (const size of ['empty', 'full']) {
      const inst = installs[size];
      const serve = mode === 'daemon' ? await h.startServe(inst, h.node) : undefined;
      try {
        const bin = mode === 'daemon' ? h.QQ_BIN : h.NQQUEUE_BIN;
        const plugin = [];
        const total = [];
        let fails = 0;
        for (let i = 0; i < h.warm + h.n; i++) {
          const r = await h.deliver(inst, h.node, bin, ['d01@example.com'], h.message());
          const ms = /lists:accept:([\d.]+)ms/.exec(r.stderr);
          if (r.code !== 0 || !ms) {
            fails++;
            continue;
          }
          if (i < h.warm) continue;
          plugin.push(Number(ms[1]));
          total.push(r.ms);
        }
        m[size] = { pluginMedian: median(plugin), messageMedian: median(total), n: plugin.length, fails };
      } finally {
        await serve?.stop();
      }
    }
    m.addsMs = m.empty.pluginMedian !== undefined && m.full.pluginMedian !== undefined ? Math.round((m.full.pluginMedian - m.empty.pluginMedian) * 100) / 100 : undefined;
    row[mode] = m;
  }
  return row;
}

/**
 * The store's lookup alone (what the daemon does per recipient, without the noise of a whole message):
 * the mean of many matchListEntries calls for the bench's sender, client and recipient, in a child on
 * the Node.js NQqueue runs on (node:sqlite).
 */
async function lookupTimes(h, installs) {
  const script = `
    const [{ openStore }, { defaultSettings }] = await Promise.all([import(${JSON.stringify(pathToFileURL(join(h.root, 'dist', 'store', 'open.js')).href)}), import(${JSON.stringify(pathToFileURL(join(h.root, 'dist', 'config', 'settings.js')).href)})]);
    const probe = { sender: 'sender@client.example', ip: '192.0.2.7', holders: [{ scope: 'user', owner: 'd01@example.com' }, { scope: 'domain', owner: 'example.com' }, { scope: 'global', owner: '' }] };
    const store = await openStore(process.argv[1], defaultSettings());
    for (let i = 0; i < 200; i++) await store.matchListEntries(probe);
    const n = 5000;
    const t = performance.now();
    for (let i = 0; i < n; i++) await store.matchListEntries(probe);
    process.stdout.write(String((performance.now() - t) / n));
    await store.close();`;
  const out = {};
  for (const [size, inst] of Object.entries(installs)) {
    const r = spawnSync(h.node.bin, ['--no-warnings', '--input-type=module', '-e', script, inst.home], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`the lookup timing failed (${r.status}): ${r.stderr}`);
    out[size] = Math.round(Number(r.stdout) * 1000) / 1000;
  }
  out.addsMs = Math.round((out.full - out.empty) * 1000) / 1000;
  return out;
}

/** The table lines of the rows. */
export function listsTable(rows, label, fmt) {
  if (!rows.length) return [];
  const L = ['', `Lists: a store of ${LISTS_ENTRIES.toLocaleString('en')} allow/block entries against an empty one, \`:lists\` for one recipient (the lists plugin's own median time, ms; the message's median in brackets):`, ''];
  L.push('| | mode | empty store | 100,000 entries | added by the entries |');
  L.push('|---|---|---:|---:|---:|');
  for (const r of rows) {
    for (const mode of ['standalone', 'daemon']) {
      const m = r[mode];
      if (!m) continue;
      L.push(`| ${label(r.node)} | ${mode} | ${fmt(m.empty.pluginMedian)} (${fmt(m.empty.messageMedian)}) | ${fmt(m.full.pluginMedian)} (${fmt(m.full.messageMedian)}) | ${m.addsMs === undefined ? '—' : m.addsMs.toFixed(2)} |`);
    }
  }
  for (const r of rows) {
    L.push(`| ${label(r.node)} | the store's lookup alone (mean of 5,000) | ${r.lookup.empty.toFixed(3)} | ${r.lookup.full.toFixed(3)} | ${r.lookup.addsMs.toFixed(3)} |`);
  }
  return L;
}
