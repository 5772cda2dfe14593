// Running one chain of configured plugins: timeouts that cancel, the failure policy, results as data.

import { performance } from 'node:perf_hooks';

import { describeError, ERRORS, isNqqError } from '../errors.js';
import { MemoryMessage, prefixMessage } from '../intake/message.js';
import type { PluginContext } from '../plugin-api/define.js';
import type { ConfiguredPlugin } from '../plugin-api/load.js';
import { renderHeaders } from './headers.js';
import type { ClientInfo, Envelope, MessageView, Outcome, Result, Stage } from './types.js';

export interface ChainInput {
  readonly stage: Stage;
  readonly plugins: readonly ConfiguredPlugin[];
  readonly message: MessageView;
  readonly envelope: Envelope;
  readonly client: ClientInfo;
  /** Results visible before the first plugin of this chain (the general stage's, for per-user chains). */
  readonly before: readonly Result[];
  readonly recipient?: string;
  readonly group: readonly string[];
  /** Plugins an earlier chain asked to skip (the general stage's, for per-user chains): name → why. */
  readonly skip?: ReadonlyMap<string, string>;
  readonly rules: PluginContext<unknown>['rules'];
  readonly signal: AbortSignal;
  readonly base: Omit<PluginContext<unknown>, 'config' | 'stage' | 'message' | 'results' | 'signal' | 'recipient' | 'group' | 'envelope' | 'client' | 'sender' | 'recipients' | 'rules'>;
}

export interface ChainOutput {
  readonly results: Result[];
  /** The message as the chain left it. */
  readonly message: MessageView;
  /** The verdict that ended the chain, or accept when every plugin accepted. */
  readonly verdict: Result['verdict'];
  readonly text?: string;
  /** What the chain was asked to skip from here on (given to the per-user chains after the general stage). */
  readonly skip: ReadonlyMap<string, string>;
}

export class DeadlineError extends Error {
  constructor() {
    super('message deadline passed');
    this.name = 'DeadlineError';
  }
}

class PluginTimeout extends Error {
  constructor(ms: number) {
    super(`timed out after ${ms} ms`);
    this.name = 'PluginTimeout';
  }
}

/** Resolve with the work, or reject as soon as the signal aborts (the signal also stops the work). */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

function isView(v: unknown): v is MessageView {
  const m = v as Partial<MessageView> | null;
  return typeof m === 'object' && m !== null && typeof m.size === 'number' && typeof m.chunks === 'function' && typeof m.stream === 'function' && typeof m.head === 'function' && typeof m.buffer === 'function';
}

function checkOutcome(o: unknown): Outcome {
  if (!o || typeof o !== 'object') throw new Error('plugin returned no verdict');
  const v = (o as Outcome).verdict;
  if (v !== 'accept' && v !== 'reject' && v !== 'drop' && v !== 'tempfail') {
    throw new Error(`plugin returned an unknown verdict ${JSON.stringify(v)}`);
  }
  if (v === 'reject' && typeof (o as { text?: unknown }).text !== 'string') throw new Error('reject without a text');
  const skip = (o as { skip?: unknown }).skip;
  if (v === 'accept' && skip !== undefined && !(Array.isArray(skip) && skip.every((n) => typeof n === 'string'))) throw new Error('skip is not a list of plugin names');
  const replace = (o as { replace?: unknown }).replace;
  if (v === 'accept' && replace !== undefined && !Buffer.isBuffer(replace) && !isView(replace)) throw new Error('replace is neither bytes nor a message view');
  return o as Outcome;
}

export async function runChain(input: ChainInput): Promise<ChainOutput> {
  const results: Result[] = [];
  let message = input.message;
  const senderText = input.envelope.sender.address;
  const rcptTexts = input.envelope.recipients.map((r) => r.address);
  const skips = new Map(input.skip ?? []);
  for (const cp of input.plugins) {
    if (input.signal.aborted) throw new DeadlineError();
    const started = performance.now();
    const base = {
      plugin: cp.def.name,
      params: cp.ref.params,
      version: cp.def.version,
      stage: input.stage,
    };
    const asked = skips.get(cp.def.name);
    // The host decides what may be skipped: only a plugin that declares itself skippable (a spam check),
    // never a virus check, whatever the plugin that asked says. A skipped plugin is a result too, so the
    // log line, the trace header and the quarantine's "why" say it did not run and why.
    if (asked !== undefined && cp.def.skippable === true) {
      const result: Result = Object.freeze({
        ...base,
        verdict: 'accept',
        flagged: false,
        details: Object.freeze({ skipped: 'allowed' }),
        text: `not run: ${asked}`,
        headers: [],
        replaced: false,
        ms: 0,
      });
      results.push(result);
      input.base.debug(2, `${input.stage}${input.recipient ? ` ${input.recipient}` : ''}: ${cp.def.name} skipped (${asked})`);
      continue;
    }
    let outcome: Outcome;
    let error: string | undefined;
    let skipped: string | undefined;
    if (cp.maxsize !== undefined && message.size > cp.maxsize) {
      skipped = `message of ${message.size} bytes is over maxsize ${cp.maxsize}: not scanned`;
      outcome = { verdict: 'accept', details: { skipped: 'maxsize', size: message.size, maxsize: cp.maxsize } };
    } else {
      const timer = new AbortController();
      const t = setTimeout(() => timer.abort(new PluginTimeout(cp.timeoutMs)), cp.timeoutMs);
      // The plugin's signal: its own timeout or the message's deadline, whichever comes first, while it
      // runs. One controller both feed (AbortSignal.any costs ~20 µs a call on Node 22, paid per plugin).
      const onDeadline = () => timer.abort(input.signal.reason);
      input.signal.addEventListener('abort', onDeadline, { once: true });
      const signal = timer.signal;
      const ctx: PluginContext<unknown> = {
        ...input.base,
        config: cp.config,
        stage: input.stage,
        message,
        envelope: input.envelope,
        sender: senderText,
        recipients: rcptTexts,
        recipient: input.recipient,
        group: input.group,
        rules: input.rules,
        client: input.client,
        results: Object.freeze([...input.before, ...results]),
        signal,
      };
      try {
        outcome = checkOutcome(await untilAborted(Promise.resolve().then(() => cp.def.run(ctx)), signal));
        if (outcome.verdict === 'accept' && outcome.headers?.length) renderHeaders(outcome.headers);
      } catch (err) {
        if (input.signal.aborted) throw new DeadlineError();
        error = err instanceof PluginTimeout ? err.message : describeError(err);
        // A backend's read timeout is a timeout too, and a failure that knows its catalogue code (a
        // quarantine that cannot store) says so: the sender's text says what happened.
        const timedOut = err instanceof PluginTimeout || (err as { cause?: { code?: unknown } })?.cause?.code === 'ETIMEDOUT';
        const own = isNqqError(err) && err.kind === 'temporary' ? ERRORS[err.code].text : undefined;
        outcome =
          cp.onerror === 'accept'
            ? { verdict: 'accept' }
            : cp.onerror === 'reject'
              ? { verdict: 'reject', text: `message refused: ${cp.def.name} check failed (#5.3.0)` }
              : {
                  verdict: 'tempfail',
                  text: own ?? (timedOut ? ERRORS.NQQ_ERR_PLUGIN_TIMEOUT : ERRORS.NQQ_ERR_PLUGIN_FAILED).text,
                };
      } finally {
        clearTimeout(t);
        input.signal.removeEventListener('abort', onDeadline);
      }
    }
    const ms = Math.round((performance.now() - started) * 10) / 10;
    const text =
      outcome.verdict === 'reject'
        ? outcome.text
        : outcome.verdict === 'drop'
          ? outcome.reason
          : outcome.verdict === 'tempfail'
            ? (outcome.text ?? ERRORS.NQQ_ERR_PLUGIN_FAILED.text)
            : skipped;
    const headers = outcome.verdict === 'accept' ? [...(outcome.headers ?? [])] : [];
    const replaced = outcome.verdict === 'accept' && outcome.replace !== undefined;
    // Asked to skip a plugin that may not be: it ran, and its result says it was not skipped.
    const refused = asked !== undefined ? { skip_refused: `${cp.def.name} may not be skipped (${asked})` } : {};
    const result: Result = Object.freeze({
      ...base,
      verdict: outcome.verdict,
      score: outcome.score,
      flagged: outcome.flagged ?? false,
      details: Object.freeze({ ...(outcome.details ?? {}), ...refused }),
      text,
      error,
      headers,
      replaced,
      ms,
    });
    results.push(result);
    input.base.debug(2, `${input.stage}${input.recipient ? ` ${input.recipient}` : ''}: ${cp.def.name} -> ${result.verdict}${error ? ` (${error})` : ''} ${ms}ms`);
    if (outcome.verdict !== 'accept') return { results, message, verdict: outcome.verdict, text, skip: skips };
    if (outcome.skip?.length) {
      const why = typeof outcome.skipReason === 'string' && outcome.skipReason !== '' ? outcome.skipReason : `asked by ${cp.def.name}`;
      for (const name of outcome.skip) if (!skips.has(name)) skips.set(name, why);
    }
    if (outcome.replace !== undefined) message = Buffer.isBuffer(outcome.replace) ? new MemoryMessage(outcome.replace) : outcome.replace;
    if (headers.length) message = prefixMessage(renderHeaders(headers), message);
  }
  return { results, message, verdict: 'accept', skip: skips };
}
