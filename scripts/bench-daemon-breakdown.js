// The breakdown row of `npm run bench`: where a daemon-mode message's time goes, no plugins, one
// recipient. nqqueue-qq (NQQUEUE_QQ_TRACE=1) and `nqqueue serve` (NQQUEUE_TRACE=1, its own environment)
// each log the monotonic clock (CLOCK_MONOTONIC, which process.hrtime reads too) at every stage of the
// exchange; both switches are off in every other row. The stages follow one another, so the pieces add
// up to the time the harness measured from spawn to exit; the stand-in alone runs after each message,
// side by side. Medians and means of each piece over the messages (the means add up, the medians need
// not).

/** The `key=NS` pairs of the trace line that starts with `prefix`, as numbers of ms. */
function traceOf(stderr, prefix) {
  const line = stderr.split('\n').find((l) => l.startsWith(`${prefix} trace `));
  if (!line) return undefined;
  const out = {};
  for (const m of line.matchAll(/ (\w+)=(\d+)/g)) out[m[1]] = Number(BigInt(m[2]) / 1000n) / 1000;
  return out;
}

/**
 * Stage by stage: [what, from, to, path], `c.` the client's clock stamps, `d.` the daemon's. A stage of
 * one path only counts 0 in a message of the other: `ahead` when every copy was queued after an answer
 * ahead (the client ends at its `q`, no reply), `reply` when the daemon's reply ended it.
 */
export const STAGES = [
  ['nqqueue-qq: start-up to connected (environment block, memfds, socket)', 'c.start', 'c.connected'],
  ['nqqueue-qq: the early qmail-queue started (NQQUEUE_QQ_EARLY=yes only: about 0 in this row)', 'c.connected', 'c.early'],
  ['nqqueue-qq: the input read and sent to the daemon', 'c.early', 'c.sent'],
  ['daemon: last byte sent → input complete (wake-up, frames, spill buffer, envelope)', 'c.sent', 'd.input'],
  ['daemon: input complete → decision (pipeline, no plugins)', 'd.input', 'd.decided'],
  ['decision → nqqueue-qq has it (L, D, Q records)', 'd.decided', 'c.decided'],
  ['nqqueue-qq: decision → the copy\'s qmail-queue (the early one, or one started now)', 'c.decided', 'c.forked'],
  ['qmail-queue (the stand-in): the copy streamed to it, its exit seen', 'c.forked', 'c.qq_exit'],
  ['its exit → q sent', 'c.qq_exit', 'c.answered'],
  ['answer ahead: q sent → its line ready (no reply waited for)', 'c.answered', 'c.reply', 'ahead'],
  ['q → daemon has the answer (without an answer ahead)', 'c.answered', 'd.answer', 'reply'],
  ['daemon: answer → reply written (log line, metrics, clean-up)', 'd.answer', 'd.reply', 'reply'],
  ['reply → nqqueue-qq has it', 'd.reply', 'c.reply', 'reply'],
  ['nqqueue-qq: the log line to fd 2, to its exit call', 'c.reply', 'c.end'],
];

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : undefined;
};
const mean = (xs) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : undefined);
const r3 = (x) => (x === undefined ? undefined : Math.round(x * 1000) / 1000);

/**
 * `h`: { node, inst (an installation of no plugins, its own: the trace switches are set on it), deliver,
 * startServe, QQ_BIN, n, warm, message() }.
 */
export async function breakdownRow(h) {
  const { inst, node } = h;
  inst.paths.NQQUEUE_TRACE = '1';
  inst.paths.NQQUEUE_QQ_TRACE = '1';
  const serve = await h.startServe(inst, node);
  const samples = [];
  let fails = 0;
  let firstError;
  try {
    for (let i = 0; i < h.warm + h.n; i++) {
      const r = await h.deliver(inst, node, h.QQ_BIN, ['d01@example.com'], h.message());
      const floor = await h.deliver(inst, node, inst.floor.bin, ['d01@example.com'], h.message());
      const c = traceOf(r.stderr, 'nqqueue-qq:');
      const d = traceOf(r.stderr, 'nqqueue:');
      if (r.code !== 0 || floor.code !== 0 || !c || !d) {
        fails++;
        firstError ??= `exit ${r.code} / stand-in ${floor.code}: ${r.stderr.trim().slice(0, 300)}`;
        continue;
      }
      if (i < h.warm) continue;
      const at = (k) => (k.startsWith('c.') ? c[k.slice(2)] : d[k.slice(2)]);
      const path = d.reply === undefined ? 'ahead' : 'reply';
      const pieces = STAGES.map(([, from, to, only]) => (only === undefined || only === path ? at(to) - at(from) : 0));
      samples.push({ total: r.ms, floor: floor.ms, outside: r.ms - (c.end - c.start), pieces, accept: d.accept - c.connected, ahead: path === 'ahead' });
    }
  } finally {
    await serve.stop();
    delete inst.paths.NQQUEUE_TRACE;
    delete inst.paths.NQQUEUE_QQ_TRACE;
  }
  const both = (xs) => ({ median: r3(median(xs)), mean: r3(mean(xs)) });
  return {
    node: node.key,
    n: samples.length,
    fails,
    firstError,
    total: both(samples.map((s) => s.total)),
    floor: both(samples.map((s) => s.floor)),
    over: both(samples.map((s) => s.total - s.floor)),
    outside: both(samples.map((s) => s.outside)),
    accept: both(samples.map((s) => s.accept)),
    ahead: samples.filter((s) => s.ahead).length,
    stages: STAGES.map(([what], i) => ({ what, ...both(samples.map((s) => s.pieces[i])) })),
  };
}

export function breakdownTable(rows, label, fmt) {
  if (!rows.length) return [];
  const f = (x) => (x === undefined ? '—' : fmt(x, 2));
  const L = [
    '',
    'Daemon mode, where the time goes (no plugins, 1 recipient, 10 KB; nqqueue-qq and nqqueue serve log the monotonic clock at each stage): **median / mean ms** per message.',
    '',
  ];
  L.push(`| stage | ${rows.map((r) => `${label(r.node)} (n=${r.n}${r.ahead === undefined ? '' : `, ${r.ahead} ended by an answer ahead`})`).join(' | ')} |`);
  L.push(`|---|${rows.map(() => '---:').join('|')}|`);
  const line = (what, pick) => L.push(`| ${what} | ${rows.map((r) => `${f(pick(r)?.median)} / ${f(pick(r)?.mean)}`).join(' | ')} |`);
  line('outside nqqueue-qq\'s main(): its exec, the C library\'s start-up and its exit, as the harness sees them', (r) => r.outside);
  STAGES.forEach(([what], i) => line(what, (r) => r.stages[i]));
  line('**total**, spawn to exit status (the sum of the above)', (r) => r.total);
  line('the stand-in alone, side by side', (r) => r.floor);
  line('**over the stand-in** (each message − the stand-in run after it)', (r) => r.over);
  line('(overlapping the streaming: connected → the daemon accepted)', (r) => r.accept);
  return L;
}
