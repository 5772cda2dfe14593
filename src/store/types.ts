// The store: what is not routing and not a message in flight — the quarantine's index, per-user
// preferences, digest bookkeeping, one-use link tokens and the audit log. One interface, several
// engines (SQLite in $NQQUEUE_HOME by default; PostgreSQL for sites with several MX hosts). Everything
// is asynchronous and speaks in plain values (ISO dates as strings, addresses as text plus their exact
// bytes): nothing an engine does leaks out of it. Quarantined message bytes are not in the store: they
// stay durable files under $NQQUEUE_HOME/quarantine, which the store indexes.

/** An envelope address: the text (control bytes shown as `?`) and the exact bytes, base64. */
export interface StoredAddress {
  readonly text: string;
  readonly base64: string;
}

/** Where a routing line was written: `general.cfb` line 3. */
export interface RuleRef {
  readonly file: string;
  readonly line: number;
}

/** One plugin's result, as the pipeline recorded it for this recipient. */
export interface ItemResult {
  readonly plugin: string;
  readonly params: string;
  readonly stage: 'general' | 'per-user';
  readonly verdict: string;
  readonly flagged: boolean;
  readonly score?: number;
  readonly text?: string;
  readonly details: Readonly<Record<string, unknown>>;
}

export type ItemStatus = 'held' | 'releasing' | 'released' | 'deleted' | 'expired';

/** One quarantined copy: one message for one recipient. */
export interface QuarantineItem {
  readonly id: string;
  /** When it was quarantined, ISO 8601 UTC. */
  readonly date: string;
  /** The NQqueue id of the message (the log line's id=). */
  readonly messageId: string;
  /** The host that holds the message bytes (the store may be shared by several). */
  readonly host: string;
  readonly size: number;
  readonly sender: StoredAddress;
  readonly recipient: StoredAddress;
  /** The recipient as lower-case text without the RELAYCLIENT suffix: whose item it is. */
  readonly owner: string;
  /** The owner's domain, lower case. */
  readonly domain: string;
  /** The Subject, decoded, control characters removed (may be ''). */
  readonly subject: string;
  /** Every plugin that ran for this recipient, general stage first. */
  readonly results: readonly ItemResult[];
  /** The plugins whose flagged results made the quarantine keep it. */
  readonly caughtBy: readonly string[];
  /** The routing lines that chose the chains. */
  readonly routing: { readonly general?: RuleRef; readonly user?: RuleRef };
  readonly note?: string;
  readonly status: ItemStatus;
  /** When and by whom the status last changed (absent while held since quarantined). */
  readonly statusAt?: string;
  readonly statusBy?: string;
  /** While releasing: the host and process that hold the claim. */
  readonly claimHost?: string;
  readonly claimPid?: number;
}

export type NewQuarantineItem = Omit<QuarantineItem, 'status' | 'statusAt' | 'statusBy' | 'claimHost' | 'claimPid'>;

export interface ItemQuery {
  /** Only this owner's items (what an end user sees). */
  readonly owner?: string;
  readonly domain?: string;
  /** Substring of the sender's text, case-insensitive. */
  readonly sender?: string;
  /** Substring of the recipient's text, case-insensitive. */
  readonly recipient?: string;
  /** Free text: sender, recipient, subject or a plugin's name, case-insensitive. */
  readonly text?: string;
  /** A plugin that caught it. */
  readonly caughtBy?: string;
  /** Default: held only. */
  readonly status?: readonly ItemStatus[];
  /** ISO dates, inclusive / exclusive. */
  readonly since?: string;
  readonly before?: string;
  /** Newest first by default. */
  readonly order?: 'newest' | 'oldest';
  readonly limit?: number;
  readonly offset?: number;
}

/** Who did something, and from where: `alice@example.com` from `192.0.2.1`, `root` from `command line`. */
export interface Actor {
  readonly who: string;
  readonly from: string;
}

/**
 * Who claims an item: the host and process. A claim is a dead process's when it is old (staleMs), or
 * when the claimer knows it: a claim made on its own host by a process that is gone.
 */
export interface ClaimHolder {
  readonly host: string;
  readonly pid: number;
  /**
   * Claims made on this same host (or before claims named a host) that the caller knows are dead,
   * taken over at once whatever their age: `any` (a claim that names no process, when the caller holds
   * the item's files, which a live process on this host acting on it would hold), or the pid of a
   * process that is gone.
   */
  readonly deadLocal?: 'any' | number;
}

/**
 * An item claimed for one action: while claimed, no one else can claim it. `finish` records the final
 * status (and the audit entry) in one step; `abandon` puts it back to held.
 */
export interface ItemClaim {
  readonly item: QuarantineItem;
  finish(status: 'released' | 'deleted' | 'expired', detail?: string): Promise<void>;
  abandon(): Promise<void>;
}

export type DigestCadence = 'never' | 'daily' | 'hourly';

export interface Preferences {
  /** Absent until the user chooses one: the site's `[digest] cadence` applies. */
  readonly digest?: DigestCadence;
  /** A BCP 47 tag ('en' by default). */
  readonly language: string;
}

export interface AuditEntry {
  /** ISO 8601 UTC. */
  readonly at: string;
  readonly who: string;
  readonly from: string;
  /** release, delete, expire, login, login-refused, preferences, digest... */
  readonly action: string;
  readonly item?: string;
  readonly detail?: string;
}

export interface AuditQuery {
  readonly item?: string;
  readonly who?: string;
  readonly limit?: number;
}

// ---- Learning: what was taught to which learner, so that nothing is taught twice ----

export type LearnClass = 'spam' | 'ham';

/** One message (by its digest) for one user and one learner (`spamassassin`, `rspamd`, `dspam`). */
export interface LearnedKey {
  /** The message's learning digest (hex): the same message has the same digest wherever it is found. */
  readonly digest: string;
  /** The user it was taught for, lower case. */
  readonly user: string;
  readonly learner: string;
}

export interface LearnedEntry extends LearnedKey {
  readonly class: LearnClass;
  /** ISO 8601 UTC. */
  readonly at: string;
}

// ---- Rollups: per-minute figures of each host, kept for the console's graphs -----------------------

/**
 * The latency bounds, in ms, shared by the store's per-minute buckets and the Prometheus histograms:
 * a latency series' `buckets` has one count per bound plus one for everything above the last (+Inf).
 */
export const LATENCY_BUCKETS_MS: readonly number[] = Object.freeze([1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000]);

/** One per-minute figure of one host. Counters add up; a gauge's value replaces the minute's. */
export interface RollupRow {
  /** ISO 8601 UTC, seconds and ms zero: '2026-12-02T10:07:00.000Z'. */
  readonly minute: string;
  /** os.hostname() of the host that counted it. */
  readonly host: string;
  /** messages, recipients, sender, sender_domain, virus, refusal, plugin_ms, spool_items... */
  readonly series: string;
  /** '' when the series has no key. */
  readonly key: string;
  /** Events (a gauge: 1). */
  readonly count: number;
  /** ms for latencies, the value for gauges, else 0. */
  readonly sum: number;
  /**
   * Latency series: how many of the `count` events fell in each bucket — NOT cumulative: [i] counts
   * those above LATENCY_BUCKETS_MS[i-1] and at most LATENCY_BUCKETS_MS[i]; the last, those above every
   * bound. So they add up to `count`. LATENCY_BUCKETS_MS.length + 1 entries.
   */
  readonly buckets?: readonly number[];
  readonly gauge?: boolean;
}

/** Which rollups: one series, from `since` (inclusive) to `before` (exclusive), one host or all summed. */
export interface RollupQuery {
  readonly series: string;
  readonly since: string;
  readonly before: string;
  /** Absent: every host, summed. */
  readonly host?: string;
}

/** A counter series over time: the minutes from `minute` on, `stepMinutes` of them, added up. */
export interface RollupPoint {
  /** The first minute of the step, ISO 8601 UTC. */
  readonly minute: string;
  readonly key: string;
  readonly count: number;
  readonly sum: number;
  /** Latency series only: the steps' buckets added up (LATENCY_BUCKETS_MS.length + 1). */
  readonly buckets?: readonly number[];
}

/** A key's figures added up over a whole range. */
export interface RollupTotal {
  readonly key: string;
  readonly count: number;
  readonly sum: number;
  readonly buckets?: readonly number[];
}

/** A gauge over time: per step, the highest value of any minute in it (hosts summed minute by minute). */
export interface GaugePoint {
  readonly minute: string;
  readonly max: number;
}



// ---- Allow and block lists: the `lists` plugin, `nqqueue lists`, the console ----

/** Whose list: the site's (global), a domain's, one user's. */
export type ListScope = 'global' | 'domain' | 'user';
export type ListAction = 'allow' | 'block';
/** address: one sender address; domain: that sender domain only; subdomains: it and every domain under it; network: the client's IP network. */
export type ListKind = 'address' | 'domain' | 'subdomains' | 'network';

/** A list: global (owner ''), a domain's (owner: the lower-case domain), a user's (owner: the lower-case address). */
export interface ListHolder {
  readonly scope: ListScope;
  readonly owner: string;
}

export interface NewListEntry extends ListHolder {
  readonly action: ListAction;
  readonly kind: ListKind;
  /** The normal form (src/lists/entry.ts): a lower-case address or domain, or a network `192.0.2.0/24`. */
  readonly value: string;
  /** allow: the plugins it skips for that recipient; absent: the lists plugin's default policy. */
  readonly skip?: readonly string[];
  readonly note?: string;
  /** Who added it (an address, a Unix user). */
  readonly by: string;
}

export interface ListEntry extends NewListEntry {
  readonly id: string;
  /** When it was added (or last replaced), ISO 8601 UTC. */
  readonly added: string;
}

export interface ListQuery {
  readonly scope?: ListScope;
  /** With scope: that owner's list only. */
  readonly owner?: string;
  readonly action?: ListAction;
  /** By list (scope, owner), then in the order added (entries added at once: in the order given). */
  readonly limit?: number;
  readonly offset?: number;
}

/** What one message is looked up by: its sender, its client's IP, the lists that apply. */
export interface ListProbe {
  /** The envelope sender ('' for a bounce: only networks can match). */
  readonly sender: string;
  readonly ip?: string;
  readonly holders: readonly ListHolder[];
}

export interface Store {
  /** `sqlite`, `postgres`: for messages only. */
  readonly engine: string;

  /**
   * Whether the store is the site's, shared by several hosts (PostgreSQL): then it keeps each held
   * item's message bytes too, so that any host can show and release it, and the site's secrets.
   * Otherwise (SQLite, one host) the bytes are only in the files of the host that holds the item.
   */
  readonly shared: boolean;

  /**
   * Index an item. Adding an id that is already indexed changes nothing (indexing is idempotent).
   * `message`: its bytes, kept with it when the store shares messages (in the same step: never an
   * index entry without them); give them only then.
   */
  addItem(item: NewQuarantineItem, message?: Buffer): Promise<void>;
  /** The bytes kept with a held item (shared); undefined when the store has none for it. */
  itemBytes(id: string): Promise<Buffer | undefined>;
  /** Forget an item entirely (it was taken back: its message was deferred after all). */
  forgetItem(id: string): Promise<void>;
  getItem(id: string): Promise<QuarantineItem | undefined>;
  /** The ids of every indexed item, whatever its status (to index items the store does not know yet). */
  itemIds(): Promise<ReadonlySet<string>>;
  findItems(query: ItemQuery): Promise<{ readonly items: readonly QuarantineItem[]; readonly total: number }>;
  /**
   * Claim a held item for an action, atomically: of any number of concurrent claims (processes, hosts)
   * exactly one gets it; the others get undefined, as for an item that is not held. A claim left by a
   * process that died is given back after `staleMs`.
   */
  claimItem(id: string, actor: Actor, action: string, staleMs?: number, holder?: ClaimHolder): Promise<ItemClaim | undefined>;
  /** Held items quarantined before `before` (for expiry). */
  expiredItems(before: string, limit?: number): Promise<readonly QuarantineItem[]>;

  getPreferences(owner: string): Promise<Preferences>;
  setPreferences(owner: string, prefs: Partial<Preferences>): Promise<void>;

  /**
   * Owners with held items quarantined after their last digest, with their cadence (whatever it is,
   * `never` included: the caller decides), their last digest and the date of the oldest new item; by owner.
   * `cadence` is absent for an owner who never chose one: the site's ([digest] cadence) applies.
   */
  digestCandidates(): Promise<readonly { readonly owner: string; readonly cadence?: DigestCadence; readonly lastSent?: string; readonly newSince?: string }[]>;
  /** Record that `owner` was sent a digest at `at` covering items quarantined up to `upTo`. */
  markDigestSent(owner: string, at: string, upTo: string): Promise<void>;

  /**
   * Take the lease `name` for `ms` (a job the site runs once, whichever host gets there first: the
   * digests): true when `holder` has it now — it was free, expired, or already the holder's (renewed).
   */
  takeLease(name: string, holder: string, ms: number): Promise<boolean>;
  /** Give the lease back (only the holder's own). */
  dropLease(name: string, holder: string): Promise<void>;

  /**
   * A secret of the site (the key that signs digest links, so that any host's console checks the
   * links any host sent): the one stored under `name`, or `candidate`, stored now, when there is none.
   * Of several hosts at once, one candidate wins and every host gets that one.
   */
  siteSecret(name: string, candidate: Buffer): Promise<Buffer>;

  /** Use a one-use token: true the first time, false ever after. Tokens past `expires` may be purged. */
  useToken(token: string, expires: string): Promise<boolean>;

  audit(entry: AuditEntry): Promise<void>;
  /** Newest first (`limit`: the newest N). */
  auditLog(query?: AuditQuery): Promise<readonly AuditEntry[]>;

  // ---- Learning (`nqqueue learn`, "not spam") ----
  /** The class this message was last taught as, for this user and learner; undefined when never. */
  learnedClass(key: LearnedKey): Promise<LearnClass | undefined>;
  /** Remember what was taught: replaces the class (and date) of the same key (taught again as the other class). */
  markLearned(entry: LearnedEntry): Promise<void>;
  /** How many messages are remembered per learner and class (for one user, or all). */
  learnedCounts(user?: string): Promise<readonly { readonly learner: string; readonly class: LearnClass; readonly count: number }[]>;
  // ---- Rollups: per-minute figures for the console's dashboard (written by the metrics rollup writer)
  /** One transaction: every row or none. Counters are added to the minute's; a gauge replaces it. */
  addRollups(rows: readonly RollupRow[]): Promise<void>;
  /**
   * A series over time in steps of `stepMinutes` (aligned on multiples of it since the epoch), oldest
   * first then by key; only steps and keys with rows. `keys` limits it to those keys.
   */
  rollupTimeline(query: RollupQuery & { readonly stepMinutes: number; readonly keys?: readonly string[] }): Promise<readonly RollupPoint[]>;
  /** Each key of a series added up over the range, largest count first (then by key); `limit` the top N. */
  rollupTotals(query: RollupQuery & { readonly limit?: number }): Promise<{ readonly rows: readonly RollupTotal[]; readonly keys: number; readonly count: number }>;
  /** A gauge series (key '') over time, steps as for rollupTimeline. */
  rollupGauge(query: RollupQuery & { readonly stepMinutes: number }): Promise<readonly GaugePoint[]>;
  /** Each host's latest value of a gauge series in the range (by host): what it is now. */
  rollupGaugeLatest(query: RollupQuery): Promise<readonly { readonly host: string; readonly minute: string; readonly value: number }[]>;
  /** The hosts with rollups in the range, by name. */
  rollupHosts(since: string, before: string): Promise<readonly string[]>;
  /**
   * Delete every row of a minute before `before`; how many of those per-minute rows went. (An engine that
   * keeps coarser sums too drops an hour's or a day's once all of it is before `before`.)
   */
  pruneRollups(before: string): Promise<number>;
  // ---- Allow and block lists ----
  /**
   * Add an entry. A list holds one entry per sender value (kind + value): adding one that is there
   * replaces it (allow becomes block, a new policy), keeping its id; `replaced` is what it was.
   */
  putListEntry(entry: NewListEntry): Promise<{ readonly entry: ListEntry; readonly replaced?: ListEntry }>;
  /** Many at once, in one transaction (an import): all or none. Returns how many were new. */
  putListEntries(entries: readonly NewListEntry[]): Promise<number>;
  getListEntry(id: string): Promise<ListEntry | undefined>;
  /** Remove an entry; with `holder`, only when it is in that list (a user removes only their own). */
  deleteListEntry(id: string, holder?: ListHolder): Promise<ListEntry | undefined>;
  findListEntries(query: ListQuery): Promise<{ readonly entries: readonly ListEntry[]; readonly total: number }>;
  /** Every entry of the probe's lists that matches its sender or client (indexed: no scan of a list). */
  matchListEntries(probe: ListProbe): Promise<readonly ListEntry[]>;

  close(): Promise<void>;
}

/** The store is unreachable or broken: whatever needed it is deferred, never done without it. */
export class StoreError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreError';
  }
}
