// Who is due a digest, and mailing it: each owner with held items quarantined since their last digest,
// whose cadence says it is time (never: none; hourly: an hour since the last one; daily: a day), gets
// one mail listing those items. The bookkeeping is written only once qmail-inject took the mail (exit
// 0): a failure is logged, the others go on, and the next run tries again with the same items. Items
// are listed only once they are older than the message deadline: a message still being processed may
// index a copy dated a little earlier than one already indexed, and would otherwise fall behind the
// bookkeeping's mark and never be listed.

import { randomUUID } from 'node:crypto';
import { hostname as systemHostname } from 'node:os';

import { serviceSettings } from '../config/service-sections.js';
import { describeError } from '../errors.js';
import { makeLink, type LinkAction } from '../links/links.js';
import { linkKey } from '../links/site-key.js';
import { plainAddress } from '../qmail/plain-address.js';
import type { Quarantine } from '../quarantine/actions.js';
import type { DigestCadence, QuarantineItem } from '../store/types.js';
import { composeDigest, plural, MAX_LISTED, type DigestEntry } from './compose.js';
import { takeDigestLock } from './lock.js';
import { inject } from './send.js';

const HOUR = 3_600_000;
const PERIOD: Record<Exclude<DigestCadence, 'never'>, number> = { hourly: HOUR, daily: 24 * HOUR };
/**
 * A run a few minutes early still counts: cron (or the schedule) at the same minute every hour must not
 * find the last digest 59:58 old and wait a whole turn more.
 */
export const EARLY_MS = 5 * 60_000;

/** Is a digest due for this cadence, last sent at `lastSent` (ISO), at `now`? */
export function isDue(cadence: DigestCadence, lastSent: string | undefined, now: Date): boolean {
  if (cadence === 'never') return false;
  if (lastSent === undefined) return true;
  const last = Date.parse(lastSent);
  if (Number.isNaN(last)) return true;
  return now.getTime() - last >= PERIOD[cadence] - EARLY_MS;
}

export interface DigestRunOptions {
  /** Compose and print, send nothing, record nothing. */
  readonly dryRun?: boolean;
  /** This owner only, whatever the timing of their cadence (never still means none). */
  readonly only?: string;
  readonly now?: Date;
  readonly log: (line: string) => void;
  /** Where --dry-run writes the digests (waited for: stdout may be a pipe). */
  readonly print?: (text: string) => void | Promise<void>;
  /** Carried across runs by a long-lived caller: the missing [web] url is said once. */
  readonly warned?: { url?: boolean };
  /** Who the audit log names. */
  readonly from?: string;
}

export interface DigestRunResult {
  readonly sent: number;
  readonly failed: number;
  /** Composed but not sent (--dry-run). */
  readonly printed: number;
  /** Another run held the lock: nothing was done. */
  readonly busy?: number;
}

function linkUrl(base: string, token: string): string {
  return `${base}link/${token}`;
}

/** How long a digest run holds the site's lease before renewing it (each digest sent renews it). */
const LEASE_MS = 10 * 60_000;

export async function runDigests(q: Quarantine, o: DigestRunOptions): Promise<DigestRunResult> {
  const lock = o.dryRun ? undefined : takeDigestLock(q.paths.home);
  if (lock && 'heldBy' in lock) {
    o.log(`another digest run is going on (pid ${lock.heldBy}): nothing done by this one`);
    return { sent: 0, failed: 0, printed: 0, busy: lock.heldBy };
  }
  try {
    if (!lock || !q.store.shared) return await runLocked(q, o, () => lock?.touch());
    // A store shared by several hosts: the site's digests are sent once, by whichever host takes
    // the lease; the others find it taken and do nothing.
    // A name and a pid are not unique (two hosts given one hostname, each run pid 1 of a container):
    // a random part makes each run's lease its own.
    const holder = `${q.settings.hostname ?? systemHostname()} pid ${process.pid} run ${randomUUID()}`;
    if (!(await q.store.takeLease('digest', holder, LEASE_MS))) {
      o.log('another host is sending the digests: nothing done by this one');
      return { sent: 0, failed: 0, printed: 0, busy: 0 };
    }
    try {
      let renewing: Promise<unknown> = Promise.resolve();
      return await runLocked(q, o, () => {
        lock.touch();
        renewing = renewing.then(() => q.store.takeLease('digest', holder, LEASE_MS)).catch(() => undefined);
      });
    } finally {
      await q.store.dropLease('digest', holder).catch(() => undefined);
    }
  } finally {
    lock?.release();
  }
}

async function runLocked(q: Quarantine, o: DigestRunOptions, touch: () => void): Promise<DigestRunResult> {
  const now = o.now ?? new Date();
  const digest = serviceSettings(q.settings, 'digest');
  const web = serviceSettings(q.settings, 'web');
  const host = q.settings.hostname ?? systemHostname();
  const from = (digest.from ?? `postmaster@${host}`).toLowerCase();
  // It goes on qmail-inject's command line and in the From field.
  if (!plainAddress(from)) throw new Error(`the digests' sender ${JSON.stringify(from)} is not a plain address: set [digest] from`);
  const siteCadence = digest.cadence ?? 'daily';
  const linkTtl = digest.link_ttl ?? 7 * 24 * HOUR;
  const program = digest.qmail_inject ?? '/var/qmail/bin/qmail-inject';
  const consoleUrl = web.url;
  const cutoff = new Date(now.getTime() - q.settings.deadlineMs).toISOString();
  const only = o.only?.toLowerCase();
  let key: Buffer | undefined;
  let sent = 0;
  let failed = 0;
  let printed = 0;

  const warned = o.warned ?? {};
  if (consoleUrl === undefined && !warned.url) {
    o.log('warning: [web] url is not set: digests have no links, and tell users to write to the postmaster instead');
    warned.url = true;
  }
  const candidates = (await q.store.digestCandidates()).filter((c) => only === undefined || c.owner === only);
  const one = async (c: (typeof candidates)[number]): Promise<'sent' | 'failed' | 'printed' | 'skipped'> => {
    const cadence = c.cadence ?? siteCadence;
    if (cadence === 'never') return 'skipped';
    if (only === undefined && !isDue(cadence, c.lastSent, now)) return 'skipped';
    const { items, total } = await q.store.findItems({
      owner: c.owner,
      status: ['held'],
      ...(c.newSince === undefined ? {} : { since: c.newSince }),
      before: cutoff,
      order: 'newest',
      limit: MAX_LISTED,
    });
    if (items.length === 0) return 'skipped';
    const upTo = items[0]!.date;
    touch();
    const who = `<${c.owner}>`;
    if (!plainAddress(c.owner) || c.owner.length > 320) {
      // Not an address qmail-inject can be given safely (a leading dash, 8-bit, spaces): said once
      // for these items, which stay in the console.
      o.log(`digest for ${who} not sent: not a plain address that can be put on qmail-inject's command line; its held items are in the console`);
      if (!o.dryRun) await q.store.markDigestSent(c.owner, now.toISOString(), upTo);
      return 'failed';
    }
    const expires = now.getTime() + linkTtl;
    if (consoleUrl !== undefined) key ??= await linkKey(q.store, q.paths.home);
    const entries: DigestEntry[] = items.map((item: QuarantineItem) => {
      if (consoleUrl === undefined) return { item };
      const link = (action: LinkAction) => linkUrl(consoleUrl, makeLink(key!, { id: item.id, owner: c.owner, action, expires }));
      return { item, links: { release: link('release'), delete: link('delete'), view: link('view') } };
    });
    const message = composeDigest({
      from,
      to: c.owner,
      entries,
      more: Math.max(0, total - items.length),
      now,
      hostname: host,
      ...(consoleUrl === undefined ? {} : { consoleUrl, linksExpire: new Date(expires) }),
      expireMs: q.settings.quarantineExpireMs,
      first: c.lastSent === undefined,
    });
    if (o.dryRun) {
      await o.print?.(`# digest for ${who}: ${plural(total, 'item', 'items')}, not sent (--dry-run): qmail-inject -f${from} -a ${c.owner}\n${message.toString('utf8')}\n`);
      return 'printed';
    }
    const r = await inject(program, from, c.owner, message, q.settings.queueTimeoutMs);
    if (!r.ok) {
      o.log(`digest for ${who} not sent: ${r.reason}; the next run tries again`);
      return 'failed';
    }
    try {
      await q.store.markDigestSent(c.owner, now.toISOString(), upTo);
    } catch (err) {
      // Mailed, but not recorded: the next run mails these items again. Said loudly.
      o.log(`digest for ${who} was mailed but could not be recorded (${describeError(err)}): the next run mails the same items again`);
      return 'failed';
    }
    o.log(`mailed ${who} a digest of ${plural(total, 'item', 'items')}`);
    try {
      await q.store.audit({ at: now.toISOString(), who: 'nqqueue digest', from: o.from ?? 'command line', action: 'digest', detail: `mailed ${c.owner} ${plural(total, 'item', 'items')} up to ${upTo}` });
    } catch (err) {
      o.log(`the digest of ${who} is not in the audit log: ${describeError(err)}`);
    }
    return 'sent';
  };
  for (const c of candidates) {
    let outcome;
    try {
      outcome = await one(c);
    } catch (err) {
      // The store or the key failed for this one: said, and the others still get theirs.
      o.log(`digest for <${c.owner}> not sent: ${describeError(err)}; the next run tries again`);
      outcome = 'failed' as const;
    }
    if (outcome === 'sent') sent++;
    else if (outcome === 'failed') failed++;
    else if (outcome === 'printed') printed++;
  }
  return { sent, failed, printed };
}
