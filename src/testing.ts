// `nqqueue/testing`: run one plugin definition the way NQqueue runs it — configured from PARAMS and a
// settings text, with its timeout, failure policy and header checks — against a message and an
// envelope, and get its result. For plugin authors' own tests; nothing here is used by the queue path.

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { parseParams } from './config/cfb.js';
import { defaultSettings, parseSettings } from './config/settings.js';
import { MemoryMessage } from './intake/message.js';
import { runChain } from './pipeline/chain.js';
import type { Result, Stage } from './pipeline/types.js';
import { configureLoaded, hostPlugin, IN_MEMORY } from './plugin-api/load.js';
import type { PluginDefinition } from './plugin-api/define.js';
import { toEnvelope } from './qmail/envelope.js';
import { clientFrom, heloFrom } from './queue/services.js';

export interface RunPluginInput {
  /** The message as qmail-smtpd hands it over (LF line ends). */
  readonly message: Buffer | string;
  /** The envelope sender ('' for a bounce). Default `sender@example.com`. */
  readonly sender?: string;
  /** Every recipient of the message. Default: `[recipient]`, or `['rcpt@example.com']`. */
  readonly recipients?: readonly string[];
  /** Per-user stage: the recipient this run is for. Default: the first recipient. */
  readonly recipient?: string;
  /** Default: the plugin's first stage. */
  readonly stage?: Stage;
  /** PARAMS as written on a routing line: `'tag=x,pass'`. */
  readonly params?: string;
  /** The text of an `nqqueue.conf` (global keys, and the plugin's `[section]`). */
  readonly settings?: string;
  /** The client's environment as tcpserver and qmail-smtpd give it (TCPREMOTEIP, RELAYCLIENT ...). */
  readonly env?: Readonly<Record<string, string>>;
  /** Results of plugins that ran before this one, as `ctx.results` shows them. */
  readonly results?: readonly Result[];
  /** `ctx.home` ($NQQUEUE_HOME). Default: a new private directory under the system's temp dir. */
  readonly home?: string;
}

export interface RunPluginOutput {
  /** What later plugins, the log line and the quarantine would see: verdict, text, headers, error ... */
  readonly result: Result;
  /** The message as the plugin left it: its headers added in front, or its replacement. */
  readonly message: Buffer;
  /** The `ctx.home` the plugin was given. */
  readonly home: string;
  /** Run the plugin's `onCommit` actions, as at the commit point of an accepted message; gives their notes. */
  commit(): Promise<string[]>;
  /** Tell the plugin the message's fate (its `onSettled` actions): true = accepted. */
  settle(accepted: boolean): Promise<void>;
}

/** Run `def` once, as NQqueue would for one routing line naming it. Bad PARAMS throw, as at load time. */
export async function runPlugin(def: PluginDefinition<any>, input: RunPluginInput): Promise<RunPluginOutput> {
  const loaded = hostPlugin(def, IN_MEMORY);
  const stage = input.stage ?? loaded.def.stages[0]!;
  const settings = input.settings === undefined ? defaultSettings('localhost') : parseSettings(input.settings, 'nqqueue.conf', 'localhost');
  const raw = input.params ?? '';
  const cp = await configureLoaded(loaded, { name: loaded.def.name, params: raw, items: parseParams(raw) }, stage, settings);
  const recipients = input.recipients ?? [input.recipient ?? 'rcpt@example.com'];
  const recipient = stage === 'per-user' ? (input.recipient ?? recipients[0]) : undefined;
  const bytes = Buffer.isBuffer(input.message) ? input.message : Buffer.from(input.message);
  const message = new MemoryMessage(bytes);
  const envelope = toEnvelope({ sender: Buffer.from(input.sender ?? 'sender@example.com'), recipients: recipients.map((r) => Buffer.from(r)) }, input.env?.RELAYCLIENT);
  const home = input.home ?? mkdtempSync(join(tmpdir(), 'nqqueue-testing-'));
  const memo = new Map<string, Promise<unknown>>();
  const actions: ((accepted: boolean) => void | Promise<void>)[] = [];
  const commits: (() => void | string | Promise<void | string>)[] = [];
  const out = await runChain({
    stage,
    rules: {},
    plugins: [cp],
    message,
    envelope,
    client: clientFrom(input.env ?? {}, heloFrom(bytes)),
    before: input.results ?? [],
    recipient,
    group: recipient === undefined ? [] : [recipient],
    signal: new AbortController().signal,
    base: {
      settings,
      home,
      messageId: `test${Date.now().toString(36)}`,
      shared<T>(key: string, work: () => Promise<T>): Promise<T> {
        let p = memo.get(key) as Promise<T> | undefined;
        if (!p) memo.set(key, (p = work()));
        return p;
      },
      onCommit(action) {
        commits.push(action);
      },
      onSettled(action) {
        actions.push(action);
      },
      debug() {},
    },
  });
  return {
    result: out.results[0]!,
    message: await out.message.buffer(),
    home,
    async commit() {
      const notes: string[] = [];
      for (const action of commits.splice(0)) {
        const note = await action();
        if (typeof note === 'string') notes.push(note);
      }
      return notes;
    },
    async settle(accepted) {
      for (const action of actions.splice(0)) await action(accepted);
    },
  };
}

export type { Result, Stage } from './pipeline/types.js';
