// Finding plugins by name: the built-ins, then the configured plugin directories (with permission checks),
// and turning a routing line's PARAMS into a configured, ready-to-run plugin. What the host gives every
// plugin is fixed here too: its own namespace of shared() keys, and for third-party plugins a safe
// default scope and the host version check.

import { statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';

import type { PluginRef } from '../config/cfb.js';
import { didYouMean } from '../config/did-you-mean.js';
import type { ConfigProblem } from '../config/problem.js';
import { parseDuration, parsePolicy, parseMaxsize, type Settings, type SettingsSection } from '../config/settings.js';
import type { Stage } from '../pipeline/types.js';
import { isServiceSection, serviceSectionProblems } from '../config/service-sections.js';
import { paramProblems, sectionEntryProblems } from './check-params.js';
import { currentUser, userName } from '../text/permission.js';
import { VERSION } from '../version.js';
import { checkDefinition, PLUGIN_NAME, type ParamItem, type Params, type PluginContext, type PluginDefinition } from './define.js';
import { satisfies } from './host-range.js';
import { importPlugin } from './package-resolve.js';
import { entryExists } from '../intake/files.js';

type Loader = () => Promise<{ default: PluginDefinition<any> }>;

/** Built-in plugins, imported only when a routing line names them. */
export const BUILTINS: Readonly<Record<string, Loader>> = {
  black: () => import('../plugins/black.js'),
  header: () => import('../plugins/header.js'),
  attach: () => import('../plugins/attach.js'),
  exec: () => import('../plugins/exec.js'),
  clamav: () => import('../plugins/clamav.js'),
  spamassassin: () => import('../plugins/spamassassin.js'),
  rspamd: () => import('../plugins/rspamd.js'),
  dspam: () => import('../plugins/dspam.js'),
  quarantine: () => import('../plugins/quarantine.js'),
  lists: () => import('../plugins/lists.js'),
};

export interface LoadedPlugin {
  readonly def: PluginDefinition<any>;
  /** 'built-in' or the file it was loaded from. */
  readonly source: string;
}

export class PluginLoadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PluginLoadError';
  }
}

/** No built-in and no file in the plugin directories has that name. */
export class PluginNotFoundError extends PluginLoadError {}

/** PARAMS a plugin does not take: every problem of the line, the first in the message. */
export class PluginParamsError extends PluginLoadError {
  constructor(
    readonly plugin: string,
    readonly problems: readonly string[],
  ) {
    super(`plugin ${plugin}: ${problems[0]}${problems.length > 1 ? ` (and ${problems.length - 1} more)` : ''}`);
  }
}

/** Refuse a plugin file or directory anyone but its owner (root or us) could change. */
export function checkPermissions(path: string): void {
  const st = statSync(path);
  const uid = process.geteuid?.() ?? 0;
  if (st.uid !== 0 && st.uid !== uid) {
    throw new PluginLoadError(
      `${path} is owned by ${userName(st.uid)}, not by ${uid === 0 ? '' : 'root or '}${currentUser()} that NQqueue runs as: refused (its owner could change the code NQqueue runs; chown it to root)`,
    );
  }
  if (st.mode & 0o022) {
    const mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
    throw new PluginLoadError(
      `${path} is group- or world-writable (mode ${mode}, owned by ${userName(st.uid)}; NQqueue runs as ${currentUser()}): refused (chmod go-w ${path})`,
    );
  }
}

/** A plugin that does not say what its result depends on is run for each recipient on its own. */
const PER_RECIPIENT = (_config: unknown, recipient: string): string => recipient;

/**
 * The definition as the host runs it: `shared()` keys live in the plugin's own namespace (two plugins
 * cannot collide on a key), and a third-party plugin without `scope` runs per recipient (its result is
 * never shared across recipients unless it says it may be). Built-ins declare `scope` where it matters.
 */
function hosted<C>(def: PluginDefinition<C>, thirdParty: boolean): PluginDefinition<C> {
  const namespace = `${def.name}\0`;
  const run = def.run;
  return Object.freeze({
    ...def,
    scope: def.scope ?? (thirdParty ? PER_RECIPIENT : undefined),
    run(ctx: PluginContext<C>) {
      const shared = ctx.shared;
      return run.call(def, { ...ctx, shared: <T>(key: string, work: () => Promise<T>) => shared<T>(namespace + key, work) });
    },
  });
}

/** Where a plugin handed to the test kit comes from (it has no file to check again). */
export const IN_MEMORY = 'in memory (nqqueue/testing)';

/** A third-party definition checked (declaration, host version) and wrapped as the host runs it. */
export function hostPlugin(def: unknown, path: string): LoadedPlugin {
  const problem = checkDefinition(def);
  if (problem) throw new PluginLoadError(`${path}: ${problem}`);
  const d = def as PluginDefinition<any>;
  checkHost(d, path);
  return { def: hosted(d, true), source: path };
}

/** The host version check: a plugin that declares `host` and does not fit this NQqueue is not loaded. */
function checkHost(def: PluginDefinition<unknown>, path: string): void {
  if (def.host === undefined) return;
  let ok: boolean;
  try {
    ok = satisfies(VERSION, def.host);
  } catch (err) {
    throw new PluginLoadError(`${path}: plugin ${def.name}: host: ${(err as Error).message}`);
  }
  if (!ok) {
    throw new PluginLoadError(
      `${path}: plugin ${def.name} ${def.version} needs NQqueue ${JSON.stringify(def.host)}, this is NQqueue ${VERSION}: use a version of the plugin made for it`,
    );
  }
}

/**
 * Check a loaded third-party plugin again (a long-lived process does so for every message): a directory
 * or file that became writable by others is refused, as the standalone program would refuse it.
 */
export function recheckSource(source: string): void {
  if (source === 'built-in' || source === IN_MEMORY) return;
  checkPermissions(dirname(source.endsWith('/index.js') ? dirname(source) : source));
  checkPermissions(source);
}


/**
 * The module URL of a plugin file as it is now. ES modules are cached by URL for the life of the
 * process: the version query makes a long-lived process that reloads its configuration import a changed
 * file afresh (modules it imports itself are still cached by their own URLs).
 */
export function moduleVersion(path: string): string {
  try {
    const st = statSync(path, { bigint: true });
    return `${st.mtimeNs}-${st.size}-${st.ino}`;
  } catch {
    return '-';
  }
}

export class PluginRegistry {
  private readonly cache = new Map<string, Promise<LoadedPlugin>>();
  /** Each third-party plugin file imported, with its version as imported. */
  private readonly loadedFiles = new Map<string, string>();

  constructor(private readonly pluginDirs: readonly string[]) {}

  /** The third-party plugin files imported so far, and the version of each as imported. */
  files(): ReadonlyMap<string, string> {
    return this.loadedFiles;
  }

  load(name: string): Promise<LoadedPlugin> {
    let p = this.cache.get(name);
    if (!p) {
      p = this.find(name);
      this.cache.set(name, p);
    }
    return p;
  }

  private async find(name: string): Promise<LoadedPlugin> {
    if (!PLUGIN_NAME.test(name)) throw new PluginLoadError(`invalid plugin name ${JSON.stringify(name)}`);
    const builtin = Object.hasOwn(BUILTINS, name) ? BUILTINS[name] : undefined;
    if (builtin) return { def: hosted((await builtin()).default, false), source: 'built-in' };
    for (const dir of this.pluginDirs) {
      for (const file of [`${name}.js`, `${name}.mjs`, join(name, 'index.js')]) {
        const path = join(dir, file);
        if (!entryExists(path)) continue;
        checkPermissions(dir);
        checkPermissions(path);
        let mod: Record<string, unknown>;
        const version = moduleVersion(path);
        this.loadedFiles.set(path, version);
        try {
          // `import ... from 'nqqueue'` in a plugin file outside any node_modules: this NQqueue's own API;
          // the version query makes a changed file a new module (a reload loads the new code).
          mod = await importPlugin(path, `${pathToFileURL(path).href}?v=${version}`);
        } catch (err) {
          throw new PluginLoadError(`plugin ${name} (${path}) failed to load: ${(err as Error).message}`);
        }
        const def = (mod.default ?? mod.plugin) as PluginDefinition<any>;
        const loaded = hostPlugin(def, path);
        if (loaded.def.name !== name) throw new PluginLoadError(`${path} declares plugin "${loaded.def.name}", not "${name}"`);
        return loaded;
      }
    }
    const where = this.pluginDirs.length ? ` or in ${this.pluginDirs.join(', ')}` : '';
    throw new PluginNotFoundError(`unknown plugin "${name}" (not built in${where})${didYouMean(name, Object.keys(BUILTINS))}`);
  }
}

/** The PARAMS of a routing line over the plugin's settings section. */
export function makeParams(raw: string, items: readonly ParamItem[], section: SettingsSection): Params {
  const words = items.filter((i) => i.key === undefined).map((i) => i.value);
  return Object.freeze({
    raw,
    items,
    words,
    get(key: string): string | undefined {
      for (let i = items.length - 1; i >= 0; i--) if (items[i]!.key === key) return items[i]!.value;
      return section.get(key);
    },
    all(key: string): readonly string[] {
      const own = items.filter((i) => i.key === key).map((i) => i.value);
      return own.length > 0 ? own : section.all(key);
    },
    has(word: string): boolean {
      return words.includes(word);
    },
  });
}

/** One plugin of one routing line, configured and ready to run. */
export interface ConfiguredPlugin {
  readonly def: PluginDefinition<any>;
  readonly source: string;
  readonly ref: PluginRef;
  readonly config: unknown;
  readonly params: Params;
  readonly timeoutMs: number;
  readonly onerror: 'tempfail' | 'accept' | 'reject';
  readonly maxsize: number | undefined;
}

export async function configurePlugin(
  registry: PluginRegistry,
  ref: PluginRef,
  stage: Stage,
  settings: Settings,
): Promise<ConfiguredPlugin> {
  return configureLoaded(await registry.load(ref.name), ref, stage, settings);
}

/** configurePlugin for a plugin already loaded (the test kit hands one in directly). */
export async function configureLoaded(loaded: LoadedPlugin, ref: PluginRef, stage: Stage, settings: Settings): Promise<ConfiguredPlugin> {
  const { def, source } = loaded;
  recheckSource(source);
  if (!def.stages.includes(stage)) {
    throw new PluginLoadError(`plugin ${ref.name} cannot run in the ${stage} stage (it runs in: ${def.stages.join(', ')})`);
  }
  const wrong = paramProblems(def, ref.items);
  if (wrong.length > 0) throw new PluginParamsError(ref.name, wrong);
  const section = settings.section(ref.name);
  const params = makeParams(ref.params, ref.items, section);
  const num = <T>(key: string, parse: (v: string) => T): T | undefined => {
    const v = params.get(key);
    if (v === undefined) return undefined;
    try {
      return parse(v);
    } catch (err) {
      throw new PluginLoadError(`plugin ${ref.name}: ${key}: ${(err as Error).message}`);
    }
  };
  const timeoutMs = num('timeout', parseDuration) ?? def.defaults?.timeoutMs ?? settings.pluginTimeoutMs;
  const onerror = num('onerror', parsePolicy) ?? def.defaults?.onerror ?? settings.onerror;
  const maxsize = num('maxsize', parseMaxsize) ?? def.defaults?.maxsize;
  let config: unknown;
  try {
    // Awaited: an async configure's value is the config, not its Promise (a run would otherwise read
    // undefined settings from it, and a rejection would go unhandled and take the process down).
    config = await def.configure({ params, settings, stage });
  } catch (err) {
    throw new PluginLoadError(`plugin ${ref.name}: ${(err as Error).message}`);
  }
  return Object.freeze({ def, source, ref, config, params, timeoutMs, onerror, maxsize });
}

/**
 * Every problem of the settings file's plugin sections: a section no plugin has, keys its plugin does
 * not take (or a global key written after a section), values its plugin refuses — at the line written.
 */
export async function sectionProblems(settings: Settings, registry: PluginRegistry): Promise<ConfigProblem[]> {
  const file = settings.file ?? '(settings)';
  const out: ConfigProblem[] = [];
  for (const section of settings.sections()) {
    if (isServiceSection(section.name)) {
      out.push(...serviceSectionProblems(section, file));
      continue;
    }
    let def: PluginDefinition<unknown>;
    try {
      def = (await registry.load(section.name)).def;
    } catch (err) {
      const message =
        err instanceof PluginNotFoundError
          ? `unknown section [${section.name}]: no plugin of that name${didYouMean(section.name, Object.keys(BUILTINS), (c) => `[${c}]`)}`
          : `[${section.name}]: ${(err as Error).message}`;
      out.push({ file, line: section.line, message });
      continue;
    }
    for (const p of sectionEntryProblems(def, section)) out.push({ file, ...p });
  }
  return out;
}
