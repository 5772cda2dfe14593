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
}

export type NewQuarantineItem = Omit<QuarantineItem, 'status' | 'statusAt' | 'statusBy'>;

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

  /** Index an item. Adding an id that is already indexed changes nothing (indexing is idempotent). */
  addItem(item: NewQuarantineItem): Promise<void>;
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
  claimItem(id: string, actor: Actor, action: string, staleMs?: number): Promise<ItemClaim | undefined>;
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

  /** Use a one-use token: true the first time, false ever after. Tokens past `expires` may be purged. */
  useToken(token: string, expires: string): Promise<boolean>;

  audit(entry: AuditEntry): Promise<void>;
  /** Newest first (`limit`: the newest N). */
  auditLog(query?: AuditQuery): Promise<readonly AuditEntry[]>;

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
