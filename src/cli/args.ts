// Argument parsing shared by the subcommands: --from A --to B [--to C ...] and flags.

import { describeError } from '../errors.js';
import { makeServices, pathsFrom, readSettings, type Services } from '../queue/services.js';

export interface EnvelopeArgs {
  readonly from: string;
  readonly to: string[];
  readonly rest: string[];
}

export class UsageError extends Error {}

export function envelopeArgs(args: string[]): EnvelopeArgs {
  let from: string | undefined;
  const to: string[] = [];
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const eq = a.indexOf('=');
    const [flag, inline] = a.startsWith('--') && eq > 0 ? [a.slice(0, eq), a.slice(eq + 1)] : [a, undefined];
    const value = () => {
      if (inline !== undefined) return inline;
      const v = args[++i];
      if (v === undefined) throw new UsageError(`${flag} needs a value`);
      return v;
    };
    if (flag === '--from') from = value();
    else if (flag === '--to') to.push(value());
    else rest.push(a);
  }
  if (from === undefined) throw new UsageError('--from is required (use --from "" for a bounce)');
  if (to.length === 0) throw new UsageError('at least one --to is required');
  return { from, to, rest };
}

/**
 * What `explain` and `test` start with: their --from/--to and the configuration. Returns the exit code
 * instead when either is wrong (2: usage, 1: configuration), having said why on stderr.
 */
export function envelopeCommand(name: string, args: string[], env: NodeJS.ProcessEnv): { parsed: EnvelopeArgs; services: Services } | number {
  let parsed: EnvelopeArgs;
  try {
    parsed = envelopeArgs(args);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`nqqueue ${name}: ${err.message}\n`);
    return 2;
  }
  try {
    const paths = pathsFrom(env);
    return { parsed, services: makeServices(paths, readSettings(paths), env.NQQFILE) };
  } catch (err) {
    process.stderr.write(`nqqueue ${name}: ${describeError(err)}\n`);
    return 1;
  }
}
