// `nqqueue explain --from A --to B ... [--env NAME=VALUE ...]`: which file and line apply to the sender
// and each recipient, by which rule, and the plugin chain that would run, with where each plugin comes
// from. Scans nothing. The client environment (RELAYCLIENT, SMTPAUTHUSER, TCPREMOTEIP ...) is the one
// explain runs in, with --env on top, as a tcprules line would set it.

import { existsSync } from 'node:fs';
import { join } from 'node:path';

import type { CfbMatch } from '../../config/cfb.js';
import { formatProblem } from '../../config/problem.js';
import { describeError } from '../../errors.js';
import { configurePlugin } from '../../plugin-api/load.js';
import { toAddress } from '../../qmail/envelope.js';
import { submissionTrust } from '../../qmail/submission.js';
import type { Services } from '../../queue/services.js';
import { visible } from '../../text/visible.js';
import { ENVELOPE_OPTIONS, envelopeCommand, envOption, parseCommand, usageFailure, UsageError } from '../args.js';

export const USAGE = `usage: nqqueue explain --from A --to B [--to C ...] [--env NAME=VALUE ...]
  For the sender and each recipient: the routing file and line that apply, the plugin chain that would
  run and where each plugin is loaded from. Scans nothing, queues nothing. For a chain with the lists
  plugin: the precedence of the lists, the entries that match this sender (and the client's network,
  from TCPREMOTEIP) and which one decides.
  --from A          the envelope sender ("" for a bounce)
  --to B            a recipient; repeat for several
  --env NAME=VALUE  a variable of the client's environment, as a tcprules line would set it (RELAYCLIENT,
                    SMTPAUTHUSER, TCPREMOTEIP, NQQFILE ...); repeat for several. Taken on top of this
                    process's own environment
  -h, --help        this text
`;

const OPTIONS = { ...ENVELOPE_OPTIONS, env: { type: 'string', multiple: true } } as const;

function describeMatch(m: CfbMatch, address: string): string {
  const line = m.line;
  const head = `    ${visible(line.file)}:${line.line}  pattern ${line.pattern === '' ? '(fallback)' : visible(line.pattern)} (${line.kind})`;
  if (m.rule === 'extension') return `${head}, by the extension rule: <${visible(address)}> has no line of its own, <${visible(m.via ?? '')}> has`;
  return head;
}

/** Who a lists lookup is for: the sender, this recipient (per-user stage), the client's IP. */
interface ListsProbe {
  readonly sender: string;
  readonly recipient?: string;
  readonly ip?: string;
}

async function chain(m: CfbMatch | undefined, address: string, stage: 'general' | 'per-user', services: Services, probe: ListsProbe): Promise<string[]> {
  if (!m) return ['    no line applies: no plugins'];
  const out = [describeMatch(m, address)];
  if (m.line.plugins.length === 0) out.push('    (empty chain: no plugins)');
  for (const ref of m.line.plugins) {
    const label = visible(ref.params ? `${ref.name}=${ref.params}` : ref.name);
    try {
      const cp = await configurePlugin(services.registry, ref, stage, services.settings);
      out.push(`    - ${label}  [${visible(cp.source)}, v${visible(cp.def.version)}, timeout ${cp.timeoutMs} ms, onerror ${cp.onerror}]`);
      if (cp.def.name === 'lists' && cp.source === 'built-in') {
        const { explainLists } = await import('../../lists/explain.js');
        const config = cp.config as import('../../plugins/lists.js').ListsConfig;
        out.push(...(await explainLists({ home: services.paths.home, settings: services.settings, config, stage, ...probe })).map((l) => visible(l)));
      }
    } catch (err) {
      out.push(`    - ${label}  ERROR: ${visible(describeError(err))} (mail would be deferred)`);
    }
  }
  return out;
}

export async function run(args: string[], processEnv: NodeJS.ProcessEnv): Promise<number> {
  const parsedArgs = parseCommand('explain', USAGE, args, OPTIONS);
  if (typeof parsedArgs === 'number') return parsedArgs;
  let env: NodeJS.ProcessEnv;
  try {
    // The environment a message would be processed with: ours, then what a tcprules line would add.
    env = { ...processEnv, ...envOption(parsedArgs.values.env) };
  } catch (err) {
    if (err instanceof UsageError) return usageFailure('explain', USAGE, err.message);
    throw err;
  }
  const setup = envelopeCommand('explain', USAGE, parsedArgs, env);
  if (typeof setup === 'number') return setup;
  const { parsed, services } = setup;
  const lines: string[] = [];
  try {
    const problems = await services.problems();
    if (problems[0]) lines.push(`settings: ${visible(formatProblem(problems[0]))} (every message would be deferred)`);
    const routing = services.routingFor(env.NQQFILE);
    const nqqfilePath = env.NQQFILE ? join(services.paths.controlDir, `${env.NQQFILE}.cfb`) : undefined;
    const nqqfileMissing = nqqfilePath !== undefined && !existsSync(nqqfilePath) ? nqqfilePath : undefined;
    const sender = toAddress(Buffer.from(parsed.from));
    const senderLocal = sender.address !== '' && services.locals.isLocal(sender.address);
    const trust = submissionTrust(env);
    const bySender = senderLocal && trust.trusted;
    const why = !senderLocal ? 'not local: fallback line' : trust.trusted ? `local, trusted submission: ${trust.rule}: line chosen by the sender` : `local, but ${trust.rule}: fallback line`;
    lines.push(`sender <${visible(sender.address)}> (${visible(why)})`);
    lines.push(`  general stage (${visible(services.paths.controlDir)}/general.cfb):`);
    const ip = env.TCPREMOTEIP === undefined || env.TCPREMOTEIP === '' ? undefined : env.TCPREMOTEIP;
    lines.push(...(await chain(routing.generalMatch(sender.address, bySender), sender.address, 'general', services, { sender: sender.address, ...(ip ? { ip } : {}) })));
    for (const to of parsed.to) {
      const r = toAddress(Buffer.from(to), env.RELAYCLIENT);
      const local = services.locals.isLocal(r.address);
      lines.push(`recipient <${visible(r.address)}> (${local ? 'local' : 'remote: general plugins only'})`);
      if (!local) continue;
      const file = routing.userFile(r.address, r.domain);
      lines.push(`  per-user stage (${file ? visible(file.file) : 'no per-user file exists'}):`);
      // A mistyped or missing NQQFILE is not an error on the queue path (the next file applies, as in
      // 2008), so say it here, where the admin looks.
      if (nqqfileMissing !== undefined) lines.push(`    NQQFILE=${visible(env.NQQFILE!)}, but ${visible(nqqfileMissing)} does not exist: the next file applies`);
      lines.push(...(await chain(file?.match(r.address), r.address, 'per-user', services, { sender: sender.address, recipient: r.address, ...(ip ? { ip } : {}) })));
    }
  } catch (err) {
    process.stderr.write(`nqqueue explain: ${visible(describeError(err))}\n`);
    return 1;
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}
