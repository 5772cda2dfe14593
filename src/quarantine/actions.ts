// What can be done to a held item — release, delete, expire — for every front end (the command line,
// the console, a digest link). Each action happens exactly once however many ask at the same moment:
// it takes the item's files (renamed under quarantine/tmp/) and the item in the store (an atomic
// held → releasing), which one caller alone gets, so a crash in the middle never loses the item: the
// files are put back by the next process, and a claim whose holder is gone is given back to held. At worst a release that crashed after qmail-queue took the message, and before the store
// recorded it, is released again: a duplicate is better than a loss. Every action is in the audit log.

import { mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import type { Settings } from '../config/settings.js';
import { QmailQueue } from '../delivery/qmail-queue.js';
import { describeError } from '../errors.js';
import type { MessageView } from '../pipeline/types.js';
import { encodeEnvelope } from '../qmail/envelope.js';
import type { Paths } from '../queue/services.js';
import { dropSharedStore, openStore, sharedStore } from '../store/open.js';
import { syncDir } from '../intake/files.js';
import { MemoryMessage } from '../intake/message.js';
import type { Actor, ClaimHolder, ItemClaim, QuarantineItem, Store } from '../store/types.js';
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
 * How old a claim must be to be taken for a dead process's when its files are not here to tell (an
 * item whose files are gone, or on another host): far longer than any qmail-queue run.
 */
const CLAIM_STALE_MS = 3600_000;
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

/**
 * The same for a long-lived process (the daemon's expiry and digest passes): the process's one open
 * store (store/open.ts sharedStore), which the caller does not close. A pass that fails gives it up, so
 * the next one opens it again.
 */
export async function sharedQuarantine(paths: Paths, settings: Settings, work: (q: Quarantine) => Promise<void>): Promise<void> {
  const store = await sharedStore(paths.home, settings);
  const q: Quarantine = { store, paths, settings };
  try {
    await indexUnknown(q);
    await recoverClaims(q);
    await work(q);
  } catch (err) {
    dropSharedStore(paths.home, store);
    throw err;
  }
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
    const bytes = q.store.shared ? await files.get(meta.id).message.buffer() : undefined;
    await q.store.addItem(entryFromMeta(meta, subject, host), bytes);
    added++;
  }
  return added;
}

/**
 * Actions that happened (a release was queued) while the store could not record them: each is noted
 * in a file of this host ($NQQUEUE_HOME/unrecorded/ID), and recorded by the next process that can.
 * Without the note the claim of the process that did it would be given back to held, once that
 * process is gone, and the message released a second time.
 */
const UNRECORDED_DIR = 'unrecorded';

interface Unrecorded {
  readonly final: 'released' | 'deleted' | 'expired';
  readonly action: string;
  readonly detail?: string;
  readonly who: string;
  readonly from: string;
  readonly host: string;
  readonly pid: number;
}

function noteUnrecorded(home: string, id: string, note: Unrecorded): boolean {
  const dir = join(home, UNRECORDED_DIR);
  try {
    try {
      mkdirSync(dir, { mode: 0o700 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const tmp = join(dir, `.${id}.${process.pid}.tmp`);
    writeFileSync(tmp, JSON.stringify(note), { mode: 0o600, flush: true });
    renameSync(tmp, join(dir, id));
    syncDir(dir);
    return true;
  } catch {
    return false;
  }
}

function readUnrecorded(home: string, id: string): Unrecorded | undefined {
  try {
    const n = JSON.parse(readFileSync(join(home, UNRECORDED_DIR, id), 'utf8')) as Unrecorded;
    return ['released', 'deleted', 'expired'].includes(n.final) && typeof n.pid === 'number' && typeof n.host === 'string' ? n : undefined;
  } catch {
    return undefined;
  }
}

/** Record the action noted for `id`, if any (the store must answer: a failure is thrown). */
async function recordUnrecorded(q: Quarantine, id: string): Promise<void> {
  const note = readUnrecorded(q.paths.home, id);
  if (!note) return;
  const item = await q.store.getItem(id);
  if (item && (item.status === 'held' || item.status === 'releasing')) {
    // The note proves that claim's work was done: it is taken over at once, whatever its age.
    const claim = await q.store.claimItem(id, { who: note.who, from: note.from }, note.action, CLAIM_STALE_MS, { host: note.host, pid: process.pid, deadLocal: note.pid });
    if (!claim) return;
    await claim.finish(note.final, `${note.detail ?? ''}${note.detail ? '; ' : ''}recorded late: the store could not be reached at the time`);
  }
  rmSync(join(q.paths.home, UNRECORDED_DIR, id), { force: true });
}

async function recordAllUnrecorded(q: Quarantine): Promise<void> {
  let names: string[];
  try {
    names = readdirSync(join(q.paths.home, UNRECORDED_DIR));
  } catch {
    return;
  }
  for (const id of names) if (ID_PATTERN.test(id)) await recordUnrecorded(q, id);
}

async function recoverClaims(q: Quarantine): Promise<void> {
  await recordAllUnrecorded(q);
  const files = new QuarantineStore(q.paths.home);
  const { items } = await q.store.findItems({ status: ['releasing'] });
  for (const item of items) {
    if (!ID_PATTERN.test(item.id)) continue;
    if (readUnrecorded(q.paths.home, item.id)) continue;
    const held = claimFiles(files, item.id);
    if (held === 'busy' || typeof held === 'string') continue;
    // Holding the files, this process knows no one else on this host is acting on the item: a claim
    // made on this host is then a dead process's (see act()); so is one whose process is gone.
    // Another host's claim, and one without the files, only age tells.
    const claim = await q.store.claimItem(item.id, RECOVERY, 'recover', CLAIM_STALE_MS, holderFor(q, item, held !== undefined));
    await claim?.abandon();
    held?.restore();
  }
}

/** Whether a process of this host is running (signal 0: nothing is sent). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Which system this process runs on, for claims: the hostname setting can be the same on two hosts of
 * a site (a copied nqqueue.conf), and a pid means something only where it was taken. The kernel's boot
 * id and this process's pid namespace name it on Linux; elsewhere the hostname alone.
 */
let systemId: string | undefined;
function thisSystem(): string {
  if (systemId === undefined) {
    let id = '';
    try {
      id = readFileSync('/proc/sys/kernel/random/boot_id', 'latin1').trim();
      id += ` ${readlinkSync('/proc/self/ns/pid')}`;
    } catch {
      // not Linux: the hostname alone tells the hosts apart
    }
    systemId = id;
  }
  return systemId;
}

/** How a claim names its holder's host: the hostname, and the system it runs on. */
function claimHost(q: Quarantine): string {
  const sys = thisSystem();
  return sys === '' ? thisHost(q.settings) : `${thisHost(q.settings)} (${sys})`;
}

/**
 * This process as a claimer of `item`, with what it knows of a claim already on it: dead when it was
 * made on this same system by a process that is no longer running; a claim of this system that names
 * no process (made before claims did) is dead when this process holds the item's files, which a live
 * process of this host acting on it would hold. Not the other way round: a process releasing the item
 * from the bytes in a shared store holds no files, so holding them proves nothing while it runs.
 */
function holderFor(q: Quarantine, item: QuarantineItem, holdsFiles: boolean): ClaimHolder {
  const host = claimHost(q);
  const base = { host, pid: process.pid };
  if (item.status !== 'releasing') return base;
  if (item.claimPid === undefined) return holdsFiles && (item.claimHost === undefined || item.claimHost === host) ? { ...base, deadLocal: 'any' } : base;
  if (item.claimHost === host && item.claimPid !== process.pid && !alive(item.claimPid)) return { ...base, deadLocal: item.claimPid };
  return base;
}

/**
 * Claim the files of `id`: the claimed item; undefined when they are gone; 'busy' when a live process
 * has them claimed; a string saying why they cannot be used.
 */
function claimFiles(files: QuarantineStore, id: string): ClaimedItem | undefined | 'busy' | string {
  try {
    return files.claim(id);
  } catch (err) {
    if (!(err instanceof QuarantineError && err.notFound)) return describeError(err);
    return files.state(id).claimedByLive ? 'busy' : undefined;
  }
}

/** The item's message for the action: its files on this host, or the bytes a shared store keeps. */
type Source = { readonly files?: ClaimedItem; readonly message?: MessageView };
type Step = (source: Source, item: QuarantineItem) => Promise<{ ok: true; detail?: string } | { ok: false; reason: string }>;

function takenText(id: string, now: QuarantineItem | undefined): string {
  if (!now || now.status === 'releasing') return `${id} is already taken: someone else is acting on it right now${now?.statusBy ? ` (${now.statusBy})` : ''}`;
  const by = now.statusBy ? ` by ${now.statusBy}${now.statusAt ? ` at ${now.statusAt}` : ''}` : '';
  return `no quarantined message ${id}: it was already taken (${now.status}${by})`;
}

/**
 * One action on one item, exactly once. The files are claimed first (a rename: on this host one
 * process alone gets them), then the item in the store (atomic across hosts sharing a store). A live
 * process acting on the item holds both from its first step to its last, so whoever holds the files
 * and finds the item claimed in the store has found a dead process's claim, and takes it over at once.
 */
async function act(q: Quarantine, id: string, actor: Actor, action: string, final: 'released' | 'deleted' | 'expired', step: Step, needBytes: boolean): Promise<ActionResult> {
  try {
    checkId(id);
  } catch (err) {
    return { ok: false, reason: (err as Error).message, notFound: true };
  }
  const files = new QuarantineStore(q.paths.home);
  // An action of this host that the store has not recorded yet is recorded first: never done twice.
  await recordUnrecorded(q, id);
  const known = await q.store.getItem(id);
  if (!known) return { ok: false, reason: `no quarantined message ${id}`, notFound: true };
  if (known.status !== 'held' && known.status !== 'releasing') return { ok: false, reason: takenText(id, known) };
  const held = claimFiles(files, id);
  if (held === 'busy') return { ok: false, reason: takenText(id, await q.store.getItem(id)) };
  if (typeof held === 'string') return { ok: false, reason: `${id}: ${held}` };
  let claim: ItemClaim | undefined;
  try {
    claim = await q.store.claimItem(id, actor, action, CLAIM_STALE_MS, holderFor(q, known, held !== undefined));
  } catch (err) {
    held?.restore();
    throw err;
  }
  if (!claim) {
    const now = await q.store.getItem(id);
    // Done with already (its files came back after a crash between the record and the removal): they go.
    if (held && now && now.status !== 'held' && now.status !== 'releasing') held.remove();
    else held?.restore();
    if (!now) return { ok: false, reason: `no quarantined message ${id}`, notFound: true };
    return { ok: false, reason: takenText(id, now) };
  }
  let source: Source = held ? { files: held, message: held.message } : {};
  if (!held) {
    const here = claim.item.host === thisHost(q.settings);
    // An item held on another host (or whose files are gone here), in a store that keeps the bytes:
    // acted on from here, through this host's qmail-queue; the holding host's files go at its next sweep.
    let bytes: Buffer | undefined;
    try {
      bytes = needBytes && q.store.shared ? await q.store.itemBytes(id) : undefined;
    } catch (err) {
      await claim.abandon().catch(() => undefined);
      throw err;
    }
    if (bytes) source = { message: new MemoryMessage(bytes) };
    else if (needBytes || (!here && !q.store.shared)) {
      await claim.abandon();
      return { ok: false, reason: `${id}: ${here ? `its message is not in ${files.dir}` : `its message is held on ${claim.item.host}: act on it there`}` };
    }
    // Deleting or expiring an item whose bytes are not here: only the index is left to update.
  }
  return withClaim(q, claim, action, source, actor, final, step);
}

async function withClaim(q: Quarantine, claim: ItemClaim, action: string, source: Source, actor: Actor, final: 'released' | 'deleted' | 'expired', step: Step): Promise<ActionResult> {
  const { item } = claim;
  const claimed = source.files;
  let done;
  try {
    done = await step(source, item);
  } catch (err) {
    done = { ok: false as const, reason: describeError(err) };
  }
  if (!done.ok) {
    await claim.abandon();
    claimed?.restore();
    return { ok: false, reason: done.reason };
  }
  const detail = done.detail ?? (source.message ? undefined : 'its message was gone already');
  try {
    await claim.finish(final, detail);
  } catch (err) {
    // The action happened (a release was queued): the bytes go, or it could happen twice; and it is
    // noted here, so that the claim is recorded as done rather than given back to held.
    const noted = noteUnrecorded(q.paths.home, item.id, { final, action, ...(detail === undefined ? {} : { detail }), who: actor.who, from: actor.from, host: claimHost(q), pid: process.pid });
    claimed?.remove();
    const later = noted ? `: it is recorded when the store answers again (${join(q.paths.home, UNRECORDED_DIR, item.id)})` : '';
    return { ok: false, reason: `${item.id} was ${final}, but the store could not record it: ${describeError(err)}${later}` };
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
    async (source, item) => {
      const envelope = encodeEnvelope(Buffer.from(item.sender.base64, 'base64'), [Buffer.from(item.recipient.base64, 'base64')]);
      const r = await new QmailQueue(q.paths.qmailQueue, q.settings.queueTimeoutMs).deliver(source.message!, envelope);
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
      // Another host's item is that host's to expire, unless the store is shared by all (any host may).
      if (item.host !== host && !q.store.shared && !new QuarantineStore(q.paths.home).state(item.id).inPlace) continue;
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

/**
 * The stored bytes of an item: its files on this host, else the bytes a shared store keeps (throws a
 * QuarantineError when neither has them).
 */
export async function itemMessage(q: Quarantine, id: string): Promise<MessageView> {
  try {
    return new QuarantineStore(q.paths.home).get(id).message;
  } catch (err) {
    if (!(err instanceof QuarantineError && err.notFound) || !q.store.shared) throw err;
    const bytes = await q.store.itemBytes(id);
    if (!bytes) throw err;
    return new MemoryMessage(bytes);
  }
}
