// What a message is processed with: paths from the environment, settings, routing, plugins, the queue.
// Built once per process (one-shot) or once per configuration generation (daemon).

import { statSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';

import { setHealthDir } from '../clients/pool.js';
import type { CfbLine } from '../config/cfb.js';

import { checkControlDir, lazyLocals, type Locals } from '../config/locals.js';
import { formatProblem, sortProblems, type ConfigProblem } from '../config/problem.js';
import { makeRouting, type Routing } from '../config/routing.js';
import { loadSettings, SettingsError, type Settings } from '../config/settings.js';
import { NqqError } from '../errors.js';
import { QmailQueue, type QueueSink } from '../delivery/qmail-queue.js';
import { Spool } from '../delivery/spool.js';
import { ensurePrivateDir } from '../intake/workdir.js';
import { PluginRegistry, sectionProblems, type ConfiguredPlugin } from '../plugin-api/load.js';
import type { ClientInfo } from '../pipeline/types.js';

export interface Paths {
  readonly controlDir: string;
  readonly home: string;
  readonly qmailQueue: string;
}

function absolute(name: string, value: string | undefined, fallback: string): string {
  const v = value === undefined || value === '' ? fallback : value;
  if (!isAbsolute(v)) throw new NqqError('NQQ_ERR_CONFIG', `${name} must be an absolute path, not ${JSON.stringify(v)}`);
  return v;
}

export function pathsFrom(env: Readonly<Record<string, string | undefined>>): Paths {
  return {
    controlDir: absolute('NQQUEUE_CONTROLDIR', env.NQQUEUE_CONTROLDIR, '/var/qmail/control'),
    home: absolute('NQQUEUE_HOME', env.NQQUEUE_HOME, '/var/qmail/nqqueue'),
    qmailQueue: absolute('NQQUEUE_QMAILQUEUE', env.NQQUEUE_QMAILQUEUE, '/var/qmail/bin/qmail-queue'),
  };
}

export interface Services {
  readonly paths: Paths;
  readonly settings: Settings;
  readonly routing: Routing;
  readonly locals: Locals;
  readonly registry: PluginRegistry;
  readonly sink: QueueSink;
  readonly spool: Spool;
  /** Every routing made so far. */
  routings(): readonly Routing[];
  /** The routing for a message whose environment names NQQFILE (cached per name; throws a config error for a bad name). */
  routingFor(nqqfile: string | undefined): Routing;
  /** Configured plugins per routing line (a long-lived process keeps them across messages). */
  readonly configured: Map<CfbLine, ConfiguredPlugin[]>;
  /** The private working directory ($NQQUEUE_HOME/tmp), created on first use. */
  workDir(): string;
  /** Every problem of the settings file — its own lines and its plugin sections' — in line order. */
  problems(): Promise<readonly ConfigProblem[]>;
  /**
   * Resolves when the control directory and rcpthosts are there and the settings file has no problem;
   * else rejects (NQQ_ERR_CONTROL_MISSING, or NQQ_ERR_CONFIG with the first problem's file:line).
   */
  ready(): Promise<void>;
}

/**
 * The settings of the control directory. Problems in the file are in `settings.problems` (and with the
 * plugin sections' in `Services.problems()`); a file that cannot be read is a configuration error.
 */
export function readSettings(paths: Paths): Settings {
  try {
    return loadSettings(paths.controlDir);
  } catch (err) {
    if (err instanceof SettingsError) throw new NqqError('NQQ_ERR_CONFIG', err.message);
    throw err;
  }
}

/** Under $NQQUEUE_HOME: the backend addresses taken out for a while, one small file each. */
export const BACKENDS_DIR = 'backends';

export function makeServices(
  paths: Paths,
  settings: Settings,
  nqqfile: string | undefined,
  sink?: QueueSink,
  onWorkDir?: (dir: string) => void,
): Services {
  let work: string | undefined;
  // Backend addresses taken out after a failure are known to every process of the host (clients/pool.ts).
  setHealthDir(join(paths.home, BACKENDS_DIR));
  const cfbOptions = { extensionSeparator: settings.extensionSeparator };
  const routing = makeRouting(paths.controlDir, nqqfile, cfbOptions);
  const routings = new Map<string, Routing>([[nqqfile ?? '', routing]]);
  const registry = new PluginRegistry(settings.pluginDirs);
  let problems: Promise<readonly ConfigProblem[]> | undefined;
  const allProblems = () => (problems ??= sectionProblems(settings, registry).then((more) => sortProblems([...settings.problems, ...more])));
  let ready: Promise<void> | undefined;
  return {
    paths,
    settings,
    routing,
    problems: allProblems,
    ready() {
      ready ??= (async () => {
        // Checked up front, not only when a recipient is looked up: a message with no local address to
        // look up (a bounce to nobody) is deferred too.
        checkControlDir(paths.controlDir);
        const list = await allProblems();
        if (list[0]) throw new NqqError('NQQ_ERR_CONFIG', formatProblem(list[0]));
      })();
      return ready;
    },
    routingFor(name) {
      const key = name ?? '';
      let r = routings.get(key);
      if (!r) {
        r = makeRouting(paths.controlDir, name, cfbOptions);
        routings.set(key, r);
      }
      return r;
    },
    routings: () => [...routings.values()],
    locals: lazyLocals(paths.controlDir),
    registry,
    sink: sink ?? new QmailQueue(paths.qmailQueue, settings.queueTimeoutMs),
    spool: new Spool(join(paths.home, 'spool')),
    configured: new Map(),
    workDir() {
      if (work === undefined) {
        try {
          ensurePrivateDir(paths.home);
          work = ensurePrivateDir(join(paths.home, 'tmp'));
        } catch (err) {
          throw new NqqError('NQQ_ERR_CONFIG', `working directory: ${(err as Error).message}`);
        }
        onWorkDir?.(work);
      }
      return work;
    },
  };
}

const CONTROL_FILES = ['nqqueue.conf', 'rcpthosts', 'morercpthosts.cdb', 'me', 'general.cfb', 'nqqueue.cfb'];

/** What a configuration file looks like on disk now ('-' when it does not exist). */
export function fingerprint(path: string): string {
  try {
    // A missing file is the usual case (morercpthosts.cdb, a .cfb not written): no error made for it.
    const st = statSync(path, { bigint: true, throwIfNoEntry: false });
    return st ? `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}` : '-';
  } catch {
    return '-';
  }
}

/**
 * The files whose change means a new configuration: the control directory itself (files created,
 * removed or renamed into place change it), the fixed control files, and every file read from it.
 */
export function configFiles(services: Services): string[] {
  const read = services.routings().flatMap((r) => r.files().map((f) => f.file));
  return [...controlFiles(services.paths.controlDir), ...new Set(read)];
}

/**
 * The control directory and its fixed files, joined once per directory: this runs for every message,
 * and path.join there is the one function of an idle daemon's path hot enough to be optimised by
 * V8's top tier, whose compiler then takes megabytes of resident memory to no gain.
 */
let fixed: { dir: string; files: readonly string[] } | undefined;
function controlFiles(dir: string): readonly string[] {
  if (fixed?.dir !== dir) fixed = { dir, files: [dir, ...CONTROL_FILES.map((n) => join(dir, n))] };
  return fixed.files;
}

export const CLIENT_ENV = [
  'PROTO',
  'TCPREMOTEIP',
  'TCPREMOTEHOST',
  'TCPREMOTEINFO',
  'TCPREMOTEPORT',
  'TCPLOCALIP',
  'TCPLOCALHOST',
  'TCPLOCALPORT',
  'RELAYCLIENT',
  'SMTPAUTHUSER',
  'AUTHUSER',
  'NQQFILE',
];

/** qmail-smtpd's own Received line: `Received: from HOST (HELO name) (...)`; HELO = HOST when absent. */
export function heloFrom(head: Buffer): string | undefined {
  const first = head.subarray(0, 2048).toString('latin1').split('\n', 1)[0]!;
  const m = /^Received: from (\S+)(?: \(HELO ([^)\s]*)\))? \(/.exec(first);
  if (!m) return undefined;
  return m[2] ?? m[1];
}

export function clientFrom(env: Readonly<Record<string, string | undefined>>, helo: string | undefined): ClientInfo {
  const pick: Record<string, string> = {};
  for (const k of CLIENT_ENV) {
    const v = env[k];
    if (v !== undefined) pick[k] = v;
  }
  const nonEmpty = (v: string | undefined) => (v === undefined || v === '' ? undefined : v);
  return Object.freeze({
    ip: nonEmpty(env.TCPREMOTEIP),
    host: nonEmpty(env.TCPREMOTEHOST),
    localIp: nonEmpty(env.TCPLOCALIP),
    localHost: nonEmpty(env.TCPLOCALHOST),
    helo,
    relayClient: env.RELAYCLIENT,
    authUser: nonEmpty(env.SMTPAUTHUSER) ?? nonEmpty(env.AUTHUSER),
    proto: nonEmpty(env.PROTO),
    env: Object.freeze(pick),
  });
}
