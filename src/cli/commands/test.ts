// `nqqueue test --from A --to B ... < message`: a dry run. Every plugin runs for real; the verdicts, the
// headers each recipient would get and the qmail-queue calls that would be made are printed — none is made.

import { describeError } from '../../errors.js';
import { MessageCollector } from '../../intake/message.js';
import { readFdChunks } from '../../intake/fd.js';
import { makeLogger, parseDebugLevel } from '../../log.js';
import { becomeHomeOwner } from '../../ops/owner.js';
import { runPipeline } from '../../pipeline/run.js';
import { DeadlineError } from '../../pipeline/chain.js';
import { toEnvelope } from '../../qmail/envelope.js';
import { clientFrom, heloFrom } from '../../queue/services.js';
import { visible } from '../../text/visible.js';
import { ENVELOPE_OPTIONS, envelopeCommand, parseCommand } from '../args.js';
import { describeGroups, describeOutcome, smtpReply } from '../report.js';

export const USAGE = `usage: nqqueue test --from A --to B [--to C ...] < message
  A dry run: every plugin runs for real on the message read from stdin; prints each verdict, the headers
  each recipient would get and the qmail-queue calls that would be made. Makes none, keeps nothing.
  --from A          the envelope sender ("" for a bounce)
  --to B            a recipient; repeat for several
  -h, --help        this text
`;

export async function run(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const parsedArgs = parseCommand('test', USAGE, args, ENVELOPE_OPTIONS);
  if (typeof parsedArgs === 'number') return parsedArgs;
  const setup = envelopeCommand('test', USAGE, parsedArgs, env);
  if (typeof setup === 'number') return setup;
  const { parsed, services } = setup;
  try {
    // A large message is spilled under the home: as its owner, as queue mode does (src/ops/owner.ts).
    becomeHomeOwner(services.paths.home);
  } catch (err) {
    process.stderr.write(`nqqueue test: ${describeError(err)}\n`);
    return 1;
  }
  const collector = new MessageCollector(services.settings.spillBytes, () => services.workDir());
  try {
    for (const chunk of readFdChunks(0)) collector.write(chunk);
    const message = collector.finish();
    const envelope = toEnvelope({ sender: Buffer.from(parsed.from), recipients: parsed.to.map((t) => Buffer.from(t)) }, env.RELAYCLIENT);
    const logger = makeLogger(parseDebugLevel(env.NQQUEUE_DEBUG));
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(new DeadlineError()), services.settings.deadlineMs);
    let outcome;
    try {
      await services.ready();
      outcome = await runPipeline(
        {
          message,
          envelope,
          client: clientFrom(env, heloFrom(await message.head(4096))),
          settings: services.settings,
          routing: services.routing,
          locals: services.locals,
          registry: services.registry,
          home: services.paths.home,
          debug: (l, m) => logger.debug(l, m),
        },
        deadline.signal,
      );
    } finally {
      clearTimeout(timer);
    }
    const lines = [`dry run of a ${message.size}-byte message from <${visible(envelope.sender.address)}> (nothing is queued)`];
    lines.push(...describeOutcome(outcome));
    if (outcome.decision === 'accept') {
      lines.push(outcome.groups.length ? 'would queue:' : 'would queue nothing (every copy was dropped)');
      lines.push(...describeGroups(outcome));
      lines.push(`would exit 0: ${smtpReply(0)}`);
    } else {
      const exit = outcome.decision === 'reject' ? 31 : 71;
      const refusal = { kind: outcome.decision === 'reject' ? ('permanent' as const) : ('temporary' as const), text: outcome.text ?? '' };
      lines.push(`would refuse: ${smtpReply(exit, refusal)} (exit 82 with the text on fd 6/fd 4, or ${exit})`);
    }
    // A dry run keeps nothing: what plugins prepared (quarantined copies) is taken back.
    const settled = await outcome.settle(false);
    if (settled.actions > 0) lines.push(`discarded what ${settled.actions} plugin action(s) would have kept (quarantine); nothing was stored`);
    for (const p of settled.problems) lines.push(`  problem discarding: ${visible(p)}`);
    process.stdout.write(`${lines.join('\n')}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`nqqueue test: ${visible(describeError(err))}\n`);
    return 1;
  } finally {
    collector.discard();
  }
}
