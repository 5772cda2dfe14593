// One message, start to finish, with I/O at the edges: run the pipeline under the message deadline,
// decide, deliver or spool, and say what happened in one log line. Used by the one-shot program and
// (later) by the daemon.

import { performance } from 'node:perf_hooks';

import { deliverGroups, type DeliveryReport } from '../delivery/deliver.js';
import type { QueueSink } from '../delivery/qmail-queue.js';
import { describeError, ERRORS, isNqqError, NqqError } from '../errors.js';
import type { Logger } from '../log.js';
import type { MessageFacts, MessageResult, RecipientFate } from '../metrics/record.js';
import { DeadlineError } from '../pipeline/chain.js';
import { newMessageId, runPipeline, type PipelineOutcome } from '../pipeline/run.js';
import type { ClientInfo, Envelope, MessageView, Result } from '../pipeline/types.js';
import { within } from '../within.js';
import { MESSAGE_ID_HEAD, messageIdOf } from './origin.js';
import type { Services } from './services.js';

export interface Refusal {
  readonly kind: 'permanent' | 'temporary';
  readonly text: string;
}

export interface JobResult {
  /** The exit code when no custom channel is used (0, 11, 31, 54, 71, 81, 91 or qmail-queue's). */
  readonly exit: number;
  /** For 31 and 71: the text the sender should see, when a custom channel carries it. */
  readonly refusal?: Refusal;
  readonly fields: Record<string, unknown>;
  /** What the metrics count of it (metrics/record.ts); see jobFacts. */
  readonly facts?: MessageFacts;
}

/**
 * The message as the metrics count it: its result, each recipient's fate (all rejected when the message
 * is refused, all deferred when it is deferred), every plugin run (a scan shared by several recipients
 * once), the qmail-queue calls and the text the sender was given. Without an envelope (it could not
 * be read), only the result.
 */
export function jobFacts(r: JobResult, envelope?: Envelope, outcome?: PipelineOutcome, calls?: DeliveryReport['calls']): MessageFacts {
  const word = r.fields.result;
  const result: MessageResult = word === 'accept' || word === 'reject' || word === 'defer' || word === 'error' ? word : 'bug';
  if (!envelope) return { result };
  const n = envelope.recipients.length;
  let fates: Partial<Record<RecipientFate, number>>;
  if (result === 'accept' && outcome) {
    fates = {};
    for (const x of outcome.recipients) {
      const fate: RecipientFate = x.fate === 'drop' && x.results.some((y) => y.verdict === 'drop' && y.plugin === 'quarantine') ? 'quarantine' : x.fate;
      fates[fate] = (fates[fate] ?? 0) + 1;
    }
  } else fates = result === 'reject' ? { reject: n } : { tempfail: n };
  return {
    result,
    sender: envelope.sender.address,
    recipients: n,
    fates,
    refusal: r.refusal?.text,
    results: outcome ? new Set([...outcome.general, ...outcome.recipients.flatMap((x) => x.results)]) : undefined,
    queue: calls,
  };
}

export function resultFromError(err: unknown, fields: Record<string, unknown> = {}): JobResult {
  if (isNqqError(err)) {
    const refusal: Refusal | undefined =
      err.exit === 31 ? { kind: 'permanent', text: ERRORS[err.code].text } : err.exit === 71 ? { kind: 'temporary', text: ERRORS[err.code].text } : undefined;
    return { exit: err.exit, refusal, fields: { ...fields, result: resultWord(err.exit), code: err.code, reason: err.message } };
  }
  return {
    exit: ERRORS.NQQ_ERR_BUG.exit,
    fields: { ...fields, result: 'bug', code: 'NQQ_ERR_BUG', reason: describeError(err), stack: oneLineStack(err) },
  };
}

function oneLineStack(err: unknown): string | undefined {
  if (!(err instanceof Error) || !err.stack) return undefined;
  return err.stack.split('\n').slice(1, 4).map((l) => l.trim()).join(' | ');
}

function resultWord(exit: number): string {
  if (exit === 0) return 'accept';
  if (exit === 31 || exit === 11) return 'reject';
  if (exit === 81) return 'bug';
  if (exit === 91 || exit === 54) return 'error';
  return 'defer';
}

function summarise(results: readonly Result[]): string {
  return results.map((r) => `${r.plugin}:${r.details.skipped === 'allowed' ? 'skipped' : r.verdict}${r.error ? '!' : ''}:${r.ms}ms`).join(',');
}

export interface JobInput {
  readonly message: MessageView;
  readonly envelope: Envelope;
  readonly client: ClientInfo;
  readonly services: Services;
  readonly logger: Logger;
  readonly started?: number;
  /**
   * Called when the decision is made and delivery of `copies` copies is about to start, with the log
   * fields known at that point. `ifQueued`: the fields of the final line should every copy be queued
   * (all but `qq` and `ms`, which only the delivery tells), when nothing after the delivery can change
   * them (no `ctx.onSettled` action waits: only one a timed-out plugin registers later can still add a
   * note); else undefined.
   */
  readonly onDeliver?: (copies: number, fields: Readonly<Record<string, unknown>>, ifQueued?: Readonly<Record<string, unknown>>) => void;
  /** Where accepted copies go (default: the services' qmail-queue). */
  readonly sink?: QueueSink;
  /** The message's NQQFILE (daemon mode: it comes with each message, not with the process). */
  readonly nqqfile?: string;
}

/** What the pipeline decided, and the log fields that say so. */
export function outcomeFields(o: PipelineOutcome): Record<string, unknown> {
  const perUser = o.recipients
    .filter((r) => r.results.length > 0)
    .map((r) => `${r.address.address}=${r.fate}[${summarise(r.results)}]`);
  // Why a plugin failed (the failure policy decided) or was skipped (maxsize): always in the log.
  // What a plugin found (a virus, spam), even when it only recorded it (`pass`): likewise.
  const notes = new Set<string>();
  for (const r of [...o.general, ...o.recipients.flatMap((x) => x.results)]) {
    if (r.error !== undefined) notes.add(`${r.plugin} failed: ${r.error}`);
    else if (r.details.skipped !== undefined && r.text) notes.add(`${r.plugin} skipped: ${r.text}`);
    else if (r.flagged) notes.add(`${r.plugin} flagged${detailText(r.details)}`);
  }
  // Where a dropped copy went (the quarantine id), per recipient.
  for (const x of o.recipients) {
    for (const r of x.results) if (r.verdict === 'drop' && r.text) notes.add(`${r.plugin} <${x.address.address}>: ${r.text}`);
  }
  return {
    general: o.general.length ? summarise(o.general) : undefined,
    'per-user': perUser.length ? perUser.join(' ') : undefined,
    notes: notes.size ? [...notes].join('; ') : undefined,
  };
}

/** The plain values of a result's details, as ` key=value` pairs for the log line. */
function detailText(details: Readonly<Record<string, unknown>>): string {
  let out = '';
  for (const [k, v] of Object.entries(details)) {
    if (typeof v === 'number' && Number.isFinite(v)) out += ` ${k}=${Math.round(v * 100) / 100}`;
    else if (typeof v === 'string' || typeof v === 'boolean') out += ` ${k}=${String(v).slice(0, 200)}`;
  }
  return out;
}

/** Tell the plugins the fate of the message (`ctx.onSettled`); a failure there is noted in the log. */
async function settle(outcome: PipelineOutcome, accepted: boolean, fields: Record<string, unknown>): Promise<void> {
  const { problems } = await outcome.settle(accepted);
  addNotes(fields, problems.map((p) => `after the decision: ${p}`));
}

function addNotes(fields: Record<string, unknown>, more: readonly string[]): void {
  if (more.length === 0) return;
  fields.notes = [fields.notes, ...more].filter((n) => n !== undefined).join('; ');
}

export async function processJob(job: JobInput): Promise<JobResult> {
  const started = job.started ?? performance.now();
  const { services, envelope, logger } = job;
  const messageId = newMessageId();
  const fields: Record<string, unknown> = {
    id: messageId,
    result: undefined,
    from: `<${envelope.sender.address}>`,
    rcpts: envelope.recipients.length,
    size: job.message.size,
    ip: job.client.ip,
    msgid: messageIdOf(await job.message.head(MESSAGE_ID_HEAD)),
  };
  let seen: PipelineOutcome | undefined;
  let calls: DeliveryReport['calls'] | undefined;
  const finish = (r: JobResult): JobResult => {
    r.fields.ms = Math.round(performance.now() - started);
    return { ...r, facts: jobFacts(r, envelope, seen, calls) };
  };
  const deadline = new AbortController();
  // The deadline covers delivery as well (deliverGroups spools what is left past it).
  const deadlineAt = Date.now() + services.settings.deadlineMs;
  const timer = setTimeout(() => deadline.abort(new DeadlineError()), services.settings.deadlineMs);
  let outcome: PipelineOutcome;
  try {
    // A settings file with a problem anywhere defers every message, as a broken routing file does.
    await services.ready();
    outcome = await runPipeline(
      {
        message: job.message,
        envelope,
        client: job.client,
        settings: services.settings,
        routing: job.nqqfile === undefined ? services.routing : services.routingFor(job.nqqfile),
        locals: services.locals,
        registry: services.registry,
        home: services.paths.home,
        lineCache: services.configured,
        messageId,
        debug: (level, msg) => logger.debug(level, `${messageId} ${msg}`),
      },
      deadline.signal,
    );
  } catch (err) {
    const e = err instanceof DeadlineError ? new NqqError('NQQ_ERR_DEADLINE', `message deadline of ${services.settings.deadlineMs} ms passed`) : err;
    return finish(resultFromError(e, fields));
  } finally {
    clearTimeout(timer);
  }
  seen = outcome;
  Object.assign(fields, outcomeFields(outcome));
  if (outcome.decision !== 'accept') await settle(outcome, false, fields);
  if (outcome.decision === 'reject') {
    const text = outcome.text ?? ERRORS.NQQ_ERR_POLICY.text;
    return finish({ exit: 31, refusal: { kind: 'permanent', text }, fields: { ...fields, result: 'reject', reason: text } });
  }
  if (outcome.decision === 'tempfail') {
    const text = outcome.text ?? ERRORS.NQQ_ERR_TEMPORARY.text;
    return finish({ exit: 71, refusal: { kind: 'temporary', text }, fields: { ...fields, result: 'defer', reason: text } });
  }
  const dropped = outcome.recipients.filter((r) => r.fate === 'drop' || r.fate === 'reject').length;
  if (dropped) fields.removed = dropped;
  // The commit point: what plugins keep instead of delivering (quarantined copies) is made durable
  // before anything is handed to qmail-queue, so no crash after this can lose it; if it cannot be
  // kept, nothing is accepted.
  // The deadline holds here too: a commit action that hangs defers the message (nothing was queued).
  const commit = await within(outcome.commit(), deadlineAt - Date.now());
  if (commit === undefined) {
    void settle(outcome, false, fields);
    return finish(resultFromError(new NqqError('NQQ_ERR_DEADLINE', `message deadline of ${services.settings.deadlineMs} ms passed at the commit point (a plugin's onCommit did not finish)`), fields));
  }
  const committed = commit.value;
  addNotes(fields, committed.notes);
  if (committed.error !== undefined) {
    await settle(outcome, false, fields);
    return finish(resultFromError(new NqqError('NQQ_ERR_KEEP', committed.error), fields));
  }
  if (job.onDeliver) {
    // As the end of this function makes them when deliverGroups queues every group.
    const ifQueued = outcome.settleActions() === 0 ? { ...fields, result: 'accept', groups: outcome.groups.map((g) => `${g.recipients.length}:queued`).join(',') || 'none' } : undefined;
    job.onDeliver(outcome.groups.length, { ...fields, result: 'accept' }, ifQueued);
  }
  let report;
  try {
    report = await deliverGroups(outcome.groups, envelope.sender.raw, job.sink ?? services.sink, services.spool, deadlineAt);
  } catch (err) {
    // The daemon's client went away mid-delivery: it may have queued every copy and exit 0, so what
    // was committed stays (at worst one copy too many when it defers or falls back instead).
    await settle(outcome, true, fields);
    throw err;
  }
  calls = report.calls;
  fields.groups = report.groups.map((g) => `${g.recipients}:${g.outcome}`).join(',') || 'none';
  // Each qmail-queue's pid: what qmail-send logs as `qp` for the copy it queued.
  const pids = report.groups.flatMap((g) => (g.pid === undefined ? [] : [g.pid]));
  if (pids.length) fields.qq = pids.join(',');
  // A deferred message comes back: what was committed for it is taken back; an accepted one keeps it.
  await settle(outcome, report.exit === 0, fields);
  if (report.exit !== 0) {
    const refusal: Refusal | undefined = report.exit === 71 ? { kind: 'temporary', text: ERRORS.NQQ_ERR_TEMPORARY.text } : undefined;
    return finish({ exit: report.exit, refusal, fields: { ...fields, result: 'defer', reason: report.reason } });
  }
  if (report.reason) fields.reason = report.reason;
  return finish({ exit: 0, fields: { ...fields, result: 'accept' } });
}
