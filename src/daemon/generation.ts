// One configuration generation of the daemon: the services its messages use, how many messages are
// still in flight with it, the problems a (re)load found in the configuration, and the teardown of its
// plugins once it is replaced and its last message is done.

import { readdirSync } from 'node:fs';
import { join } from 'node:path';

import type { CfbFile } from '../config/cfb.js';
import { formatProblem } from '../config/problem.js';
import { readCfb, type Routing } from '../config/routing.js';
import { describeError } from '../errors.js';
import { configurePlugin, type ConfiguredPlugin } from '../plugin-api/load.js';
import type { Services } from '../queue/services.js';
import { within } from '../within.js';

export class Generation {
  private inFlight = 0;
  private retired = false;
  private started = false;
  private finished!: () => void;
  /** Resolves once the plugins are torn down. */
  private readonly over = new Promise<void>((resolve) => (this.finished = resolve));
  /** Resolves once the (re)load's check has run: messages wait for it. */
  ready: Promise<void> = Promise.resolve();

  constructor(
    readonly services: Services,
    private readonly log: (line: string) => void,
  ) {}

  /** A message starts with this generation; call the function returned when it is answered. */
  enter(): () => void {
    this.inFlight++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.inFlight--;
      if (this.retired && this.inFlight === 0) this.teardown();
    };
  }

  /** Replaced (reload) or stopping: torn down as soon as no message uses it. */
  retire(): Promise<void> {
    this.retired = true;
    if (this.inFlight === 0) this.teardown();
    return this.over;
  }

  private teardown(): void {
    if (this.started) return;
    this.started = true;
    const plugins = new Set<ConfiguredPlugin>();
    for (const list of this.services.configured.values()) for (const cp of list) plugins.add(cp);
    void tearDown([...plugins], this.log).finally(() => {
      this.services.locals.close();
      this.finished();
    });
  }
}

/** How long a plugin's teardown may take before the daemon goes on without it. */
export const TEARDOWN_MS = 5000;

/**
 * Each plugin's teardown hook, once per configured value, all at once, each with a deadline: a hook
 * that fails or does not finish is logged, never thrown, and holds up neither the other plugins'
 * teardowns nor a stop (`serve` waits for them before it exits).
 */
export async function tearDown(plugins: readonly ConfiguredPlugin[], log: (line: string) => void): Promise<void> {
  const seen = new Set<unknown>();
  const runs: Promise<void>[] = [];
  for (const cp of plugins) {
    const hook = cp.def.teardown;
    if (typeof hook !== 'function' || seen.has(cp)) continue;
    seen.add(cp);
    const run = (async () => {
      try {
        await hook.call(cp.def, cp.config);
      } catch (err) {
        log(`nqqueue serve: plugin ${cp.def.name} (${cp.source}): teardown failed: ${describeError(err)}`);
      }
    })();
    runs.push(
      within(run, TEARDOWN_MS).then((r) => {
        if (r === undefined) log(`nqqueue serve: plugin ${cp.def.name} (${cp.source}): teardown did not finish within ${TEARDOWN_MS / 1000} s; going on without it`);
      }),
    );
  }
  await Promise.all(runs);
}

/** A domain's routing file, as the routing reads it for a recipient of that domain. */
const DOMAIN_FILE = /^[a-z0-9_-]+(\.[a-z0-9_-]+)*$/;

/** The routing's own parse of `<base>.cfb` (the lines messages will use), read through the routing. */
function liveFile(services: Services, base: string, file: string): CfbFile | undefined {
  let routing: Routing;
  if (base === 'general') {
    routing = services.routing;
    routing.general('', false);
  } else if (base === 'nqqueue' || DOMAIN_FILE.test(base)) {
    routing = services.routing;
    routing.userFile('', base === 'nqqueue' ? '' : base);
  } else {
    // Only a message whose environment names it (NQQFILE) uses it.
    routing = services.routingFor(base);
    routing.userFile('', '');
  }
  return routing.files().find((f) => f.file === file);
}

/**
 * Every problem of the configuration on disk, as `file:line: what is wrong`, in file and line order:
 * the error that made the services impossible to build (the settings file), or, with services, each
 * .cfb file's problems and each plugin a routing line names that cannot be loaded or configured. The
 * lines that configure are kept in the services' line cache, so messages do not configure them again.
 */
export async function configProblems(controlDir: string, services: Services | undefined, failure: unknown): Promise<string[]> {
  const problems: string[] = [];
  if (failure !== undefined) problems.push(...describeError(failure).split('\n').filter((l) => l.trim() !== ''));
  // The settings file's own lines and its plugin sections (each message is deferred with the first).
  if (services) problems.push(...(await services.problems()).map(formatProblem));
  let names: string[] = [];
  try {
    names = readdirSync(controlDir).filter((n) => n.endsWith('.cfb')).sort();
  } catch (err) {
    problems.push(`${controlDir}:0: cannot list: ${describeError(err)}`);
  }
  for (const name of names) {
    const file = join(controlDir, name);
    let cfb: CfbFile | undefined;
    try {
      cfb = readCfb(file);
    } catch (err) {
      problems.push(describeError(err));
      continue;
    }
    if (!cfb) continue;
    const found: { line: number; text: string }[] = cfb.problems.map((p) => ({ line: p.line, text: `${p.file}:${p.line}: ${p.message}` }));
    if (services && cfb.problems.length === 0) {
      let live: CfbFile | undefined;
      try {
        live = liveFile(services, name.slice(0, -'.cfb'.length), file);
      } catch (err) {
        found.push({ line: 0, text: `${file}:0: ${describeError(err)}` });
      }
      const stage = name === 'general.cfb' ? 'general' : 'per-user';
      for (const line of live?.lines ?? []) {
        if (services.configured.has(line)) continue;
        const list: ConfiguredPlugin[] = [];
        try {
          for (const ref of line.plugins) list.push(await configurePlugin(services.registry, ref, stage, services.settings));
          services.configured.set(line, list);
        } catch (err) {
          found.push({ line: line.line, text: `${file}:${line.line}: ${describeError(err)}` });
          await tearDown(list, () => {});
        }
      }
    }
    found.sort((a, b) => a.line - b.line);
    problems.push(...found.map((f) => f.text));
  }
  return problems;
}
