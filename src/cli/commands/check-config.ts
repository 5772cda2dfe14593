// `nqqueue check-config`: validate the control directory, the settings file (its own lines and each
// plugin section against what the plugin declares) and every .cfb file (each plugin loaded and its
// PARAMS checked for the stage it is in). Every problem of every file in one run, in file and line
// order, as file:line: what is wrong; exit 1 on any.

import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

import { Cdb, controlDirProblem, loadLocals, readControlLines, type Locals } from '../../config/locals.js';
import { formatProblem, sortProblems, type ConfigProblem } from '../../config/problem.js';
import { readCfb } from '../../config/routing.js';
import { loadSettings, SettingsError, defaultSettings, SETTINGS_FILE, type Settings } from '../../config/settings.js';
import { describeError } from '../../errors.js';
import { configurePlugin, PluginParamsError, PluginRegistry, sectionProblems } from '../../plugin-api/load.js';
import { pathsFrom } from '../../queue/services.js';
import { visible } from '../../text/visible.js';
import { envOption, parseCommand, usageFailure, UsageError } from '../args.js';

/** What a routing file may not do that the admin likely meant it to (not an error: it may be on purpose). */
function fileNote(name: string, hasFallback: boolean, locals: Locals | undefined): string | undefined {
  if (name === 'general.cfb') {
    return hasFallback ? undefined : 'general.cfb has no fallback line: mail from senders that are not local, or not on a trusted submission, gets no general plugins';
  }
  const base = name.slice(0, -'.cfb'.length);
  if (base === 'nqqueue' || !base.includes('.') || !locals || locals.isLocal(`postmaster@${base}`)) return undefined;
  return `${name}: ${base} is not a local domain (rcpthosts, morercpthosts.cdb), so this file applies only as an NQQFILE`;
}

export const USAGE = `usage: nqqueue check-config [--probe] [--user NAME] [--env NAME=VALUE ...]
  Validates the settings file and every .cfb file of the control directory, loading each plugin and
  checking its PARAMS. Every problem as file:line: what is wrong; exit 1 on any, 0 when all is well.
  --probe           also check, as the user qmail-smtpd runs as, what a message will need
  --user NAME       the user to check as (with --probe)
  --env NAME=VALUE  a variable a tcprules line would set for qmail-smtpd; repeat for several
  -h, --help        this text
`;

const OPTIONS = {
  probe: { type: 'boolean' },
  user: { type: 'string' },
  env: { type: 'string', multiple: true },
} as const;

/** What the command line asked for, in the shape the checks take. */
export interface CheckOptions {
  readonly probe: boolean;
  readonly user?: string;
  /** The --env items: the environment a tcprules line would give, on top of this process's. */
  readonly env: Readonly<Record<string, string>>;
}

export async function run(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const parsed = parseCommand('check-config', USAGE, args, OPTIONS);
  if (typeof parsed === 'number') return parsed;
  let options: CheckOptions;
  try {
    options = { probe: parsed.values.probe === true, user: parsed.values.user as string | undefined, env: envOption(parsed.values.env) };
    if (options.user !== undefined && !options.probe) throw new UsageError('--user goes with --probe (check as that user)');
  } catch (err) {
    if (err instanceof UsageError) return usageFailure('check-config', USAGE, err.message);
    throw err;
  }
  return check(options, env);
}

/** The checks themselves, given what the command line asked for. */
export async function check(options: CheckOptions, processEnv: NodeJS.ProcessEnv): Promise<number> {
  // --probe: the checks below, as the user qmail-smtpd runs as, then what a message will need on top.
  if (options.probe) {
    const { probe } = await import('../../ops/probe.js');
    return probe({ user: options.user, env: options.env }, processEnv, (e) => check({ probe: false, env: {} }, e));
  }
  const env: NodeJS.ProcessEnv = { ...processEnv, ...options.env };
  const problems: ConfigProblem[] = [];
  const notes = new Set<string>();
  let paths;
  try {
    paths = pathsFrom(env);
  } catch (err) {
    process.stderr.write(`nqqueue check-config: ${visible(describeError(err))}\n`);
    return 1;
  }
  const dir = paths.controlDir;
  const missing = controlDirProblem(dir);
  if (missing) problems.push({ file: missing.path, line: 0, message: missing.message });

  let settings: Settings = defaultSettings();
  try {
    settings = loadSettings(dir);
  } catch (err) {
    problems.push(err instanceof SettingsError ? { file: err.file, line: err.line, message: err.detail } : { file: join(dir, SETTINGS_FILE), line: 0, message: describeError(err) });
  }
  problems.push(...settings.problems);
  // A password file that would be refused defers every message that needs the store: said here.
  if (settings.store !== 'sqlite' && settings.storePasswordFile !== undefined) {
    const { readPasswordFile } = await import('../../store/open.js');
    try {
      // Run as root, check-config cannot tell whose the file should be (serve runs as the home's owner).
      readPasswordFile(settings.storePasswordFile, { anyOwner: process.geteuid?.() === 0 });
    } catch (err) {
      problems.push({ file: settings.file ?? join(dir, SETTINGS_FILE), line: 0, message: describeError(err) });
    }
  }
  const registry = new PluginRegistry(settings.pluginDirs);
  const inSections = await sectionProblems(settings, registry);
  problems.push(...inSections);
  // Routing lines are configured without the section values already reported: a mistake is reported
  // once, where it was written, not again at every routing line that uses it.
  // Only key lines are left out: a section header stays, so its keys do not fall into the one before.
  const headers = new Set(settings.sections().map((sec) => sec.line));
  const badKeys = new Set(inSections.map((p) => p.line).filter((l) => !headers.has(l)));
  if (badKeys.size > 0) {
    try {
      settings = loadSettings(dir, badKeys);
    } catch {
      // reported above
    }
  }

  let noLocalDomain = false;
  if (missing?.path !== dir) {
    try {
      noLocalDomain = readControlLines(join(dir, 'rcpthosts')).length === 0 && !existsSync(join(dir, 'morercpthosts.cdb'));
    } catch (err) {
      if (!missing) problems.push({ file: join(dir, 'rcpthosts'), line: 0, message: describeError(err) });
    }
    try {
      Cdb.open(join(dir, 'morercpthosts.cdb'))?.close();
    } catch (err) {
      problems.push({ file: join(dir, 'morercpthosts.cdb'), line: 0, message: describeError(err) });
    }
  }
  let locals: Locals | undefined;
  if (!missing) {
    try {
      locals = loadLocals(dir);
    } catch {
      // reported above
    }
  }
  let names: string[] = [];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.cfb')).sort();
  } catch (err) {
    if (!missing) problems.push({ file: dir, line: 0, message: `cannot list: ${describeError(err)}` });
  }
  let lineCount = 0;
  for (const name of names) {
    const file = join(dir, name);
    let cfb;
    try {
      cfb = readCfb(file, { extensionSeparator: settings.extensionSeparator });
    } catch (err) {
      problems.push({ file, line: 0, message: describeError(err) });
      continue;
    }
    if (!cfb) continue;
    problems.push(...cfb.problems);
    notes.add(fileNote(name, cfb.fallback !== undefined, locals) ?? '');
    const stage = name === 'general.cfb' ? 'general' : 'per-user';
    for (const line of cfb.lines) {
      lineCount++;
      for (const ref of line.plugins) {
        try {
          const cp = await configurePlugin(registry, ref, stage, settings);
          if (cp.def.params === undefined) notes.add(`plugin ${ref.name} (${cp.source}) declares no PARAMS: only timeout, onerror and maxsize are accepted for it`);
        } catch (err) {
          if (err instanceof PluginParamsError) {
            for (const p of err.problems) problems.push({ file, line: line.line, message: `plugin ${err.plugin}: ${p}` });
          } else problems.push({ file, line: line.line, message: describeError(err) });
        }
      }
    }
  }
  // An empty rcpthosts (comments only) is not an error (an outgoing-only relay has one), but every
  // recipient with a domain is then remote: per-user files would never apply, in silence.
  const perUserFiles = names.filter((n) => n !== 'general.cfb');
  if (noLocalDomain && perUserFiles.length > 0) {
    notes.add(`${join(dir, 'rcpthosts')} lists no domain (and there is no morercpthosts.cdb): every recipient with a domain is remote and gets the general plugins only, so ${perUserFiles.join(', ')} never apply`);
  }
  notes.delete('');
  for (const n of notes) process.stdout.write(`nqqueue check-config: note: ${visible(n)}\n`);
  locals?.close();
  if (problems.length > 0) {
    process.stderr.write(`${sortProblems(problems).map((p) => visible(formatProblem(p))).join('\n')}\n`);
    process.stderr.write(`nqqueue check-config: ${problems.length} problem${problems.length === 1 ? '' : 's'}\n`);
    return 1;
  }
  process.stdout.write(
    `nqqueue check-config: OK (${settings.file ?? 'no settings file: defaults'}; ${names.length} .cfb file${names.length === 1 ? '' : 's'}, ${lineCount} line${lineCount === 1 ? '' : 's'})\n`,
  );
  return 0;
}
