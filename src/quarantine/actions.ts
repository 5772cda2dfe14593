// What can be done to a held item — release, delete, expire — for every front end (the command line,
// the console, a digest link). Each action happens exactly once however many ask at the same moment:
// it starts with an atomic claim in the store (held → releasing), which one caller alone gets, and goes
// on with the file claim of the bytes (renamed under quarantine/tmp/), so a crash in the middle never
// loses the item: the bytes are put back by the next process, and a claim whose holder is gone is given
// back to held. At worst a release that crashed after qmail-queue took the message, and before the store
// recorded it, is released again: a duplicate is better than a loss. Every action is in the audit log.

import type { Settings } from '../config/settings.js';
import { QmailQueue } from '../delivery/qmail-queue.js';
import { describeError } from '../errors.js';
import type { MessageView } from '../pipeline/types.js';
import { encodeEnvelope } from '../qmail/envelope.js';
import type { Paths } from '../queue/services.js';
import { openStore } from '../store/open.js';
import { DEFAULT_STALE_MS } from '../store/sqlite.js';
import type { Actor, ItemClaim, QuarantineItem, Store } from '../store/types.js';
import { entryFromMeta, thisHost } from './index-entry.js';
import { checkId, ID_PATTERN, QuarantineError, QuarantineStore, type ClaimedItem } from './store.js';
import { subjectOf } from './subject.js';

export interface Quarantine {
  readonly store: Store;
  readonly paths: Paths;
  readonly settings: Settings;
}

export type ActionResult = { ok: true; item: QuarantineItem } | { ok: false; reason: string; notFound?: boolean };

/**
 * How long a claim is trusted when this host shows no live process holding it and the bytes are back
 * in place (the holder died): long against the instant between the two claims of a live one.
 */
const DEAD_CLAIM_MS = 60_000;
/** The system itself, putting back the claims of processes that died. */
const RECOVERY: Actor = { who: 'nqqueue', from: 'recovery' };

/**
 * Open the store for quarantine work: index the items held before the store existed (or while it was
 * lost), and give back to held the claims of processes that died.
 */
export async function openQuarantine(paths: Paths, settings: Settings, options: { problem?: (id: string, why: string) => void } = {}): Promise<Quarantine> {
  const store = await openStore(paths.home, settings);
  const q: Quarantine = { store, paths, settings };
  try {
    await indexUnknown(q, options.problem);
    await recoverClaims(q);
  } catch (err) {
    await store.close().catch(() => undefined);
    throw err;
  }
  return q;
}

async function indexUnknown(q: Quarantine, problem?: (id: string, why: string) => void): Promise<number> {
  const files = new QuarantineStore(q.paths.home);
  const known = await q.store.itemIds();
  const host = thisHost(q.settings);
  let added = 0;
  // Unreadable entries stay where they are (`nqqueue quarantine list` reports them).
  for (const meta of files.list(problem)) {
    if (known.has(meta.id)) continue;
    let subject = meta.subject ?? '';
    if (meta.subject === undefined) {
      try {
        subject = subjectOf(await files.get(meta.id).message.head());
      } catch {
        // a subject is nice to have; the item is indexed without it
      }
    }
    await q.store.addItem(entryFromMeta(meta, subject, host));
    added++;
  }
  return added;
}

async function recoverClaims(q: Quarantine): Promise<void> {
  const files = new QuarantineStore(q.paths.home);
  const { items } = await q.store.findItems({ status: ['releasing'] });
  for (const item of items) {
    const stale = staleAfter(files, item);
    if (stale === undefined) continue;
    const claim = await q.store.claimItem(item.id, RECOVERY, 'recover', stale);
    await claim?.abandon();
  }
}

/** How old a claim on `item` must be to count as a dead process's; undefined: another host's to judge. */
function staleAfter(files: QuarantineStore, item: QuarantineItem): number | undefined {
  if (!ID_PATTERN.test(item.id)) return undefined;
  const s = files.state(item.id);
  if (s.claimedByLive) return DEFAULT_STALE_MS;
  if (s.inPlace) return DEAD_CLAIM_MS;
  return DEFAULT_STALE_MS;
}

type Step = (claimed: ClaimedItem | undefined, item: QuarantineItem) => Promise<{ ok: true; detail?: string } | { ok: false; reason: string }>;

async function act(q: Quarantine, id: string, actor: Actor, action: string, final: 'released' | 'deleted' | 'expired', step: Step, needBytes: boolean): Promise<ActionResult> {
  try {
    checkId(id);
  } catch (err) {
    return { ok: false, reason: (err as Error).message, notFound: true };
  }
  const files = new QuarantineStore(q.paths.home);
  const known = await q.store.getItem(id);
  if (!known) return { ok: false, reason: `no quarantined message ${id}`, notFound: true };
  const claim = await q.store.claimItem(id, actor, action, known.status === 'releasing' ? staleAfter(files, known) : undefined);
  if (!claim) {
    const now = await q.store.getItem(id);
    if (!now) return { ok: false, reason: `no quarantined message ${id}`, notFound: true };
    if (now.status === 'releasing') return { ok: false, reason: `${id} is already taken: someone else is acting on it right now${now.statusBy ? ` (${now.statusBy})` : ''}` };
    const by = now.statusBy ? ` by ${now.statusBy}${now.statusAt ? ` at ${now.statusAt}` : ''}` : '';
    return { ok: false, reason: `no quarantined message ${id}: it was already taken (${now.status}${by})` };
  }
  return withClaim(q, files, claim, actor, final, step, needBytes);
}

async function withClaim(q: Quarantine, files: QuarantineStore, claim: ItemClaim, actor: Actor, final: 'released' | 'deleted' | 'expired', step: Step, needBytes: boolean): Promise<ActionResult> {
  const { item } = claim;
  let claimed: ClaimedItem | undefined;
  try {
    claimed = files.claim(item.id);
  } catch (err) {
    const gone = err instanceof QuarantineError && err.notFound;
    const here = item.host === thisHost(q.settings);
    if (!gone || needBytes || !here) {
      await claim.abandon();
      const why = gone ? (here ? `its message is not in ${files.dir}` : `its message is held on ${item.host}: act on it there`) : describeError(err);
      return { ok: false, reason: `${item.id}: ${why}` };
    }
    // Deleting or expiring an item whose bytes are gone already: only the index is left to update.
  }
  let done;
  try {
    done = await step(claimed, item);
  } catch (err) {
    done = { ok: false as const, reason: describeError(err) };
  }
  if (!done.ok) {
    claimed?.restore();
    await claim.abandon();
    return { ok: false, reason: done.reason };
  }
  try {
    await claim.finish(final, done.detail ?? (claimed ? undefined : 'its message was gone already'));
  } catch (err) {
    // The action happened (a release was queued): the bytes go, or it could happen twice.
    claimed?.remove();
    return { ok: false, reason: `${item.id} was ${final}, but the store could not record it: ${describeError(err)}` };
  }
  claimed?.remove();
  return { ok: true, item: { ...item, status: final, statusAt: new Date().toISOString(), statusBy: actor.who } };
}

/** Hand the message to qmail-queue for its original recipient only, exactly once; then the bytes go. */
export async function releaseItem(q: Quarantine, id: string, actor: Actor): Promise<ActionResult> {
  return act(
    q,
    id,
    actor,
    'release',
    'released',
    async (claimed, item) => {
      const envelope = encodeEnvelope(Buffer.from(item.sender.base64, 'base64'), [Buffer.from(item.recipient.base64, 'base64')]);
      const r = await new QmailQueue(q.paths.qmailQueue, q.settings.queueTimeoutMs).deliver(claimed!.message, envelope);
      if (!r.ok) return { ok: false, reason: `${id}: ${r.reason}; the message stays in the quarantine` };
      return { ok: true, detail: `to <${item.recipient.text}>${r.pid === undefined ? '' : ` qp ${r.pid}`}` };
    },
    true,
  );
}

export async function deleteItem(q: Quarantine, id: string, actor: Actor): Promise<ActionResult> {
  return act(q, id, actor, 'delete', 'deleted', async () => ({ ok: true }), false);
}

/**
 * Expire the held items of this host older than quarantine_expire (status expired, bytes removed);
 * returns how many. Also removes bytes left behind by an action that crashed after it was recorded.
 */
export async function expireItems(q: Quarantine, actor: Actor, now: Date = new Date()): Promise<number> {
  const before = new Date(now.getTime() - q.settings.quarantineExpireMs).toISOString();
  const host = thisHost(q.settings);
  const tried = new Set<string>();
  let expired = 0;
  for (;;) {
    const batch = (await q.store.expiredItems(before, 500)).filter((i) => !tried.has(i.id));
    if (batch.length === 0) break;
    for (const item of batch) {
      tried.add(item.id);
      if (item.host !== host && !new QuarantineStore(q.paths.home).state(item.id).inPlace) continue;
      const r = await act(q, item.id, actor, 'expire', 'expired', async () => ({ ok: true, detail: `older than ${before}` }), false);
      if (r.ok) expired++;
    }
  }
  await sweepFinished(q);
  return expired;
}

/** Bytes of items the store says are done with (a crash between the record and the removal). */
async function sweepFinished(q: Quarantine): Promise<void> {
  const files = new QuarantineStore(q.paths.home);
  for (const meta of files.list()) {
    const item = await q.store.getItem(meta.id);
    if (item && (item.status === 'released' || item.status === 'deleted' || item.status === 'expired')) {
      try {
        files.claim(meta.id).remove();
      } catch {
        // taken meanwhile: whoever took it deals with it
      }
    }
  }
}

/** An age as it is written in nqqueue.conf: 30d, 12h, 90m, 2s. */
export function ageText(ms: number): string {
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000]] as const) if (ms % size === 0) return `${ms / size}${unit}`;
  return `${Math.round(ms / 1000)}s`;
}

/** The stored bytes of an item (throws a QuarantineError when they are gone). */
export function itemMessage(q: Quarantine, id: string): MessageView {
  return new QuarantineStore(q.paths.home).get(id).message;
}
