// `nqqueue check-config`: validate the settings file and every .cfb file (each plugin loaded and its PARAMS
// checked for the stage it is in); every problem as file:line: what is wrong; exit 1 on any.

import { readdirSync } from 'node:fs';
import { join } from 'node:path';

import { Cdb, readControlLines } from '../../config/locals.js';
import { readCfb } from '../../config/routing.js';
import { loadSettings, SettingsError, defaultSettings, type Settings } from '../../config/settings.js';
import { describeError } from '../../errors.js';
import { configurePlugin, PluginRegistry } from '../../plugin-api/load.js';
import { pathsFrom } from '../../queue/services.js';

export async function run(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  if (args.includes('--probe')) return (await import('../../ops/probe.js')).probeCommand(args, env, (e) => run([], e));
  const problems: string[] = [];
  let paths;
  try {
    paths = pathsFrom(env);
  } catch (err) {
    process.stderr.write(`nqqueue check-config: ${describeError(err)}\n`);
    return 1;
  }
  let settings: Settings = defaultSettings();
  try {
    settings = loadSettings(paths.controlDir);
  } catch (err) {
    problems.push(err instanceof SettingsError ? err.message : describeError(err));
  }
  try {
    readControlLines(join(paths.controlDir, 'rcpthosts'));
  } catch (err) {
    problems.push(`${join(paths.controlDir, 'rcpthosts')}:0: ${describeError(err)}`);
  }
  try {
    Cdb.open(join(paths.controlDir, 'morercpthosts.cdb'))?.close();
  } catch (err) {
    problems.push(`${join(paths.controlDir, 'morercpthosts.cdb')}:0: ${describeError(err)}`);
  }
  let names: string[] = [];
  try {
    names = readdirSync(paths.controlDir).filter((n) => n.endsWith('.cfb')).sort();
  } catch (err) {
    problems.push(`${paths.controlDir}:0: cannot list: ${describeError(err)}`);
  }
  const registry = new PluginRegistry(settings.pluginDirs);
  let lineCount = 0;
  for (const name of names) {
    const file = join(paths.controlDir, name);
    let cfb;
    try {
      cfb = readCfb(file);
    } catch (err) {
      problems.push(`${file}:0: ${describeError(err)}`);
      continue;
    }
    if (!cfb) continue;
    for (const p of cfb.problems) problems.push(`${p.file}:${p.line}: ${p.message}`);
    const stage = name === 'general.cfb' ? 'general' : 'per-user';
    for (const line of cfb.lines) {
      lineCount++;
      for (const ref of line.plugins) {
        try {
          await configurePlugin(registry, ref, stage, settings);
        } catch (err) {
          problems.push(`${file}:${line.line}: ${describeError(err)}`);
        }
      }
    }
  }
  if (problems.length > 0) {
    process.stderr.write(`${problems.join('\n')}\n`);
    process.stderr.write(`nqqueue check-config: ${problems.length} problem${problems.length === 1 ? '' : 's'}\n`);
    return 1;
  }
  process.stdout.write(
    `nqqueue check-config: OK (${settings.file ?? 'no settings file: defaults'}; ${names.length} .cfb file${names.length === 1 ? '' : 's'}, ${lineCount} line${lineCount === 1 ? '' : 's'})\n`,
  );
  return 0;
}
