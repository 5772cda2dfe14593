// The fildes row of `npm run bench`: a 50 MB message (spilled to a file) scanned by clamav in daemon
// mode, handed to clamd as its open file (`[clamav] fildes = yes`, FILDES) against streamed to it
// (`fildes = no`, INSTREAM): the message's time and the peak RSS of `nqqueue serve`. Each run has a
// freshly started daemon (VmHWM is its peak over that one message), warmed up by a small message first;
// the two methods alternate run by run, so they are measured side by side. Wall times on a loaded
// machine are dominated by clamd's scan, so the row also counts, over the one message, the CPU time
// and the bytes read and written (/proc/PID/stat, /proc/PID/io) of `nqqueue serve` and of clamd: the
// copy FILDES removes is there.

import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';

const METHODS = ['fildes', 'instream'];

/** CPU ms (user + system) and bytes read/written through system calls of a process, or undefined. */
function usage(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of stat(5), in clock ticks (100 a second on Linux).
    const cpuMs = (Number(f[11]) + Number(f[12])) * 10;
    const io = readFileSync(`/proc/${pid}/io`, 'utf8');
    const num = (k) => Number(new RegExp(`^${k}: (\\d+)`, 'm').exec(io)?.[1]);
    return { cpuMs, rchar: num('rchar'), wchar: num('wchar') };
  } catch {
    return undefined;
  }
}
const delta = (a, b) => (a && b ? { cpuMs: b.cpuMs - a.cpuMs, ioMB: (b.rchar - a.rchar + b.wchar - a.wchar) / 1e6, writtenMB: (b.wchar - a.wchar) / 1e6 } : undefined);

const median = (xs) => {
  const s = xs.filter((x) => x !== undefined).sort((a, b) => a - b);
  if (s.length === 0) return undefined;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** A plain-text message of about `bytes` (random lines) ending in the EICAR string: to see which method scanned it. */
function eicarMessage(bytes, eicar) {
  const head = `From: <sender@client.example>\nTo: <d01@example.com>\nSubject: fildes check\nMessage-ID: <${randomBytes(8).toString('hex')}@bench>\n\n`;
  const body = randomBytes(Math.ceil((bytes * 3) / 4)).toString('base64').replace(/.{76}/g, '$&\n');
  return Buffer.from(`${head}${body}\n${eicar.toString('latin1')}\n`, 'latin1');
}

/**
 * `h`: { node, makeInstall, startServe, deliver, clearFloor, procStatusKB, QQ_BIN, clamdSocket,
 * bigMessage(bytes) → Buffer, smallMessage() → Buffer, eicar: Buffer, bytes, rounds }.
 * Returns the row: per method the runs' medians, and the differences.
 */
export async function fildesRow(h) {
  const installs = {};
  for (const m of METHODS) {
    installs[m] = h.makeInstall(`fildes-${m}`, {
      'nqqueue.conf': `[clamav]\nsocket = ${h.clamdSocket}\nfildes = ${m === 'fildes' ? 'yes' : 'no'}\n`,
      'general.cfb': ':clamav\n',
    });
  }
  const runs = { fildes: [], instream: [] };
  for (let round = 0; round < h.rounds; round++) {
    for (const m of round % 2 === 0 ? METHODS : [...METHODS].reverse()) {
      const inst = installs[m];
      const serve = await h.startServe(inst, h.node);
      try {
        const warm = await h.deliver(inst, h.node, h.QQ_BIN, ['d01@example.com'], h.smallMessage());
        if (warm.code !== 0) throw new Error(`warm-up message: exit ${warm.code} ${warm.stderr.slice(0, 300)}`);
        const startKB = h.procStatusKB(serve.pid, 'VmRSS');
        // A new message each run: clamd caches the hashes of clean files.
        const message = h.bigMessage(h.bytes);
        const before = { serve: usage(serve.pid), clamd: usage(h.clamdPid) };
        const r = await h.deliver(inst, h.node, h.QQ_BIN, ['d01@example.com'], message, { timeoutMs: 180_000 });
        const hwmKB = h.procStatusKB(serve.pid, 'VmHWM');
        const serveUse = delta(before.serve, usage(serve.pid));
        const clamdUse = delta(before.clamd, usage(h.clamdPid));
        const clamavMs = /general=clamav:accept:([\d.]+)ms/.exec(r.stderr);
        if (r.code !== 0 || !clamavMs || !/ via=daemon/.test(r.stderr)) throw new Error(`${m}: exit ${r.code} ${r.stderr.slice(0, 300)}`);
        // Which method the daemon used: a spilled EICAR message's log line says (via=).
        const check = await h.deliver(inst, h.node, h.QQ_BIN, ['d01@example.com'], eicarMessage(1_500_000, h.eicar));
        const via = / via=(fildes|instream)/.exec(check.stderr)?.[1];
        if (via !== m) throw new Error(`${m}: the check message was scanned via ${via ?? '?'} (exit ${check.code}) ${check.stderr.slice(0, 300)}`);
        runs[m].push({ ms: r.ms, clamavMs: Number(clamavMs[1]), startKB, hwmKB, serve: serveUse, clamd: clamdUse });
      } finally {
        await serve.stop();
        h.clearFloor(inst.floor);
      }
    }
  }
  const row = { node: h.node.key, bytes: h.bytes, rounds: h.rounds };
  for (const m of METHODS) {
    const rs = runs[m];
    row[m] = {
      runs: rs,
      ms: median(rs.map((x) => x.ms)),
      clamavMs: median(rs.map((x) => x.clamavMs)),
      startKB: median(rs.map((x) => x.startKB)),
      hwmKB: median(rs.map((x) => x.hwmKB)),
      serveCpuMs: median(rs.map((x) => x.serve?.cpuMs)),
      serveIoMB: median(rs.map((x) => x.serve?.ioMB)),
      clamdCpuMs: median(rs.map((x) => x.clamd?.cpuMs)),
      clamdWrittenMB: median(rs.map((x) => x.clamd?.writtenMB)),
    };
  }
  row.msSaved = row.instream.ms - row.fildes.ms;
  row.clamavRatio = row.fildes.clamavMs / row.instream.clamavMs;
  row.hwmSavedKB = row.instream.hwmKB - row.fildes.hwmKB;
  row.serveCpuSavedMs = row.instream.serveCpuMs - row.fildes.serveCpuMs;
  row.clamdCpuSavedMs = row.instream.clamdCpuMs - row.fildes.clamdCpuMs;
  return row;
}

/** The table lines of the rows (`label(nodeKey)`, `fmt(x, digits)` from the bench). */
export function fildesTable(rows, label, fmt) {
  if (!rows.length) return [];
  const mb = (kb) => (kb === undefined ? '—' : (kb / 1024).toFixed(0));
  const L = [
    '',
    `FILDES: a ${(rows[0].bytes / 1e6).toFixed(0)} MB message (spilled to a file) scanned by \`:clamav\` in daemon mode, handed to clamd as its open file (\`fildes = yes\`) or streamed (\`fildes = no\`, INSTREAM); medians of ${rows[0].rounds} runs each, a fresh \`nqqueue serve\` per run:`,
    '',
  ];
  L.push('| | clamd gets | message, ms | clamav plugin, ms | `nqqueue serve` peak RSS, MB (at start) | serve CPU, ms | serve read+written, MB | clamd CPU, ms | clamd written, MB |');
  L.push('|---|---|---:|---:|---:|---:|---:|---:|---:|');
  const cells = (x) => `${fmt(x.ms, 0)} | ${fmt(x.clamavMs, 0)} | ${mb(x.hwmKB)} (${mb(x.startKB)}) | ${fmt(x.serveCpuMs, 0)} | ${fmt(x.serveIoMB, 0)} | ${fmt(x.clamdCpuMs, 0)} | ${fmt(x.clamdWrittenMB, 0)}`;
  for (const r of rows) {
    L.push(`| ${label(r.node)} | the file (FILDES) | ${cells(r.fildes)} |`);
    L.push(`| ${label(r.node)} | the bytes (INSTREAM) | ${cells(r.instream)} |`);
    L.push(
      `| ${label(r.node)} | FILDES saves | ${fmt(r.msSaved, 0)} | ×${fmt(r.clamavRatio, 2)} | ${mb(r.hwmSavedKB)} | ${fmt(r.serveCpuSavedMs, 0)} | ${fmt(r.instream.serveIoMB - r.fildes.serveIoMB, 0)} | ${fmt(r.clamdCpuSavedMs, 0)} | ${fmt(r.instream.clamdWrittenMB - r.fildes.clamdWrittenMB, 0)} |`,
    );
  }
  return L;
}
