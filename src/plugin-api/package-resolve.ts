// `import { definePlugin } from 'nqqueue'` in a plugin file that lives in a plugin_dir, outside any
// node_modules: Node cannot find the package by name there, so the host maps the bare specifiers
// `nqqueue` and `nqqueue/testing` to its own files. Every plugin then shares this NQqueue's one copy of
// the API (its error classes, its version). Installed only when a plugin that may import the package is
// loaded: on Node without module.registerHooks the hook runs in a loader thread that costs tens of
// milliseconds to start, which a message that needs no such plugin should not pay.

import { readFileSync } from 'node:fs';
import * as nodeModule from 'node:module';
import { pathToFileURL } from 'node:url';

let installed = false;

/** The bare specifiers the host answers for, and the files they resolve to. */
export function packageTargets(): Record<string, string> {
  return {
    nqqueue: new URL('../index.js', import.meta.url).href,
    'nqqueue/testing': new URL('../testing.js', import.meta.url).href,
  };
}

type ResolveResult = { url: string; shortCircuit?: boolean };
type SyncHooks = {
  resolve(specifier: string, context: unknown, next: (specifier: string, context: unknown) => ResolveResult): ResolveResult;
};

export function resolvePackageForPlugins(): void {
  if (installed) return;
  installed = true;
  const targets = packageTargets();
  // Node >= 22.15 / 23.5: synchronous hooks in this thread, nothing started.
  const registerHooks = (nodeModule as unknown as { registerHooks?: (hooks: SyncHooks) => unknown }).registerHooks;
  if (typeof registerHooks === 'function') {
    registerHooks({
      resolve(specifier, context, next) {
        return Object.hasOwn(targets, specifier) ? { url: targets[specifier]!, shortCircuit: true } : next(specifier, context);
      },
    });
    return;
  }
  // Node 22.13 and 22.14: the same resolve hook, run by Node's loader thread.
  nodeModule.register(new URL('./package-resolve-hook.js', import.meta.url), { data: { targets } });
}

/**
 * Whether a plugin file may reach `nqqueue`: it names it, or it imports a module other than Node's own
 * (a helper of its own that may import the package). Only a file that imports nothing but `node:`
 * modules is sure not to.
 */
function mayNeedPackage(path: string): boolean {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return true;
  }
  return text.includes('nqqueue') || /\b(?:from|import)\s*\(?\s*['"](?!node:)|\brequire\s*\(/.test(text);
}

/** Import a third-party plugin file, with `nqqueue` answered for it when it may need the package. */
export async function importPlugin(path: string, url = pathToFileURL(path).href): Promise<Record<string, unknown>> {
  if (!installed && mayNeedPackage(path)) resolvePackageForPlugins();
  return (await import(url)) as Record<string, unknown>;
}
