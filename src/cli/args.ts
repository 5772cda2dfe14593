// Argument parsing shared by the subcommands, on util.parseArgs: --help never runs a command, an unknown
// option or a stray argument is a usage error (exit 2, the command's usage on stderr).

import { parseArgs, type ParseArgsConfig } from 'node:util';

import { describeError } from '../errors.js';
import { makeServices, pathsFrom, readSettings, type Services } from '../queue/services.js';
import { visible } from '../text/visible.js';

export type OptionSpecs = NonNullable<ParseArgsConfig['options']>;

export class UsageError extends Error {}

export interface Parsed {
  readonly values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  readonly positionals: string[];
}

/** Usage error: the reason and the command's usage on stderr, exit 2 (the Unix habit). */
export function usageFailure(name: string, usage: string, reason: string): number {
  process.stderr.write(`nqqueue ${name}: ${visible(reason)}\n${usage}`);
  return 2;
}

/**
 * Parse a subcommand's arguments. Returns the parsed values, or the exit code when the command must not
 * run: 0 after `--help` (the usage on stdout), 2 on a usage error.
 * `positionals` is how many operands the command takes (a stray one more is an error).
 */
export function parseCommand(
  name: string,
  usage: string,
  args: string[],
  options: OptionSpecs,
  positionals: { min?: number; max?: number } = {},
): Parsed | number {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: { help: { type: 'boolean', short: 'h' }, ...options },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    // parseArgs' "unknown option" text ends with advice about '--' that only confuses here.
    return usageFailure(name, usage, (err as Error).message.replace(/\. To specify a positional argument[^]*$/, '').replace(/\s*\n\s*/g, ' '));
  }
  // --help wins over everything else on the line: asking for help never does the work.
  if (parsed.values.help) {
    process.stdout.write(usage);
    return 0;
  }
  const { min = 0, max = 0 } = positionals;
  if (parsed.positionals.length > max) {
    return usageFailure(name, usage, `unexpected argument ${JSON.stringify(parsed.positionals[max])}`);
  }
  if (parsed.positionals.length < min) return usageFailure(name, usage, 'missing argument');
  return { values: parsed.values, positionals: parsed.positionals };
}

/** `--env NAME=VALUE` items (repeatable) as a record; a malformed item is a usage error. */
export function envOption(items: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of (items as string[] | undefined) ?? []) {
    const eq = item.indexOf('=');
    const name = eq > 0 ? item.slice(0, eq) : '';
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new UsageError(`--env wants NAME=VALUE, not ${JSON.stringify(item)}`);
    out[name] = item.slice(eq + 1);
  }
  return out;
}

export interface EnvelopeArgs {
  readonly from: string;
  readonly to: string[];
}

export const ENVELOPE_OPTIONS = {
  from: { type: 'string' },
  to: { type: 'string', multiple: true },
} as const satisfies OptionSpecs;

export function envelopeArgs(values: Parsed['values']): EnvelopeArgs {
  const from = values.from as string | undefined;
  const to = (values.to as string[] | undefined) ?? [];
  if (from === undefined) throw new UsageError('--from is required (use --from "" for a bounce)');
  if (to.length === 0) throw new UsageError('at least one --to is required');
  return { from, to };
}

/**
 * What `explain` and `test` start with: their --from/--to and the configuration. Returns the exit code
 * instead when either is wrong (2: usage, 1: configuration), having said why on stderr.
 */
export function envelopeCommand(
  name: string,
  usage: string,
  parsed: Parsed,
  env: NodeJS.ProcessEnv,
): { parsed: EnvelopeArgs; services: Services } | number {
  let envelope: EnvelopeArgs;
  try {
    envelope = envelopeArgs(parsed.values);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    return usageFailure(name, usage, err.message);
  }
  try {
    const paths = pathsFrom(env);
    return { parsed: envelope, services: makeServices(paths, readSettings(paths), env.NQQFILE) };
  } catch (err) {
    process.stderr.write(`nqqueue ${name}: ${visible(describeError(err))}\n`);
    return 1;
  }
}
