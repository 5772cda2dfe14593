// Finding plugins by name: the built-ins, then the configured plugin directories (with permission checks),
// and turning a routing line's PARAMS into a configured, ready-to-run plugin.

import { lstatSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';

import type { PluginRef } from '../config/cfb.js';
import { parseDuration, parsePolicy, parseSize, type Settings, type SettingsSection } from '../config/settings.js';
import type { Stage } from '../pipeline/types.js';
import { checkDefinition, PLUGIN_NAME, type ParamItem, type Params, type PluginDefinition } from './define.js';

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

/** Refuse a plugin file or directory anyone but its owner (root or us) could change. */
export function checkPermissions(path: string): void {
  const st = statSync(path);
  const uid = process.geteuid?.() ?? 0;
  if (st.uid !== 0 && st.uid !== uid) throw new PluginLoadError(`${path} belongs to uid ${st.uid}: refused`);
  if (st.mode & 0o022) throw new PluginLoadError(`${path} is group- or world-writable: refused`);
}

/**
 * Check a loaded third-party plugin again (a long-lived process does so for every message): a directory
 * or file that became writable by others is refused, as the standalone program would refuse it.
 */
export function recheckSource(source: string): void {
  if (source === 'built-in') return;
  checkPermissions(dirname(source.endsWith('/index.js') ? dirname(source) : source));
  checkPermissions(source);
}

function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
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
    if (builtin) return { def: (await builtin()).default, source: 'built-in' };
    for (const dir of this.pluginDirs) {
      for (const file of [`${name}.js`, `${name}.mjs`, join(name, 'index.js')]) {
        const path = join(dir, file);
        if (!exists(path)) continue;
        checkPermissions(dir);
        checkPermissions(path);
        let mod: Record<string, unknown>;
        const version = moduleVersion(path);
        this.loadedFiles.set(path, version);
        try {
          mod = (await import(`${pathToFileURL(path).href}?v=${version}`)) as Record<string, unknown>;
        } catch (err) {
          throw new PluginLoadError(`plugin ${name} (${path}) failed to load: ${(err as Error).message}`);
        }
        const def = (mod.default ?? mod.plugin) as PluginDefinition<any>;
        const problem = checkDefinition(def);
        if (problem) throw new PluginLoadError(`${path}: ${problem}`);
        if (def.name !== name) throw new PluginLoadError(`${path} declares plugin "${def.name}", not "${name}"`);
        return { def, source: path };
      }
    }
    const where = this.pluginDirs.length ? ` or in ${this.pluginDirs.join(', ')}` : '';
    throw new PluginLoadError(`unknown plugin "${name}" (not built in${where})`);
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
  const { def, source } = await registry.load(ref.name);
  recheckSource(source);
  if (!def.stages.includes(stage)) {
    throw new PluginLoadError(`plugin ${ref.name} cannot run in the ${stage} stage (it runs in: ${def.stages.join(', ')})`);
  }
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
  const maxsize = num('maxsize', parseSize) ?? def.defaults?.maxsize;
  let config: unknown;
  try {
    config = def.configure({ params, settings, stage });
  } catch (err) {
    throw new PluginLoadError(`plugin ${ref.name}: ${(err as Error).message}`);
  }
  return Object.freeze({ def, source, ref, config, params, timeoutMs, onerror, maxsize });
}
