// The pipeline row of `npm run bench`: NQqueue's own work on a message, in one process, without processes
// or qmail-queue — the front door both modes share, the general.cfb chain of black, header and attach (and
// a per-user black line), the decision and the delivery into an in-memory sink (bench/pipeline-cost.mjs,
// in a child on the node under test). Figures: messages per second of one event loop, CPU time per
// message (process.cpuUsage), and what one core could do at that cost (10^6 / µs); beside them the same
// loop on an installation with no plugins, in the same child, in alternating rounds. The top self-time
// functions of V8's CPU profile of one more pass say where the time goes; the whole profile is kept as a
// .cpuprofile (Chrome DevTools, speedscope).

import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

/** Messages per second per core the pipeline must reach with black, header and attach. */
export const PIPELINE_TARGET = 2000;

/**
 * `h`: { node, root, quick }. Runs the child, keeps its profile in bench-results/, and returns the row:
 * the child's figures (by installation, by messages in flight) with perCore and met added.
 */
export function pipelineRow(h) {
  const n = h.quick ? 300 : 2000;
  const dir = join(h.root, 'bench-results');
  mkdirSync(dir, { recursive: true });
  const profile = join(dir, `pipeline-${h.node.key}.cpuprofile`);
  // node as bin/nqqueue runs it (a young generation of 1 MB).
  const r = spawnSync(h.node.bin, ['--max-semi-space-size=1', join(h.root, 'bench', 'pipeline-cost.mjs'), join(h.root, 'dist'), String(n), profile], { encoding: 'utf8', timeout: 600_000 });
  if (r.status !== 0) throw new Error(`bench/pipeline-cost.mjs failed (${r.status ?? r.signal}): ${r.stderr.slice(0, 800)}`);
  const out = JSON.parse(r.stdout.trim().split('\n').pop());
  const row = { node: h.node.key, ...out, profileFile: profile };
  for (const name of ['plugins', 'none']) for (const m of Object.values(row[name])) m.perCore = 1e6 / m.cpuUsPerMsg;
  row.addedUs = Object.fromEntries(Object.keys(row.plugins).map((k) => [k, row.plugins[k].cpuUsPerMsg - row.none[k].cpuUsPerMsg]));
  // Judged on one message at a time: a single event loop with nothing to overlap.
  row.met = row.plugins[1].perCore >= PIPELINE_TARGET;
  return row;
}

/** The judge()'s figure of a row. */
export function pipelineFigure(row, fmt) {
  const one = row.plugins[1];
  const more = row.plugins[row.inflight];
  return `${fmt(one.perCore, 0)} msg/s per core (${fmt(one.cpuUsPerMsg, 0)} µs CPU per message, one at a time; ${fmt(more.perCore, 0)} with ${row.inflight} in flight); no plugins ${fmt(row.none[1].cpuUsPerMsg, 0)} µs`;
}

/** The table lines of the rows. */
export function pipelineTable(rows, label, fmt) {
  if (!rows.length) return [];
  const L = [
    '',
    `NQqueue's own pipeline in one process (bench/pipeline-cost.mjs): 10 KB messages, each different, one recipient, into an in-memory sink; general.cfb \`black;header;header;attach\` and a per-user \`black\` line, against an empty routing (median of ${rows[0].rounds} alternating rounds of ${rows[0].n}):`,
    '',
    `| | in flight | msg/s | µs CPU per message | msg/s per core | no plugins: µs CPU | the plugins add, µs | ≥ ${PIPELINE_TARGET.toLocaleString('en')}/core |`,
    '|---|---:|---:|---:|---:|---:|---:|---|',
  ];
  for (const r of rows) {
    for (const k of Object.keys(r.plugins)) {
      const p = r.plugins[k];
      const met = p.perCore >= PIPELINE_TARGET ? 'yes' : '**no**';
      L.push(`| ${label(r.node)} | ${k} | ${fmt(p.msgPerS, 0)} | ${fmt(p.cpuUsPerMsg, 0)} | ${fmt(p.perCore, 0)} | ${fmt(r.none[k].cpuUsPerMsg, 0)} | ${fmt(r.addedUs[k], 0)} | ${met} |`);
    }
  }
  for (const r of rows) {
    L.push('');
    L.push(`${label(r.node)}, where the time goes (V8 CPU profile of ${r.n} more messages one at a time, self time, top 10 of ${fmt(r.profile.totalMs, 0)} ms; \`${r.profileFile.replace(/^.*\/bench-results\//, 'bench-results/')}\`):`);
    L.push('');
    L.push(r.profile.top.map((t) => `\`${t.fn}\` ${t.share}%`).join(', '));
  }
  return L;
}
