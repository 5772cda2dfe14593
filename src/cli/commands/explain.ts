// `nqqueue explain --from A --to B ... [--env NAME=VALUE ...]`: which file and line apply to the sender
// and each recipient, by which rule, and the plugin chain that would run, with where each plugin comes
// from. Scans nothing. The client environment (RELAYCLIENT, SMTPAUTHUSER, TCPREMOTEIP ...) is the one
// explain runs in, with --env on top, as a tcprules line would set it.

import type { CfbMatch } from '../../config/cfb.js';
import { formatProblem } from '../../config/problem.js';
import { describeError } from '../../errors.js';
import { configurePlugin } from '../../plugin-api/load.js';
import { toAddress } from '../../qmail/envelope.js';
import { submissionTrust } from '../../qmail/submission.js';
import type { Services } from '../../queue/services.js';
import { envelopeCommand } from '../args.js';

function describeMatch(m: CfbMatch, address: string): string {
  const line = m.line;
  const head = `    ${line.file}:${line.line}  pattern ${line.pattern === '' ? '(fallback)' : line.pattern} (${line.kind})`;
  if (m.rule === 'extension') return `${head}, by the extension rule: <${address}> has no line of its own, <${m.via}> has`;
  return head;
}

async function chain(m: CfbMatch | undefined, address: string, stage: 'general' | 'per-user', services: Services): Promise<string[]> {
  if (!m) return ['    no line applies: no plugins'];
  const out = [describeMatch(m, address)];
  if (m.line.plugins.length === 0) out.push('    (empty chain: no plugins)');
  for (const ref of m.line.plugins) {
    const label = ref.params ? `${ref.name}=${ref.params}` : ref.name;
    try {
      const cp = await configurePlugin(services.registry, ref, stage, services.settings);
      out.push(`    - ${label}  [${cp.source}, v${cp.def.version}, timeout ${cp.timeoutMs} ms, onerror ${cp.onerror}]`);
    } catch (err) {
      out.push(`    - ${label}  ERROR: ${describeError(err)} (mail would be deferred)`);
    }
  }
  return out;
}

/** `--env NAME=VALUE` items among the arguments (repeatable); a string is a usage error. */
export function envOptions(args: readonly string[]): Record<string, string> | string {
  const out: Record<string, string> = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    let item: string | undefined;
    if (a === '--env') item = args[++i];
    else if (a.startsWith('--env=')) item = a.slice('--env='.length);
    else continue;
    const eq = item?.indexOf('=') ?? -1;
    if (item === undefined || eq <= 0 || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(item.slice(0, eq))) return '--env needs NAME=VALUE';
    out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
}

export async function run(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const setup = envelopeCommand('explain', args, env);
  if (typeof setup === 'number') return setup;
  const { parsed, services } = setup;
  const extra = envOptions(parsed.rest);
  if (typeof extra === 'string') {
    process.stderr.write(`nqqueue explain: ${extra}\n`);
    return 2;
  }
  const clientEnv: Record<string, string | undefined> = { ...env, ...extra };
  const lines: string[] = [];
  try {
    const problems = await services.problems();
    if (problems[0]) lines.push(`settings: ${formatProblem(problems[0])} (every message would be deferred)`);
    const routing = services.routingFor(clientEnv.NQQFILE);
    const sender = toAddress(Buffer.from(parsed.from));
    const senderLocal = sender.address !== '' && services.locals.isLocal(sender.address);
    const trust = submissionTrust(clientEnv);
    const bySender = senderLocal && trust.trusted;
    const why = !senderLocal ? 'not local: fallback line' : trust.trusted ? `local, trusted submission: ${trust.rule}: line chosen by the sender` : `local, but ${trust.rule}: fallback line`;
    lines.push(`sender <${sender.address}> (${why})`);
    lines.push(`  general stage (${services.paths.controlDir}/general.cfb):`);
    lines.push(...(await chain(routing.generalMatch(sender.address, bySender), sender.address, 'general', services)));
    for (const to of parsed.to) {
      const r = toAddress(Buffer.from(to), clientEnv.RELAYCLIENT);
      const local = services.locals.isLocal(r.address);
      lines.push(`recipient <${r.address}> (${local ? 'local' : 'remote: general plugins only'})`);
      if (!local) continue;
      const file = routing.userFile(r.address, r.domain);
      lines.push(`  per-user stage (${file ? file.file : 'no per-user file exists'}):`);
      lines.push(...(await chain(file?.match(r.address), r.address, 'per-user', services)));
    }
  } catch (err) {
    process.stderr.write(`nqqueue explain: ${describeError(err)}\n`);
    return 1;
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}
