// The memory rows of `npm run bench`: what `nqqueue serve` holds when it waits for mail, and at its peak
// with 64 messages of 1 MB in flight at once. The daemon runs as an administrator runs it (bin/nqqueue
// serve, through the launcher, with the node under test as NQQUEUE_NODE), started fresh for each row.
//
// - Idle: VmRSS of /proc/<pid>/status once the socket answers and the daemon has settled (2 s), and
//   again after 20 messages of 10 KB went through it and it settled again: what a site pays for a daemon
//   that waits. The target is the larger of the two.
// - In flight: 64 clients (bin/nqqueue-qq, each with its own 1 MB message, different in every line)
//   started at once, with clamav in the general chain when clamd runs (so each message is held while
//   clamd scans it, as at a site), and the daemon's VmHWM afterwards. Every message must be accepted and
//   reach the floor once.

import { setTimeout as sleep } from 'node:timers/promises';
import { readFileSync } from 'node:fs';

export const MEMORY_TARGETS = { idleMB: 64, inFlightMB: 128, inFlight: 64, messageBytes: 1024 * 1024 };

function statusKB(pid, field) {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(m[1]);
}

/**
 * `h`: { node, makeInstall, startServe, deliver, QQ_BIN, message(kind, bytes) → { buf }, clamdSocket?,
 * floorFiles(floor) }.
 */
export async function memoryRow(h) {
  const row = { node: h.node.key };
  // Idle: a fresh daemon with an empty configuration.
  const idleInst = h.makeInstall(`memory-idle-${h.node.key}`, {});
  let serve = await h.startServe(idleInst, h.node);
  try {
    await sleep(2000);
    row.idleStartKB = statusKB(serve.pid, 'VmRSS');
    for (let i = 0; i < 20; i++) {
      const r = await h.deliver(idleInst, h.node, h.QQ_BIN, ['d01@example.com'], h.message('idle', 10 * 1024).buf);
      if (r.code !== 0) throw new Error(`idle row: exit ${r.code}: ${r.stderr.slice(0, 300)}`);
    }
    await sleep(2000);
    row.idleAfterKB = statusKB(serve.pid, 'VmRSS');
  } finally {
    await serve.stop();
  }

  // In flight: 64 messages of 1 MB at once.
  const files = h.clamdSocket ? { 'general.cfb': ':clamav\n', 'nqqueue.conf': `[clamav]\nsocket = ${h.clamdSocket}\n` } : {};
  row.inFlightPlugins = h.clamdSocket ? 'clamav' : 'none (clamd is not running)';
  const inst = h.makeInstall(`memory-inflight-${h.node.key}`, files);
  serve = await h.startServe(inst, h.node);
  try {
    const messages = Array.from({ length: MEMORY_TARGETS.inFlight }, () => h.message('inflight', MEMORY_TARGETS.messageBytes).buf);
    const before = statusKB(serve.pid, 'VmRSS');
    const started = performance.now();
    const runs = await Promise.all(messages.map((m) => h.deliver(inst, h.node, h.QQ_BIN, ['d01@example.com'], m, { timeoutMs: 120_000 })));
    row.inFlightSeconds = Math.round(performance.now() - started) / 1000;
    const failed = runs.filter((r) => r.code !== 0);
    if (failed.length) throw new Error(`in flight: ${failed.length} of ${runs.length} not accepted (${failed[0].code}: ${failed[0].stderr.slice(0, 300)})`);
    const delivered = h.floorFiles(inst.floor).length;
    if (delivered !== runs.length) throw new Error(`in flight: ${delivered} deliveries for ${runs.length} accepted messages`);
    row.inFlightBeforeKB = before;
    row.inFlightPeakKB = statusKB(serve.pid, 'VmHWM');
  } finally {
    await serve.stop();
  }
  return row;
}

const mb = (kb) => (kb === undefined ? undefined : Math.round(kb / 102.4) / 10);

/** The targets, for judge(): [name, met, figure] per row. */
export function memoryTargets(row) {
  const idle = Math.max(row.idleStartKB, row.idleAfterKB);
  return [
    [`an idle daemon at most ${MEMORY_TARGETS.idleMB} MB RSS`, mb(idle) <= MEMORY_TARGETS.idleMB, `${mb(row.idleStartKB)} MB after start, ${mb(row.idleAfterKB)} MB after 20 messages (VmRSS of nqqueue serve, settled 2 s)`],
    [
      `${MEMORY_TARGETS.inFlight} messages of 1 MB in flight: at most ${MEMORY_TARGETS.inFlightMB} MB peak RSS`,
      mb(row.inFlightPeakKB) <= MEMORY_TARGETS.inFlightMB,
      `${mb(row.inFlightPeakKB)} MB peak (VmHWM of nqqueue serve; ${mb(row.inFlightBeforeKB)} MB before; plugins: ${row.inFlightPlugins}; all ${MEMORY_TARGETS.inFlight} accepted in ${row.inFlightSeconds} s)`,
    ],
  ];
}

export function memoryTable(rows, label, fmt) {
  if (!rows.length) return [];
  const L = ['', `nqqueue serve's memory (MB): waiting for mail, and with ${MEMORY_TARGETS.inFlight} messages of 1 MB in flight at once:`, ''];
  L.push('| | idle after start (VmRSS) | idle after 20 messages (VmRSS) | before the burst | peak with 64 × 1 MB in flight (VmHWM) | plugins |');
  L.push('|---|---:|---:|---:|---:|---|');
  for (const r of rows) L.push(`| ${label(r.node)} | ${fmt(mb(r.idleStartKB))} | ${fmt(mb(r.idleAfterKB))} | ${fmt(mb(r.inFlightBeforeKB))} | **${fmt(mb(r.inFlightPeakKB))}** | ${r.inFlightPlugins} |`);
  return L;
}
