// Which modules a process loads: an --import hook (node:module registerHooks) that appends every URL
// it resolves to the file named by NQQ_TEST_MODULES — and, with `builtins`, the built-ins the process
// loaded (process.moduleLoadList) when it exits. For tests that show what a path does not load.

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

export interface ModuleRecorder {
  /** The environment that makes a process record what it loads into `list`. */
  env(list: string): Record<string, string>;
  /** What a process recorded into `list`, one URL (or `builtin: NAME`) each. */
  read(list: string): string[];
}

export function moduleRecorder(dir: string, o: { builtins?: boolean } = {}): ModuleRecorder {
  const hook = join(dir, 'modules-hook.mjs');
  writeFileSync(
    hook,
    [
      "import { registerHooks } from 'node:module';",
      "import { appendFileSync } from 'node:fs';",
      'const out = process.env.NQQ_TEST_MODULES;',
      'registerHooks({ resolve(spec, ctx, next) { const r = next(spec, ctx); appendFileSync(out, r.url + "\\n"); return r; } });',
      ...(o.builtins ? ["process.on('exit', () => appendFileSync(out, process.moduleLoadList.map((m) => 'builtin: ' + m).join('\\n') + '\\n'));"] : []),
      '',
    ].join('\n'),
  );
  return {
    env: (list) => ({ NODE_OPTIONS: `--import=${pathToFileURL(hook).href}`, NQQ_TEST_MODULES: list }),
    read: (list) => readFileSync(list, 'utf8').split('\n').filter(Boolean),
  };
}
