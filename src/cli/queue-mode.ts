// qmail-queue mode: message on fd 0 to EOF, then the envelope on fd 1, then the pipeline; the refusal
// text on fd 6 / fd 4 or as a plain exit code; one log line on fd 2.

import { performance } from 'node:perf_hooks';

import { NqqError } from '../errors.js';
import { MessageCollector } from '../intake/message.js';
import { readFdChunks } from '../intake/fd.js';
import { STALE_MS, sweepStale } from '../intake/workdir.js';
import { makeLogger, parseDebugLevel, type Logger } from '../log.js';
import { becomeHomeOwner } from '../ops/owner.js';
import { EnvelopeParser, toEnvelope } from '../qmail/envelope.js';
import { parseRejectMode, RefusalChannel, type RejectMode } from '../qmail/exit.js';
import { defaultSettings } from '../config/settings.js';
import { standaloneVia } from '../queue/origin.js';
import { setBackendCounter } from '../metrics/counter.js';
import { appendRecord } from '../metrics/journal.js';
import { EventTally, makeRecord } from '../metrics/record.js';
import { jobFacts, processJob, resultFromError, type JobResult } from '../queue/process.js';
import { clientFrom, heloFrom, makeServices, pathsFrom, readSettings, type Services } from '../queue/services.js';

/** The message from fd 0 to EOF, then the envelope from fd 1. A read error is 54, a spill error 71. */
function readInput(maxRecipients: number, collector: MessageCollector) {
  const chunks = readFdChunks(0, () => collector.spilled);
  for (;;) {
    let next: IteratorResult<Buffer>;
    try {
      next = chunks.next();
    } catch (err) {
      throw new NqqError('NQQ_ERR_READ', `cannot read the message: ${(err as Error).message}`);
    }
    if (next.done) break;
    try {
      collector.write(next.value);
    } catch (err) {
      if (err instanceof NqqError) throw err;
      throw new NqqError('NQQ_ERR_DISK', `cannot keep the message: ${(err as Error).message}`);
    }
  }
  const message = collector.finish();
  const parser = new EnvelopeParser(maxRecipients);
  try {
    for (const chunk of readFdChunks(1)) parser.push(chunk);
  } catch (err) {
    if (err instanceof NqqError) throw err;
    throw new NqqError('NQQ_ERR_READ', `cannot read the envelope: ${(err as Error).message}`);
  }
  return { message, raw: parser.end() };
}

/** Where the message's metrics record goes: the home's journal, once the home is known to be usable. */
interface Counting {
  home?: string;
  on: boolean;
  readonly tally: EventTally;
}

function report(result: JobResult, channel: RefusalChannel, logger: Logger, format: 'text' | 'json', via: ReturnType<typeof standaloneVia>, counting: Counting): number {
  let exit = result.exit;
  // Counted before the answer is given: a message qmail saw answered is in the journal, whenever this
  // process is killed.
  if (counting.home !== undefined && counting.on) {
    appendRecord(counting.home, makeRecord(result.facts ?? jobFacts(result), via.via === 'fallback' ? 'fallback' : 'standalone', via.why, counting.tally.take()));
  }
  if (result.refusal && (exit === 31 || exit === 71)) exit = channel.refuse(result.refusal.kind, result.refusal.text);
  channel.close();
  // qp: this process is the one qmail-smtpd started (nqqueue-qq, when it fell back, exec'd into it).
  logger.line({ ...result.fields, exit, qp: process.pid, ...via }, format);
  return exit;
}

export async function queueMode(env: NodeJS.ProcessEnv): Promise<number> {
  const started = performance.now();
  const logger = makeLogger(parseDebugLevel(env.NQQUEUE_DEBUG));
  let mode: RejectMode = 'auto';
  try {
    mode = parseRejectMode(env.NQQUEUE_REJECT);
  } catch (err) {
    logger.debug(0, `${(err as Error).message}; using auto`);
  }
  const channel = RefusalChannel.open(mode);
  const via = standaloneVia(env);
  const counting: Counting = { on: true, tally: new EventTally() };
  setBackendCounter(counting.tally);
  let collector: MessageCollector | undefined;
  let format: 'text' | 'json' = 'text';
  try {
    // A configuration problem is reported after the input is read, so the log line can say whose mail
    // was deferred; the input is read with default limits then.
    let services: Services | undefined;
    let configError: unknown;
    try {
      const paths = pathsFrom(env);
      // Run as root (qmail-inject from a root cron job): become the home's owner before anything is written.
      becomeHomeOwner(paths.home);
      counting.home = paths.home;
      const settings = readSettings(paths);
      format = settings.logFormat;
      counting.on = settings.metricsJournal;
      services = makeServices(paths, settings, env.NQQFILE, undefined, (dir) => sweepStale(dir, STALE_MS));
    } catch (err) {
      configError = err;
    }
    const settings = services?.settings ?? defaultSettings();
    collector = new MessageCollector(settings.spillBytes, () => {
      if (!services) throw configError;
      return services.workDir();
    });
    const { message, raw } = readInput(settings.maxRecipients, collector);
    const envelope = toEnvelope(raw, env.RELAYCLIENT);
    if (!services) throw configError;
    const client = clientFrom(env, heloFrom(await message.head(4096)));
    const result = await processJob({ message, envelope, client, services, logger, started });
    return report(result, channel, logger, format, via, counting);
  } catch (err) {
    const result = resultFromError(err, {});
    result.fields.ms = Math.round(performance.now() - started);
    return report(result, channel, logger, format, via, counting);
  } finally {
    collector?.discard();
  }
}
