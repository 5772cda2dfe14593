// The global quarantine store: $NQQUEUE_HOME/quarantine/<ID>/ holds `message` (the bytes as the
// recipient would have got them) and `meta.json` (envelope, date, the results that caught it). IDs are
// generated, never taken from an address. An item is written and fsynced under tmp/ first and renamed
// into place at the message's commit point, before the message is accepted; when the message ends up
// deferred after all, it is taken back (renamed under tmp/ as `.drop`, then removed).
// `release` and `delete` claim an item by renaming it back under tmp/, so two commands never act on
// the same item; a claim whose process died is put back, and partial items of killed runs removed, by
// the next process that uses the store.

import { randomBytes } from 'node:crypto';
import { closeSync, constants, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';

import { isAlive, syncDir, writePrivateFile } from '../intake/files.js';
import { FileMessage } from '../intake/message.js';
import { ensurePrivateDir, STALE_MS, sweepOnFirstUse } from '../intake/workdir.js';
import type { MessageView, Result } from '../pipeline/types.js';
import type { ItemResult, RuleRef } from '../store/types.js';

export const META_FORMAT = 'nqqueue-quarantine-1';
/** What an item ID looks like: base-36 time then random hex, lower case. Anything else is refused. */
export const ID_PATTERN = /^[0-9a-z]{16,40}$/;

export interface StoredAddress {
  /** The address as text (non-printable bytes shown as `?`). */
  readonly text: string;
  /** The exact envelope bytes (a recipient keeps any RELAYCLIENT suffix), base64. */
  readonly base64: string;
}

/** One result that caught the message, as the pipeline recorded it. */
export interface CaughtBy {
  readonly plugin: string;
  readonly params: string;
  readonly verdict: string;
  readonly score?: number;
  readonly text?: string;
  readonly details: Readonly<Record<string, unknown>>;
}

export interface QuarantineMeta {
  readonly format: typeof META_FORMAT;
  readonly id: string;
  /** ISO 8601, UTC. */
  readonly date: string;
  /** The NQqueue id of the message (the log line's id=). */
  readonly messageId: string;
  readonly size: number;
  readonly sender: StoredAddress;
  readonly recipient: StoredAddress;
  readonly caughtBy: readonly CaughtBy[];
  readonly note?: string;
  // What the store indexes, kept with the bytes too so that the index can be rebuilt from the files
  // (absent in items kept before there was a store).
  /** Whose item it is: the recipient without the RELAYCLIENT suffix, lower case. */
  readonly owner?: string;
  readonly host?: string;
  readonly subject?: string;
  /** Every result of this recipient's chains, general stage first. */
  readonly results?: readonly ItemResult[];
  readonly routing?: { readonly general?: RuleRef; readonly user?: RuleRef };
}

export interface NewItem {
  /** The item's ID when the caller chose it beforehand (newQuarantineId()). */
  readonly id?: string;
  readonly messageId: string;
  readonly sender: Buffer;
  readonly recipient: Buffer;
  readonly caughtBy: readonly Result[];
  readonly note?: string;
  readonly date?: Date;
  readonly owner?: string;
  readonly host?: string;
  readonly subject?: string;
  readonly results?: readonly ItemResult[];
  readonly routing?: { readonly general?: RuleRef; readonly user?: RuleRef };
}

/** An item written but not yet visible: commit() puts it in place; discard() removes it, before or after commit. */
export interface PendingItem {
  readonly id: string;
  commit(): void;
  discard(): void;
}

/** A pending item of the global store, with the record written beside its bytes. */
export interface PendingStoreItem extends PendingItem {
  readonly meta: QuarantineMeta;
}

export interface StoredItem {
  readonly meta: QuarantineMeta;
  readonly message: MessageView;
}

/** A claimed item: out of the store until restore() or remove(). */
export interface ClaimedItem extends StoredItem {
  restore(): void;
  remove(): void;
}

export class QuarantineError extends Error {
  constructor(
    message: string,
    readonly notFound = false,
  ) {
    super(message);
    this.name = 'QuarantineError';
  }
}

export function newQuarantineId(): string {
  return `${Date.now().toString(36)}${randomBytes(8).toString('hex')}`;
}

export function storedAddress(raw: Buffer): StoredAddress {
  // eslint-disable-next-line no-control-regex
  return { text: raw.toString('utf8').replace(/[\x00-\x1f\x7f\ufffd]/g, '?'), base64: raw.toString('base64') };
}

/** A short account of why an item is held, e.g. `clamav: Eicar-Test (virus)`, `spamassassin: score 1000.0`. */
export function whyText(caughtBy: readonly CaughtBy[]): string {
  return caughtBy
    .map((c) => {
      const d = c.details;
      const bits: string[] = [];
      for (const key of ['virus', 'result', 'action']) if (typeof d[key] === 'string') bits.push(d[key] as string);
      if (typeof c.score === 'number') bits.push(`score ${c.score.toFixed(1)}`);
      return bits.length ? `${c.plugin}: ${bits.join(', ')}` : c.plugin;
    })
    .join('; ');
}

export class QuarantineStore {
  readonly dir: string;
  readonly tmp: string;

  constructor(home: string) {
    this.dir = join(home, 'quarantine');
    this.tmp = join(this.dir, 'tmp');
  }

  private ensure(): void {
    ensurePrivateDir(this.dir);
    ensurePrivateDir(this.tmp);
  }

  /**
   * Put back claims of dead processes; remove pending and dropped items of dead processes, and
   * anything else in tmp/ older than STALE_MS (a live claim excepted).
   */
  recover(now = Date.now()): void {
    let names: string[];
    try {
      names = readdirSync(this.tmp);
    } catch {
      return;
    }
    for (const name of names) {
      const m = /^(\d+)\.([0-9a-z]+)\.(new|claim|drop)$/.exec(name);
      const path = join(this.tmp, name);
      try {
        const st = lstatSync(path);
        const old = now - st.mtimeMs > STALE_MS;
        if (!m) {
          if (old) rmSync(path, { recursive: true, force: true });
          continue;
        }
        const pid = Number(m[1]);
        const dead = pid !== process.pid && !isAlive(pid);
        if (m[3] === 'claim') {
          if (dead && ID_PATTERN.test(m[2]!)) renameSync(path, join(this.dir, m[2]!));
        } else if (dead || old) {
          rmSync(path, { recursive: true, force: true });
        }
      } catch {
        // raced with another process
      }
    }
  }

  /** Write an item under tmp/ (fsynced); it appears in the store when committed. */
  async prepare(message: MessageView, item: NewItem): Promise<PendingStoreItem> {
    this.ensure();
    // On the queue path, once per process (and hourly in the daemon), not per copy.
    sweepOnFirstUse(this.tmp, () => this.recover());
    const id = item.id ?? newQuarantineId();
    if (!ID_PATTERN.test(id)) throw new QuarantineError(`not a quarantine id: ${JSON.stringify(id.slice(0, 60))}`);
    const pending = join(this.tmp, `${process.pid}.${id}.new`);
    mkdirSync(pending, { mode: 0o700 });
    let written: QuarantineMeta | undefined;
    try {
      const size = await writePrivateFile(join(pending, 'message'), message.chunks());
      if (size !== message.size) throw new Error(`message stream gave ${size} of ${message.size} bytes`);
      const meta: QuarantineMeta = {
        format: META_FORMAT,
        id,
        date: (item.date ?? new Date()).toISOString(),
        messageId: item.messageId,
        size,
        sender: storedAddress(item.sender),
        recipient: storedAddress(item.recipient),
        caughtBy: item.caughtBy.map((r) => ({
          plugin: r.plugin,
          params: r.params,
          verdict: r.verdict,
          ...(r.score === undefined ? {} : { score: r.score }),
          ...(r.text === undefined ? {} : { text: r.text }),
          details: r.details,
        })),
        ...(item.note === undefined ? {} : { note: item.note }),
        ...(item.owner === undefined ? {} : { owner: item.owner }),
        ...(item.host === undefined ? {} : { host: item.host }),
        ...(item.subject === undefined ? {} : { subject: item.subject }),
        ...(item.results === undefined ? {} : { results: item.results }),
        ...(item.routing === undefined ? {} : { routing: item.routing }),
      };
      written = meta;
      await writePrivateFile(join(pending, 'meta.json'), [Buffer.from(`${JSON.stringify(meta, null, 2)}\n`)]);
      syncDir(pending);
    } catch (err) {
      rmSync(pending, { recursive: true, force: true });
      throw err;
    }
    let state: 'pending' | 'kept' | 'gone' = 'pending';
    const meta = written!;
    return {
      id,
      meta,
      commit: () => {
        if (state !== 'pending') return;
        renameSync(pending, join(this.dir, id));
        state = 'kept';
        syncDir(this.dir);
      },
      discard: () => {
        if (state === 'gone') return;
        const was = state;
        state = 'gone';
        if (was === 'pending') rmSync(pending, { recursive: true, force: true });
        else this.takeBack(id);
      },
    };
  }

  /** Remove a committed item (its message was deferred after all); gone already (released, deleted) is fine. */
  private takeBack(id: string): void {
    const dropped = join(this.tmp, `${process.pid}.${id}.drop`);
    try {
      renameSync(join(this.dir, id), dropped);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    syncDir(this.dir);
    rmSync(dropped, { recursive: true, force: true });
  }

  /** Every item, oldest first. Unreadable entries are reported through `problem`. */
  list(problem: (id: string, why: string) => void = () => {}): QuarantineMeta[] {
    this.recover();
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const out: QuarantineMeta[] = [];
    for (const id of names.filter((n) => ID_PATTERN.test(n))) {
      try {
        out.push(this.readMeta(join(this.dir, id), id));
      } catch (err) {
        problem(id, (err as Error).message);
      }
    }
    return out.sort((a, b) => (a.date < b.date ? -1 : a.date > b.date ? 1 : a.id < b.id ? -1 : 1));
  }

  /**
   * Is `id` claimed by a process that is still running, or are its bytes in place? Both false: a claim
   * recorded elsewhere (the index) for it is a dead process's.
   */
  state(id: string): { readonly claimedByLive: boolean; readonly inPlace: boolean } {
    checkId(id);
    this.recover();
    let claimedByLive = false;
    try {
      for (const name of readdirSync(this.tmp)) {
        const m = /^(\d+)\.([0-9a-z]+)\.claim$/.exec(name);
        if (m && m[2] === id && (Number(m[1]) === process.pid || isAlive(Number(m[1])))) claimedByLive = true;
      }
    } catch {
      // no tmp/: nothing claimed
    }
    let inPlace = false;
    try {
      inPlace = lstatSync(join(this.dir, id)).isDirectory();
    } catch {
      // not there
    }
    return { claimedByLive, inPlace };
  }

  /** One item, left in place. */
  get(id: string): StoredItem {
    checkId(id);
    this.recover();
    return this.open(join(this.dir, id), id);
  }

  /** Take an item out of the store for release or deletion. */
  claim(id: string): ClaimedItem {
    checkId(id);
    this.ensure();
    this.recover();
    const home = join(this.dir, id);
    const claimed = join(this.tmp, `${process.pid}.${id}.claim`);
    try {
      const st = lstatSync(home);
      if (!st.isDirectory()) throw new QuarantineError(`${id}: not a quarantine item`);
      renameSync(home, claimed);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new QuarantineError(`no quarantined message ${id}`, true);
      throw err;
    }
    let item: StoredItem;
    try {
      item = this.open(claimed, id);
    } catch (err) {
      renameSync(claimed, home);
      throw err;
    }
    return {
      ...item,
      restore: () => {
        renameSync(claimed, home);
        syncDir(this.dir);
      },
      remove: () => {
        rmSync(claimed, { recursive: true, force: true });
        syncDir(this.tmp);
      },
    };
  }

  private open(dir: string, id: string): StoredItem {
    const meta = this.readMeta(dir, id);
    const path = join(dir, 'message');
    const st = lstatSync(path);
    if (!st.isFile()) throw new QuarantineError(`${id}: message is not a regular file`);
    if (st.size !== meta.size) throw new QuarantineError(`${id}: message is ${st.size} bytes, meta.json says ${meta.size}`);
    return { meta, message: new FileMessage(path, st.size) };
  }

  private readMeta(dir: string, id: string): QuarantineMeta {
    let st;
    try {
      st = lstatSync(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new QuarantineError(`no quarantined message ${id}`, true);
      throw err;
    }
    if (!st.isDirectory()) throw new QuarantineError(`${id}: not a quarantine item`);
    const fd = openSync(join(dir, 'meta.json'), constants.O_RDONLY | constants.O_NOFOLLOW);
    let meta: QuarantineMeta;
    try {
      meta = JSON.parse(readFileSync(fd, 'utf8')) as QuarantineMeta;
    } finally {
      closeSync(fd);
    }
    if (meta.format !== META_FORMAT || meta.id !== id) throw new QuarantineError(`${id}: meta.json is not a quarantine record of this item`);
    return meta;
  }
}

/** Refuse anything but a well-formed ID: it becomes a path. */
export function checkId(id: string): void {
  if (!ID_PATTERN.test(id)) throw new QuarantineError(`not a quarantine id: ${JSON.stringify(id.slice(0, 60))}`);
}
