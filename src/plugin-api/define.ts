// The plugin contract: what a plugin declares, what it is given, what it returns.

import type { ClientInfo, Envelope, MessageView, Outcome, Result, Stage } from '../pipeline/types.js';
import type { Settings } from '../config/settings.js';
import { HostRangeError, parseHostRange } from './host-range.js';

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
  /** The routing lines that chose the chains: the general line, and this recipient's (per-user stage). */
  readonly rules: { readonly general?: { readonly file: string; readonly line: number }; readonly user?: { readonly file: string; readonly line: number } };
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
   * Lets plugins scan once for several recipients whose settings allow it. Keys are the plugin's own:
   * the host keeps each plugin's keys apart, so two plugins cannot collide on one.
   */
  shared<T>(key: string, work: () => Promise<T>): Promise<T>;
  /**
   * Run `action` at the commit point: the message is to be accepted, and nothing has been handed to
   * qmail-queue yet (standalone: before exit 0; daemon mode: before the client is told to queue
   * anything). A plugin that keeps something instead of delivering it (the quarantine) makes it durable
   * and visible here, so that a crash from then on cannot lose it. A throw defers the message (71,
   * whatever the plugin's failure policy; the error's text goes to the log) and every onSettled action
   * is told `false`. A string returned is a note for the log line. Not run for a message that is
   * refused or deferred by the decision, nor in a dry run.
   */
  onCommit(action: () => void | string | Promise<void | string>): void;
  /**
   * Run `action` once the fate of the message is final: `false` when it was refused or deferred — also
   * after the commit point (qmail-queue failed, another commit failed): undo what onCommit kept — and
   * in a dry run; `true` when it was accepted (handed to qmail-queue or the retry spool), and when its
   * fate cannot be known (the daemon's client went away while copies were being queued): what was
   * committed then stays, at worst one copy too many, never one too few.
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

/** One key a plugin takes in PARAMS (`key=value`) and in its settings section. */
export interface ParamKey {
  /** The key may be given several times (backend addresses, a list); otherwise twice is an error. */
  readonly list?: boolean;
  /** Check one value; throw (PluginConfigError) to refuse it. Runs where the value was written. */
  readonly check?: (value: string) => void;
  /** What the key means: the text of the manual page (nqqueue-plugins(7)). Optional for third-party plugins. */
  readonly doc?: string;
  /** The value in effect when the key is not written, as it would be written (absent: none). */
  readonly default?: string;
}

/**
 * What a plugin takes besides the keys every plugin understands (timeout, onerror, maxsize). Anything
 * else on a routing line or in its `[section]` is an error with the file and line, before any message
 * is read.
 */
export interface ParamsSpec {
  readonly keys?: Readonly<Record<string, ParamKey>>;
  /**
   * Bare words (items without '='): the exact words it takes (`['pass']`), or a check of each word
   * (throw to refuse), or `true` for any word (the plugin's `configure` checks them). Absent: none.
   */
  readonly words?: readonly string[] | ((word: string, index: number) => void) | true;
  /**
   * What the bare words mean, for the manual page: for a list of words, each word's meaning
   * (`{ pass: 'record the verdict, do not act on it' }`); for a function or `true`, one text saying what
   * the words are. Optional for third-party plugins.
   */
  readonly wordsDoc?: string | Readonly<Record<string, string>>;
}

export interface PluginDefinition<C = unknown> {
  readonly name: string;
  readonly version: string;
  readonly stages: readonly Stage[];
  /** What the plugin does, in a sentence or a few: the text of the manual page. Optional for third-party plugins. */
  readonly description?: string;
  /**
   * The PARAMS keys and bare words it takes. A plugin that declares nothing takes only the common keys
   * (timeout, onerror, maxsize): anything else written for it is an error.
   */
  readonly params?: ParamsSpec;
  /**
   * May an earlier plugin's accept (`skip`: an allow list entry) keep this one from running? Only spam
   * checks say true; a virus check, and any plugin that does not say, always runs: the host enforces
   * it, not the good will of the plugin that asks.
   */
  readonly skippable?: boolean;
  /**
   * How many of its runs may be in flight at once when the `concurrency` setting is `auto` (the
   * default): what its backend takes at once with profit, and what the host's memory allows (each run
   * in flight holds what the plugin keeps while it runs). A plugin that does not say gets
   * DEFAULT_CONCURRENCY. A whole number from 1 to 1024.
   */
  readonly concurrency?: number;
  /** Defaults for the keys every plugin understands, when neither PARAMS nor the settings file set them. */
  readonly defaults?: { readonly timeoutMs?: number; readonly maxsize?: number; readonly onerror?: 'tempfail' | 'accept' | 'reject' };
  /**
   * Turn PARAMS (and the plugin's settings section) into a ready-to-run value, once per routing line.
   * Throw PluginConfigError for bad PARAMS. It may be async (read a file, open a connection): the
   * value is awaited before the plugin runs, and a rejection is a configuration error like a throw.
   */
  configure(input: ConfigureInput): C | Promise<C>;
  /**
   * Per-user stage: what the result depends on besides the message and the config. Return undefined
   * when the result does not depend on who the recipient is (then recipients with identical chains
   * share one run); return e.g. the recipient address when it does. A third-party plugin that leaves
   * it out runs once per recipient: sharing a result is something a plugin must say it allows.
   */
  scope?(config: C, recipient: string): string | undefined;
  run(ctx: PluginContext<C>): Promise<Outcome>;
  /**
   * The NQqueue versions this plugin works with, as a semver range (`'>=0.1 <1'`, `'^0.1'`). A host
   * outside it refuses to load the plugin, with a text that says both versions. Unset: any.
   */
  readonly host?: string;
  /**
   * Release what `configure` opened (sockets, pools, timers) for this config. A long-lived process
   * (`nqqueue serve`) calls it when a reload replaces the configuration — once the messages in flight
   * with it are done — and when it stops. The one-shot program exits instead.
   */
  teardown?(config: C): void | Promise<void>;
}

export const PLUGIN_NAME = /^[a-z][a-z0-9_-]{0,63}$/;
/** Runs of a plugin that declares no `concurrency` in flight at once (the fan-out bound of `concurrency = auto`). */
export const DEFAULT_CONCURRENCY = 8;

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
  if (d.description !== undefined && typeof d.description !== 'string') return `plugin ${d.name}: description must be a string`;
  if (typeof d.configure !== 'function') return `plugin ${d.name}: configure must be a function`;
  if (typeof d.run !== 'function') return `plugin ${d.name}: run must be a function`;
  if (d.scope !== undefined && typeof d.scope !== 'function') return `plugin ${d.name}: scope must be a function`;
  if (d.host !== undefined) {
    try {
      parseHostRange(d.host);
    } catch (err) {
      if (!(err instanceof HostRangeError)) throw err;
      return `plugin ${d.name}: host: ${err.message}`;
    }
  }
  if (d.params !== undefined) {
    const p = d.params as Partial<ParamsSpec> | null;
    if (!p || typeof p !== 'object') return `plugin ${d.name}: params must be an object ({ keys, words })`;
    if (p.keys !== undefined) {
      if (!p.keys || typeof p.keys !== 'object') return `plugin ${d.name}: params.keys must be an object`;
      for (const [k, spec] of Object.entries(p.keys)) {
        if (!/^[a-z_][a-z0-9_]*$/.test(k)) return `plugin ${d.name}: params key ${JSON.stringify(k)} is not a lower-case name`;
        if (!spec || typeof spec !== 'object' || (spec.check !== undefined && typeof spec.check !== 'function')) {
          return `plugin ${d.name}: params.keys.${k} must be an object ({ list?, check?, doc?, default? })`;
        }
        if (spec.doc !== undefined && typeof spec.doc !== 'string') return `plugin ${d.name}: params.keys.${k}.doc must be a string`;
        if (spec.default !== undefined && typeof spec.default !== 'string') return `plugin ${d.name}: params.keys.${k}.default must be a string`;
      }
    }
    const wd = p.wordsDoc;
    if (wd !== undefined && typeof wd !== 'string' && !(wd && typeof wd === 'object' && !Array.isArray(wd) && Object.values(wd).every((x) => typeof x === 'string'))) {
      return `plugin ${d.name}: params.wordsDoc must be a string or an object of strings (word: meaning)`;
    }
    if (wd && typeof wd === 'object' && Array.isArray(p.words)) {
      const stray = Object.keys(wd).find((x) => !(p.words as readonly string[]).includes(x));
      if (stray !== undefined) return `plugin ${d.name}: params.wordsDoc documents ${JSON.stringify(stray)}, which is not one of its words`;
    }
    const w = p.words;
    if (w !== undefined && w !== true && typeof w !== 'function' && !(Array.isArray(w) && w.every((x) => typeof x === 'string'))) {
      return `plugin ${d.name}: params.words must be a list of words, a function or true`;
    }
  }
  if (d.skippable !== undefined && typeof d.skippable !== 'boolean') return `plugin ${d.name}: skippable must be true or false`;
  if (d.concurrency !== undefined && !(Number.isInteger(d.concurrency) && d.concurrency >= 1 && d.concurrency <= 1024)) {
    return `plugin ${d.name}: concurrency must be a whole number from 1 to 1024`;
  }
  if (d.teardown !== undefined && typeof d.teardown !== 'function') return `plugin ${d.name}: teardown must be a function`;
  return undefined;
}
