// The client row of `npm run bench`: what bin/nqqueue-qq itself costs qmail-smtpd, apart from any
// daemon work. Three programs side by side, each run the way qmail-smtpd runs it (bench/smtpd.c), in rounds
// so the machine's load falls on all three alike:
//
// - /bin/true: a process that reads nothing and exits 0 (the cost of a fork and exec from the harness);
// - nqqueue-qq with a daemon that answers at once (test/qq/fake-daemon.ts: it reads the whole message
//   and envelope as `nqqueue serve` does, then answers 0): the client's own work — start, connect,
//   sending a 10 KB message and the envelope, reading the answer;
// - nqqueue-qq with no daemon and a copy of /bin/true as the standalone program it falls back to: the
//   fallback path (the failed connect, then exec);
// - when the build linked the client against musl (musl-gcc installed), the same source linked against
//   glibc as a static PIE (scripts/build-qq.js --cc), with the same daemon: what musl's start-up saves.
//
// The target is that both stay far below what a JavaScript runtime costs to start (~20-60 ms): the
// client must never be the reason to prefer standalone mode.

import { spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

export const QQ_TARGET_MS = 2;

/** `h`: { root, run (one program through bench/smtpd.c: scripts/bench-smtpd.js), envelopeOf, message() → Buffer, n }. */
export async function qqRow(h) {
  const fake = await import(pathToFileURL(join(h.root, 'dist-test', 'test', 'qq', 'fake-daemon.js')).href);
  const withDaemon = fake.makeInstall();
  const noDaemon = fake.makeInstall();
  const daemon = await fake.startFakeDaemon(withDaemon.home, { kind: 'reply', code: 0 });
  copyFileSync('/bin/true', join(noDaemon.dir, 'bin', 'nqqueue'));
  const envelope = h.envelopeOf('sender@client.example', ['d01@example.com']);
  const programs = [
    ['/bin/true', '/bin/true', {}],
    ['nqqueue-qq + daemon', withDaemon.qq, { NQQUEUE_HOME: withDaemon.home }],
    ['nqqueue-qq fallback', noDaemon.qq, { NQQUEUE_HOME: noDaemon.home }],
  ];
  // glibc's static code names itself in its messages ("Fatal glibc error: ..."); musl's has no such word.
  const musl = !readFileSync(withDaemon.qq).includes('glibc');
  let glibcError;
  if (musl) {
    const glibc = join(withDaemon.dir, 'bin', 'nqqueue-qq-glibc');
    const b = spawnSync(process.execPath, [join(h.root, 'scripts', 'build-qq.js'), '--cc', glibc], { encoding: 'utf8' });
    if (b.status === 0) programs.push(['nqqueue-qq (glibc) + daemon', glibc, { NQQUEUE_HOME: withDaemon.home }]);
    else glibcError = `${b.error?.message ?? b.stderr}`.trim().split('\n').pop();
  }
  const ms = programs.map(() => []);
  try {
    for (let round = 0; round < h.n + 3; round++) {
      const message = h.message();
      for (const [i, [name, bin, env]] of programs.entries()) {
        const r = await h.run({ bin, message, envelope, env });
        if (r.code !== 0) throw new Error(`${name}: exit ${r.code}: ${r.stderr.slice(0, 300)}`);
        if (round >= 3) ms[i].push(r.ms);
      }
    }
  } finally {
    await daemon.close?.();
    withDaemon.cleanup();
    noDaemon.cleanup();
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const [bare, qq, fallback, glibc] = ms.map(median);
  // What musl saves, message by message (each glibc run beside the musl one of its round).
  const saved = glibc === undefined ? undefined : median(ms[3].map((g, i) => g - ms[1][i]));
  return { n: ms[0].length, libc: musl ? 'musl' : 'glibc', bareMs: bare, qqMs: qq, fallbackMs: fallback, qqOverMs: qq - bare, fallbackOverMs: fallback - bare, glibcMs: glibc, muslSavesMs: saved, glibcError };
}

export function qqTargets(row, fmt) {
  return [
    [`nqqueue-qq, a daemon that answers at once: at most +${QQ_TARGET_MS} ms over /bin/true`, row.qqOverMs <= QQ_TARGET_MS, `+${fmt(row.qqOverMs, 2)} ms (medians of ${row.n}: ${fmt(row.qqMs, 2)} vs ${fmt(row.bareMs, 2)} ms)`],
    [`nqqueue-qq, no daemon (exec of the standalone program): at most +${QQ_TARGET_MS} ms over /bin/true`, row.fallbackOverMs <= QQ_TARGET_MS, `+${fmt(row.fallbackOverMs, 2)} ms over /bin/true, the standalone program being a copy of /bin/true (medians ${fmt(row.fallbackMs, 2)} vs ${fmt(row.bareMs, 2)} ms)`],
  ];
}

export function qqTable(rows, label, fmt) {
  if (!rows.length) return [];
  const L = ['', 'The daemon-mode client alone, 10 KB, median ms (side by side in rounds):', ''];
  L.push('| | /bin/true | nqqueue-qq + a daemon that answers at once | over /bin/true | nqqueue-qq, no daemon, falling back to a copy of /bin/true | over /bin/true |');
  L.push('|---|---:|---:|---:|---:|---:|');
  for (const r of rows) L.push(`| ${label(r.node)} | ${fmt(r.bareMs, 2)} | ${fmt(r.qqMs, 2)} | **+${fmt(r.qqOverMs, 2)}** | ${fmt(r.fallbackMs, 2)} | **+${fmt(r.fallbackOverMs, 2)}** |`);
  const withGlibc = rows.filter((r) => r.glibcMs !== undefined);
  if (withGlibc.length) {
    L.push('', 'The client as built links musl statically; the same source linked against glibc (static PIE, `scripts/build-qq.js --cc`) beside it, with the same daemon, median ms:', '');
    L.push('| | nqqueue-qq (musl) + the daemon | nqqueue-qq (glibc) + the daemon | musl saves (median of each round\'s difference) |');
    L.push('|---|---:|---:|---:|');
    for (const r of withGlibc) L.push(`| ${label(r.node)} | ${fmt(r.qqMs, 2)} | ${fmt(r.glibcMs, 2)} | **${fmt(r.muslSavesMs, 2)}** |`);
  } else if (rows[0]?.libc === 'glibc') {
    L.push('', 'The client as built links glibc (no `musl-gcc` here).');
  } else if (rows[0]?.glibcError) {
    L.push('', `The client as built links musl; the glibc build to time beside it failed: ${rows[0].glibcError}`);
  }
  return L;
}
