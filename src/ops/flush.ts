// One pass over the retry spool, shared by `nqqueue flush` and the daemon's periodic flush. Needs only
// the spool and qmail-queue: a broken routing file must not hold back mail that was already accepted
// (the settings are read for queue_timeout; when they are broken the defaults are used, and it says so).

import { join } from 'node:path';

import { defaultSettings, type Settings } from '../config/settings.js';
import { QmailQueue } from '../delivery/qmail-queue.js';
import { Spool } from '../delivery/spool.js';
import { describeError } from '../errors.js';
import { readSettings, type Paths } from '../queue/services.js';

export interface FlushCounts {
  readonly delivered: number;
  readonly failed: number;
}

export async function flushSpool(paths: Paths, log: (line: string) => void): Promise<FlushCounts> {
  let settings: Settings;
  try {
    settings = readSettings(paths);
  } catch (err) {
    log(`${describeError(err)}; flushing with the default settings`);
    settings = defaultSettings();
  }
  const spool = new Spool(join(paths.home, 'spool'));
  const counts = await spool.flush(new QmailQueue(paths.qmailQueue, settings.queueTimeoutMs), log);
  log(`${counts.delivered} delivered, ${counts.failed} kept`);
  return counts;
}
