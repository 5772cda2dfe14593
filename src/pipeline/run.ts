// The pipeline as a pure orchestration: message + envelope + configuration in, decision + delivery plan out.
// Nothing is delivered here: the caller acts on the plan only after every chain has finished.

import { randomFillSync } from 'node:crypto';
import { hostname } from 'node:os';

import type { CfbLine } from '../config/cfb.js';
import type { Locals } from '../config/locals.js';
import type { Routing } from '../config/routing.js';
import type { Settings } from '../config/settings.js';
import { describeError, NqqError, type ErrorCode } from '../errors.js';
import { prefixMessage, PrefixedMessage } from '../intake/message.js';
import type { PluginContext } from '../plugin-api/define.js';
import { configurePlugin, PluginLoadError, recheckSource, type ConfiguredPlugin, type PluginRegistry } from '../plugin-api/load.js';
import { submissionTrust } from '../qmail/submission.js';
import { VERSION } from '../version.js';
import { DeadlineError, runChain, type ChainOutput } from './chain.js';
import { traceHeader } from './headers.js';
import { fanOutLimit, runLimited } from './recipients.js';
import type { Address, ClientInfo, Envelope, MessageView, Result } from './types.js';

export interface PipelineInput {
  readonly message: MessageView;
  readonly envelope: Envelope;
  readonly client: ClientInfo;
  readonly settings: Settings;
  readonly routing: Routing;
  readonly locals: Locals;
  readonly registry: PluginRegistry;
  /** $NQQUEUE_HOME, for plugins that keep stores. */
  readonly home: string;
  /** Configured plugins per routing line, kept across messages by a long-lived process. */
  readonly lineCache?: Map<CfbLine, ConfiguredPlugin[]>;
  readonly messageId?: string;
  readonly now?: Date;
  debug(level: number, message: string): void;
}

export type Fate = 'deliver' | 'reject' | 'drop' | 'tempfail';

export interface RecipientReport {
  readonly address: Address;
  readonly local: boolean;
  /** The routing line chosen for this recipient (per-user stage), if any. */
  readonly line?: CfbLine;
  readonly results: readonly Result[];
  readonly fate: Fate;
  readonly text?: string;
}

export interface DeliveryGroup {
  readonly recipients: readonly Address[];
  readonly message: MessageView;
}

/** What `settle` did: how many plugin actions ran, and why any of them failed. */
export interface SettleReport {
  readonly actions: number;
  readonly problems: readonly string[];
}

/** What `commit` did: the notes the actions returned, or the first failure (the rest did not run). */
export interface CommitReport {
  readonly notes: readonly string[];
  readonly error?: string;
}

export interface PipelineOutcome {
  readonly messageId: string;
  /** accept: deliver `groups` (possibly none: every copy dropped); reject/tempfail: refuse the message. */
  readonly decision: 'accept' | 'reject' | 'tempfail';
  readonly code?: ErrorCode;
  readonly text?: string;
  readonly generalLine?: CfbLine;
  readonly general: readonly Result[];
  readonly recipients: readonly RecipientReport[];
  readonly groups: readonly DeliveryGroup[];
  /**
   * The commit point of an accepted message, before anything is handed to qmail-queue: run the plugins'
   * `ctx.onCommit` actions in order, stopping at the first failure. Runs once; never throws. After a
   * failure the caller defers the message and settles it `false`.
   */
  commit(): Promise<CommitReport>;
  /**
   * Tell the plugins the fate of the message once it is final (`ctx.onSettled`): `true` when it was
   * accepted (queued or spooled) or its fate cannot be known, `false` when refused or deferred, or in
   * a dry run. Runs each action once; a second call does nothing. Never throws: failures are reported.
   */
  settle(accepted: boolean): Promise<SettleReport>;
  /** How many `ctx.onSettled` actions `settle` would run now (0: settling changes nothing). */
  settleActions(): number;
}

/** Random bytes for message ids, drawn from the system a block at a time (a call per id costs more than the id). */
const ID_POOL = Buffer.alloc(1024);
let idPoolAt = ID_POOL.length;

export function newMessageId(): string {
  if (idPoolAt + 4 > ID_POOL.length) {
    randomFillSync(ID_POOL);
    idPoolAt = 0;
  }
  const hex = ID_POOL.toString('hex', idPoolAt, idPoolAt + 4);
  idPoolAt += 4;
  return `${Date.now().toString(36)}${hex}`;
}

async function configureLine(line: CfbLine, stage: 'general' | 'per-user', input: PipelineInput): Promise<ConfiguredPlugin[]> {
  const out: ConfiguredPlugin[] = [];
  for (const ref of line.plugins) {
    try {
      out.push(await configurePlugin(input.registry, ref, stage, input.settings));
    } catch (err) {
      const msg = err instanceof PluginLoadError ? err.message : (err as Error).message;
      throw new NqqError('NQQ_ERR_CONFIG', `${line.file}:${line.line}: ${msg}`, { cause: err });
    }
  }
  return out;
}

/** Group key of a recipient's per-user chain: the same key means one run serves all of them. */
function chainKey(line: CfbLine, plugins: readonly ConfiguredPlugin[], recipient: string): string {
  const scopes = plugins.map((p) => p.def.scope?.(p.config, recipient) ?? '');
  return JSON.stringify([line.file, line.line, scopes]);
}

type SettleAction = (accepted: boolean) => void | Promise<void>;
type CommitAction = () => void | string | Promise<void | string>;

export async function runPipeline(input: PipelineInput, signal: AbortSignal): Promise<PipelineOutcome> {
  const actions: SettleAction[] = [];
  const commits: CommitAction[] = [];
  let committing: Promise<CommitReport> | undefined;
  let settling: Promise<SettleReport> | undefined;
  const commit = (): Promise<CommitReport> => {
    committing ??= (async () => {
      const notes: string[] = [];
      for (const action of commits.splice(0)) {
        try {
          const note = await action();
          if (typeof note === 'string' && note !== '') notes.push(note);
        } catch (err) {
          return { notes, error: describeError(err) };
        }
      }
      return { notes };
    })();
    return committing;
  };
  const settle = (accepted: boolean): Promise<SettleReport> => {
    settling ??= (async () => {
      const list = actions.splice(0);
      const problems: string[] = [];
      for (const action of list) {
        try {
          await action(accepted);
        } catch (err) {
          problems.push(describeError(err));
        }
      }
      return { actions: list.length, problems };
    })();
    return settling;
  };
  const register = (action: SettleAction): void => {
    // A plugin cut off by a timeout may finish after the fate was settled: it was not delivered.
    if (settling) Promise.resolve().then(() => action(false)).catch(() => undefined);
    else actions.push(action);
  };
  // A plugin cut off by a timeout may register late: past the commit point, or once the fate is
  // settled, its result was not the one acted on, so there is nothing of it to commit.
  const registerCommit = (action: CommitAction): void => {
    if (!committing && !settling) commits.push(action);
  };
  try {
    return { ...(await decide(input, signal, register, registerCommit)), commit, settle, settleActions: () => (settling ? 0 : actions.length) };
  } catch (err) {
    // Nothing will be delivered: whatever the plugins prepared is taken back.
    await settle(false);
    throw err;
  }
}

async function decide(
  input: PipelineInput,
  signal: AbortSignal,
  onSettled: (action: SettleAction) => void,
  onCommit: (action: CommitAction) => void,
): Promise<Omit<PipelineOutcome, 'settle' | 'commit' | 'settleActions'>> {
  const messageId = input.messageId ?? newMessageId();
  const memo = new Map<string, Promise<unknown>>();
  const base: ChainBase = {
    settings: input.settings,
    home: input.home,
    messageId,
    shared<T>(key: string, work: () => Promise<T>): Promise<T> {
      let p = memo.get(key) as Promise<T> | undefined;
      if (!p) {
        p = work();
        memo.set(key, p);
      }
      return p;
    },
    onSettled(action) {
      onSettled(action);
    },
    onCommit(action) {
      onCommit(action);
    },
    debug: (level: number, message: string) => input.debug(level, message),
  };
  const { envelope } = input;
  // The sender chooses its general line only when it is local and the submission is trusted: a forged
  // local MAIL FROM from the internet must not pick a lighter chain.
  const senderLocal = envelope.sender.address !== '' && input.locals.isLocal(envelope.sender.address);
  const generalLine = input.routing.general(envelope.sender.address, senderLocal && submissionTrust(input.client.env).trusted);
  // Configured plugins per routing line: the caller's cache (a daemon keeps it across messages), else
  // one for this message, so recipients sharing a line configure it once.
  const lineCache = input.lineCache ?? new Map<CfbLine, ConfiguredPlugin[]>();
  const configured = async (line: CfbLine, stage: 'general' | 'per-user') => {
    const hit = lineCache.get(line);
    if (hit) {
      try {
        for (const cp of hit) recheckSource(cp.source);
      } catch (err) {
        lineCache.delete(line);
        throw new NqqError('NQQ_ERR_CONFIG', `${line.file}:${line.line}: ${(err as Error).message}`, { cause: err });
      }
      return hit;
    }
    const plugins = await configureLine(line, stage, input);
    lineCache.set(line, plugins);
    return plugins;
  };
  const generalPlugins = generalLine ? await configured(generalLine, 'general') : [];

  const refuse = (decision: 'reject' | 'tempfail', text: string | undefined, code: ErrorCode, general: Result[], recipients: RecipientReport[] = []) => ({
    messageId,
    decision,
    code,
    text,
    generalLine,
    general,
    recipients,
    groups: [],
  });

  // Every per-user line is configured before anything runs: a broken line defers the message at once.
  const locals: { address: Address; line: CfbLine | undefined; plugins: ConfiguredPlugin[] }[] = [];
  const isLocal = envelope.recipients.map((r) => input.locals.isLocal(r.address));
  for (let i = 0; i < envelope.recipients.length; i++) {
    if (!isLocal[i]) continue;
    const r = envelope.recipients[i]!;
    const line = input.routing.user(r.address, r.domain);
    let plugins: ConfiguredPlugin[] = [];
    if (line) plugins = await configured(line, 'per-user');
    locals.push({ address: r, line, plugins });
  }

  const general = await runChain({
    stage: 'general',
    plugins: generalPlugins,
    message: input.message,
    envelope,
    client: input.client,
    before: [],
    group: [],
    rules: ruleRefs(generalLine, undefined),
    signal,
    base,
  });
  if (general.verdict === 'reject') return refuse('reject', general.text, 'NQQ_ERR_POLICY', general.results);
  if (general.verdict === 'tempfail') return refuse('tempfail', general.text, 'NQQ_ERR_PLUGIN_FAILED', general.results);
  if (general.verdict === 'drop') {
    return { messageId, decision: 'accept', generalLine, general: general.results, recipients: [], groups: [] };
  }

  // Per-user stage: one run per distinct chain key, all at once within the concurrency bound.
  const runs = new Map<string, { members: typeof locals; output?: ChainOutput }>();
  for (const l of locals) {
    if (!l.line || l.plugins.length === 0) continue;
    const key = chainKey(l.line, l.plugins, l.address.address);
    const run = runs.get(key) ?? { members: [] };
    run.members.push(l);
    runs.set(key, run);
  }
  const limit = fanOutLimit(input.settings.concurrency, [...runs.values()].map((r) => r.members[0]!.plugins));
  await runLimited([...runs.values()], limit, async (run) => {
    const first = run.members[0]!;
    run.output = await runChain({
      stage: 'per-user',
      plugins: first.plugins,
      message: general.message,
      envelope,
      client: input.client,
      before: general.results,
      recipient: first.address.address,
      group: run.members.map((m) => m.address.address),
      skip: general.skip,
      rules: ruleRefs(generalLine, first.line),
      signal,
      base,
    });
  });
  if (signal.aborted) throw new DeadlineError();

  const outputOf = new Map<Address, ChainOutput>();
  for (const run of runs.values()) for (const m of run.members) outputOf.set(m.address, run.output!);
  const lineOf = new Map(locals.map((l) => [l.address, l.line] as const));

  const reports: RecipientReport[] = envelope.recipients.map((address, i) => {
    const out = outputOf.get(address);
    const fate: Fate = !out || out.verdict === 'accept' ? 'deliver' : out.verdict;
    return { address, local: isLocal[i]!, line: lineOf.get(address), results: out?.results ?? [], fate, text: out?.text };
  });

  const tempfail = reports.find((r) => r.fate === 'tempfail');
  if (tempfail) return refuse('tempfail', tempfail.text, 'NQQ_ERR_PLUGIN_FAILED', general.results, reports);
  const delivered = reports.filter((r) => r.fate === 'deliver');
  if (reports.length > 0 && reports.every((r) => r.fate === 'reject')) {
    return refuse('reject', reports[0]!.text, 'NQQ_ERR_POLICY', general.results, reports);
  }

  // Group the remaining recipients by the exact bytes they will receive.
  const date = input.now ?? new Date();
  const host = input.settings.hostname ?? hostname();
  const baseIds = new Map<MessageView, number>();
  const baseId = (m: MessageView) => {
    const b = m instanceof PrefixedMessage ? m.base : m;
    if (!baseIds.has(b)) baseIds.set(b, baseIds.size);
    return baseIds.get(b)!;
  };
  const groups = new Map<string, { recipients: Address[]; message: MessageView }>();
  for (const r of delivered) {
    const out = outputOf.get(r.address);
    const chainMessage = out?.message ?? general.message;
    const trace = traceHeader({ host, version: VERSION, id: messageId, general: general.results, perUser: r.results, date });
    const copy = prefixMessage(trace, chainMessage);
    const prefix = copy instanceof PrefixedMessage ? copy.prefix : Buffer.alloc(0);
    const key = `${baseId(chainMessage)}:${prefix.toString('latin1')}`;
    const g = groups.get(key) ?? { recipients: [], message: copy };
    g.recipients.push(r.address);
    groups.set(key, g);
  }
  // A message with no recipients at all goes on as qmail-queue would take it (queued, nothing delivered).
  if (envelope.recipients.length === 0) {
    const trace = traceHeader({ host, version: VERSION, id: messageId, general: general.results, perUser: [], date });
    groups.set('', { recipients: [], message: prefixMessage(trace, general.message) });
  }
  return { messageId, decision: 'accept', generalLine, general: general.results, recipients: reports, groups: [...groups.values()] };
}

type ChainBase = Omit<
  PluginContext<unknown>,
  'config' | 'stage' | 'message' | 'results' | 'signal' | 'recipient' | 'group' | 'envelope' | 'client' | 'sender' | 'recipients' | 'rules'
>;


/** Where the chains' lines were written, as plugins see it (the quarantine records it). */
function ruleRefs(general: CfbLine | undefined, user: CfbLine | undefined): PluginContext<unknown>['rules'] {
  return Object.freeze({
    ...(general ? { general: { file: general.file, line: general.line } } : {}),
    ...(user ? { user: { file: user.file, line: user.line } } : {}),
  });
}
