// Acting on the plan: one qmail-queue call per group; a failure after an earlier success goes to the
// retry spool (exit 0), a failure of the first call is the exit code (nothing was queued). The
// message's deadline bounds the calls: past it the copies left are spooled.

import { performance } from 'node:perf_hooks';

import { describeError } from '../errors.js';
import { encodeEnvelope } from '../qmail/envelope.js';
import type { DeliveryGroup } from '../pipeline/run.js';
import type { QueueResult, QueueSink } from './qmail-queue.js';
import type { Spool } from './spool.js';

export interface DeliveryReport {
  /** 0, qmail-queue's own code (first call failed), or 71 (the spool could not be written either). */
  readonly exit: number;
  /** What happened to each group, in order: 'queued', 'spooled', 'failed: ...'. */
  /** `pid`: the qmail-queue process that took the group, when one was started. */
  readonly groups: readonly { recipients: number; outcome: string; pid?: number }[];
  readonly reason?: string;
  /** Each qmail-queue call made: how long it took and whether it took the copy (for the metrics). */
  readonly calls: readonly { readonly ms: number; readonly ok: boolean }[];
}

/**
 * `deadline` (a Date.now() time) covers delivery too: each qmail-queue call is stopped at it, and past
 * it copies not yet queued go to the retry spool — unless none was queued yet: then the message is
 * deferred (71), which duplicates nothing.
 */
export async function deliverGroups(
  groups: readonly DeliveryGroup[],
  sender: Buffer,
  sink: QueueSink,
  spool: Spool,
  deadline = Infinity,
): Promise<DeliveryReport> {
  const report: { recipients: number; outcome: string; pid?: number }[] = [];
  let queued = 0;
  const calls: { ms: number; ok: boolean }[] = [];
  for (let i = 0; i < groups.length; i++) {
    const g = groups[i]!;
    const envelope = encodeEnvelope(sender, g.recipients.map((r) => r.raw));
    const left = deadline - Date.now();
    let r: QueueResult;
    if (left > 0) {
      const started = performance.now();
      r = await sink.deliver(g.message, envelope, Number.isFinite(left) ? left : undefined);
      calls.push({ ms: performance.now() - started, ok: r.ok });
    } else {
      r = { ok: false, code: 71, reason: 'the message deadline passed before this copy was queued' };
    }
    if (r.ok) {
      queued++;
      report.push({ recipients: g.recipients.length, outcome: 'queued', pid: r.pid });
      continue;
    }
    if (queued === 0) {
      report.push({ recipients: g.recipients.length, outcome: `failed: ${r.reason}`, pid: r.pid });
      return { exit: r.code, groups: report, reason: r.reason, calls };
    }
    // Earlier copies are queued: a deferral now would make the client send them again. Keep the rest.
    const spooled: string[] = [];
    for (let j = i; j < groups.length; j++) {
      const rest = groups[j]!;
      const env = j === i ? envelope : encodeEnvelope(sender, rest.recipients.map((x) => x.raw));
      try {
        const name = await spool.put(rest.message, env, j === i ? r.reason : 'after an earlier failure');
        spooled.push(name);
        report.push({ recipients: rest.recipients.length, outcome: `spooled ${name}` });
      } catch (err) {
        // A duplicate is better than a loss: defer the whole message, and take back what this run
        // spooled so the client's retry is the only copy of those.
        for (const name of spooled) spool.remove(name);
        const reason = `${r.reason}; retry spool failed: ${describeError(err)}`;
        report.push({ recipients: rest.recipients.length, outcome: `failed: ${reason}` });
        return { exit: 71, groups: report, reason, calls };
      }
    }
    return { exit: 0, groups: report, reason: r.reason, calls };
  }
  return { exit: 0, groups: report, calls };
}
