// The plugin contract: what a plugin declares, what it is given, what it returns.

import type { ClientInfo, Envelope, MessageView, Outcome, Result, Stage } from '../pipeline/types.js';
import type { Settings } from '../config/settings.js';

/** One PARAMS item of a routing line: a bare word or key=value. */
export interface ParamItem {
  readonly key?: string;
  readonly value: string;
}

/** The PARAMS of one plugin on one routing line, merged over the plugin's settings section. */
export interface Params {
  /** PARAMS exactly as written on the routing line ('' when none). */
  readonly raw: string;
  readonly items: readonly ParamItem[];
  /** Bare words (items without '='), in order. */
  readonly words: readonly string[];
  /** Last value for a key: the routing line first, then the plugin's section of the settings file. */
  get(key: string): string | undefined;
  /** Every value for a repeatable key: the routing line's if it has any, else the settings file's. */
  all(key: string): readonly string[];
  has(word: string): boolean;
}

/** Thrown by `configure` for bad PARAMS; the message is shown with the file and line. */
export class PluginConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PluginConfigError';
  }
}

/** Thrown by a plugin when its backend cannot be used: the failure policy decides. */
export class BackendError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BackendError';
  }
}

export interface PluginContext<C> {
  /** What `configure` returned for this routing line. */
  readonly config: C;
  readonly stage: Stage;
  /** The message as the plugins before this one left it. */
  readonly message: MessageView;
  readonly envelope: Envelope;
  /** The envelope sender ('' for a bounce). */
  readonly sender: string;
  /** Every recipient of the message, RELAYCLIENT suffix removed. */
  readonly recipients: readonly string[];
  /** Per-user stage: the recipient this chain runs for. */
  readonly recipient?: string;
  /** Per-user stage: all recipients this run stands for (several when their chains are shared). */
  readonly group: readonly string[];
  readonly client: ClientInfo;
  /** Results of the plugins that ran before this one (general stage first, then this chain). */
  readonly results: readonly Result[];
  /** Aborted at the plugin's timeout or the message deadline: stop the work. */
  readonly signal: AbortSignal;
  readonly settings: Settings;
  /** $NQQUEUE_HOME: where stores such as the quarantine live. */
  readonly home: string;
  /** A short unique id of this message, for logs and stores. */
  readonly messageId: string;
  /**
   * Per-message memo: the first caller with a key does the work, the others share its promise.
   * Lets plugins scan once for several recipients whose settings allow it.
   */
  shared<T>(key: string, work: () => Promise<T>): Promise<T>;
  /**
   * Run `action` once the fate of the message is final: `true` when it was accepted (handed to
   * qmail-queue or the retry spool), `false` when it was refused or deferred, and in a dry run. A
   * plugin that keeps something (the quarantine) writes it during `run` and makes it visible only on
   * `true`, so a deferred message retried by the client is not kept twice and a dry run keeps nothing.
   */
  onSettled(action: (accepted: boolean) => void | Promise<void>): void;
  /** A log line on stderr when NQQUEUE_DEBUG >= level. */
  debug(level: number, message: string): void;
}

export interface ConfigureInput {
  readonly params: Params;
  readonly settings: Settings;
  readonly stage: Stage;
}

export interface PluginDefinition<C = unknown> {
  readonly name: string;
  readonly version: string;
  readonly stages: readonly Stage[];
  /** Defaults for the keys every plugin understands, when neither PARAMS nor the settings file set them. */
  readonly defaults?: { readonly timeoutMs?: number; readonly maxsize?: number; readonly onerror?: 'tempfail' | 'accept' | 'reject' };
  /**
   * Turn PARAMS (and the plugin's settings section) into a ready-to-run value, once per routing line.
   * Throw PluginConfigError for bad PARAMS.
   */
  configure(input: ConfigureInput): C;
  /**
   * Per-user stage: what the result depends on besides the message and the config. Return undefined
   * when the result does not depend on who the recipient is (then recipients with identical chains
   * share one run); return e.g. the recipient address when it does.
   */
  scope?(config: C, recipient: string): string | undefined;
  run(ctx: PluginContext<C>): Promise<Outcome>;
  /**
   * Release what `configure` opened (sockets, pools, timers) for this config. A long-lived process
   * (`nqqueue serve`) calls it when a reload replaces the configuration — once the messages in flight
   * with it are done — and when it stops. The one-shot program exits instead.
   */
  teardown?(config: C): void | Promise<void>;
}

export const PLUGIN_NAME = /^[a-z][a-z0-9_-]{0,63}$/;

/** Declare a plugin. Checks the declaration so a broken plugin fails at load time, not per message. */
export function definePlugin<C>(def: PluginDefinition<C>): PluginDefinition<C> {
  const problem = checkDefinition(def);
  if (problem) throw new PluginConfigError(problem);
  return Object.freeze({ ...def });
}

export function checkDefinition(def: unknown): string | undefined {
  if (!def || typeof def !== 'object') return 'a plugin module must export a plugin definition';
  const d = def as Partial<PluginDefinition>;
  if (typeof d.name !== 'string' || !PLUGIN_NAME.test(d.name)) return `invalid plugin name ${JSON.stringify(d.name)}`;
  if (typeof d.version !== 'string' || d.version.length === 0) return `plugin ${d.name}: missing version`;
  if (!Array.isArray(d.stages) || d.stages.length === 0 || !d.stages.every((s) => s === 'general' || s === 'per-user')) {
    return `plugin ${d.name}: stages must list 'general' and/or 'per-user'`;
  }
  if (typeof d.configure !== 'function') return `plugin ${d.name}: configure must be a function`;
  if (typeof d.run !== 'function') return `plugin ${d.name}: run must be a function`;
  if (d.scope !== undefined && typeof d.scope !== 'function') return `plugin ${d.name}: scope must be a function`;
  if (d.teardown !== undefined && typeof d.teardown !== 'function') return `plugin ${d.name}: teardown must be a function`;
  return undefined;
}
