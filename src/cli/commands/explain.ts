// `nqqueue explain --from A --to B ...`: which file and line apply to the sender and each recipient, and
// the plugin chain that would run, with where each plugin comes from. Scans nothing.

import type { CfbLine } from '../../config/cfb.js';
import { describeError } from '../../errors.js';
import { configurePlugin } from '../../plugin-api/load.js';
import { toAddress } from '../../qmail/envelope.js';
import type { Services } from '../../queue/services.js';
import { envelopeCommand } from '../args.js';

async function chain(line: CfbLine | undefined, stage: 'general' | 'per-user', services: Services): Promise<string[]> {
  if (!line) return ['    no line applies: no plugins'];
  const out = [`    ${line.file}:${line.line}  pattern ${line.pattern === '' ? '(fallback)' : line.pattern} (${line.kind})`];
  if (line.plugins.length === 0) out.push('    (empty chain: no plugins)');
  for (const ref of line.plugins) {
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

export async function run(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const setup = envelopeCommand('explain', args, env);
  if (typeof setup === 'number') return setup;
  const { parsed, services } = setup;
  const lines: string[] = [];
  const relay = env.RELAYCLIENT;
  try {
    const sender = toAddress(Buffer.from(parsed.from));
    const senderLocal = sender.address !== '' && services.locals.isLocal(sender.address);
    lines.push(`sender <${sender.address}> (${senderLocal ? 'local: line chosen by the sender' : 'not local: fallback line'})`);
    lines.push(`  general stage (${services.paths.controlDir}/general.cfb):`);
    lines.push(...(await chain(services.routing.general(sender.address, senderLocal), 'general', services)));
    for (const to of parsed.to) {
      const r = toAddress(Buffer.from(to), relay);
      const local = services.locals.isLocal(r.address);
      lines.push(`recipient <${r.address}> (${local ? 'local' : 'remote: general plugins only'})`);
      if (!local) continue;
      const file = services.routing.userFile(r.address, r.domain);
      lines.push(`  per-user stage (${file ? file.file : 'no per-user file exists'}):`);
      lines.push(...(await chain(file?.lookup(r.address), 'per-user', services)));
    }
  } catch (err) {
    process.stderr.write(`nqqueue explain: ${describeError(err)}\n`);
    return 1;
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}
