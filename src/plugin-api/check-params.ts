// What is written for a plugin (PARAMS items on a routing line, keys in its settings section) against
// what the plugin declares it takes: unknown keys and words, a wrong case, a key given twice, a value
// the plugin's check refuses — each with a "did you mean".

import { COMMON_PLUGIN_KEYS, GLOBAL_KEYS, type SettingsEntry } from '../config/settings.js';
import { didYouMean } from '../config/did-you-mean.js';
import type { ParamItem, PluginDefinition } from './define.js';

const COMMON = Object.keys(COMMON_PLUGIN_KEYS);
const KEY_LIKE = /^([A-Za-z_][A-Za-z0-9_]*)=/;

function undeclared(def: PluginDefinition<unknown>): string {
  return def.params === undefined ? ` (plugin ${def.name} declares no PARAMS: it takes only ${COMMON.join(', ')})` : '';
}

function knownKeys(def: PluginDefinition<unknown>): string[] {
  return [...COMMON, ...Object.keys(def.params?.keys ?? {})];
}

/** A key's value checked as the plugin (or the common keys) would: the problem text, or undefined. */
function valueProblem(def: PluginDefinition<unknown>, key: string, value: string): string | undefined {
  const common = Object.hasOwn(COMMON_PLUGIN_KEYS, key) ? COMMON_PLUGIN_KEYS[key]!.parse : undefined;
  const check = common ?? def.params?.keys?.[key]?.check;
  if (!check) return undefined;
  try {
    check(value);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/** `key=value: why`, unless the plugin's message already starts with the key. */
function withKey(key: string, value: string, why: string): string {
  return why.startsWith(`${key}=`) ? why : `${key}=${value}: ${why}`;
}

function isList(def: PluginDefinition<unknown>, key: string): boolean {
  return def.params?.keys?.[key]?.list === true;
}

/** Every problem of one routing line's PARAMS for this plugin, in the order written. */
export function paramProblems(def: PluginDefinition<unknown>, items: readonly ParamItem[]): string[] {
  const out: string[] = [];
  const keys = knownKeys(def);
  const seen = new Set<string>();
  const spec = def.params?.words;
  let wordIndex = 0;
  for (const item of items) {
    if (item.key !== undefined) {
      const key = item.key;
      if (!keys.includes(key)) {
        out.push(`unknown key "${key}"${didYouMean(key, keys, (c) => `"${c}="`)}${undeclared(def)}`);
        continue;
      }
      if (seen.has(key) && !isList(def, key)) out.push(`"${key}" is given twice`);
      seen.add(key);
      const bad = valueProblem(def, key, item.value);
      if (bad) out.push(withKey(key, item.value, bad));
      continue;
    }
    const w = item.value;
    const index = wordIndex++;
    // `Hits=5` is not parsed as a key (keys are lower-case): say so rather than take it as a word.
    const keyLike = KEY_LIKE.exec(w);
    if (keyLike && keyLike[1] !== keyLike[1]!.toLowerCase() && keys.includes(keyLike[1]!.toLowerCase())) {
      out.push(`"${w}": keys are lower-case (${keyLike[1]!.toLowerCase()}=${w.slice(keyLike[0].length)})`);
      continue;
    }
    if (spec === true) continue;
    if (typeof spec === 'function') {
      try {
        spec(w, index);
      } catch (err) {
        out.push(`${JSON.stringify(w)}: ${(err as Error).message}`);
      }
      continue;
    }
    const list = spec ?? [];
    if (list.includes(w)) continue;
    if (keys.includes(w)) {
      out.push(`"${w}" needs a value (${w}=...)`);
      continue;
    }
    const hint = didYouMean(w, list) || didYouMean(w, keys, (c) => `"${c}=..."`);
    const takes = list.length > 0 ? ` (it takes the words: ${list.join(', ')})` : def.params === undefined ? '' : ` (plugin ${def.name} takes no bare words)`;
    out.push(`unknown word ${JSON.stringify(w)}${hint}${hint ? '' : takes}${undeclared(def)}`);
  }
  return out;
}

/** Every problem of a plugin's settings section, each with the line it is on. */
export function sectionEntryProblems(def: PluginDefinition<unknown>, section: { name: string; line: number; entries(): readonly SettingsEntry[] }): { line: number; message: string }[] {
  const out: { line: number; message: string }[] = [];
  const keys = knownKeys(def);
  const first = new Map<string, number>();
  for (const e of section.entries()) {
    if (!keys.includes(e.key)) {
      if (Object.hasOwn(GLOBAL_KEYS, e.key)) {
        out.push({
          line: e.line,
          message: `"${e.key}" is a global setting, but here it is in [${section.name}] (from line ${section.line}): move it above the first [section]`,
        });
      } else {
        out.push({ line: e.line, message: `unknown key "${e.key}" in [${section.name}]${didYouMean(e.key, keys)}${undeclared(def)}` });
      }
      continue;
    }
    const prev = first.get(e.key);
    if (prev !== undefined && !isList(def, e.key)) {
      out.push({ line: e.line, message: `"${e.key}" is set twice in [${section.name}] (first on line ${prev})` });
      continue;
    }
    if (prev === undefined) first.set(e.key, e.line);
    // The common keys' values were checked when the file was read.
    if (!Object.hasOwn(COMMON_PLUGIN_KEYS, e.key)) {
      const bad = valueProblem(def, e.key, e.value);
      if (bad) out.push({ line: e.line, message: withKey(e.key, e.value, bad) });
    }
  }
  return out;
}
