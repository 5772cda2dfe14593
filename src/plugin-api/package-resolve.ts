// `import { definePlugin } from 'nqqueue'` in a plugin file that lives in a plugin_dir, outside any
// node_modules: Node cannot find the package by name there, so the host maps the bare specifiers
// `nqqueue` and `nqqueue/testing` to its own files. Every plugin then shares this NQqueue's one copy of
// the API (its error classes, its version). Installed only when a third-party plugin is first loaded,
// so a message that needs none pays nothing.

import * as nodeModule from 'node:module';

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
  // Node 20.6+: the same resolve hook, run by Node's loader thread.
  nodeModule.register(new URL('./package-resolve-hook.js', import.meta.url), { data: { targets } });
}
