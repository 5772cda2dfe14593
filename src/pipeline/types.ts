// The data that flows through the pipeline: envelope, message views, verdicts, results, decisions.

import type { Readable } from 'node:stream';

export type Stage = 'general' | 'per-user';

/** One envelope address: the exact bytes qmail-smtpd gave, and the text used for matching. */
export interface Address {
  /** Bytes as received (with any RELAYCLIENT suffix), passed on to qmail-queue unchanged. */
  readonly raw: Buffer;
  /** The address as text with the RELAYCLIENT suffix removed: what config lookups and plugins see. */
  readonly address: string;
  /** Lower-cased domain part ('' when there is no '@'). */
  readonly domain: string;
}

export interface Envelope {
  readonly sender: Address;
  readonly recipients: readonly Address[];
}

/** Read-only access to message bytes, wherever they live (memory or a private spill file). */
export interface MessageView {
  readonly size: number;
  /** The whole message in one Buffer. Prefer stream() for large messages. */
  buffer(): Promise<Buffer>;
  /** The message bytes as a stream, from the start. */
  stream(): Readable;
  /**
   * The message bytes in chunks that are only valid until the next one is asked for (one buffer is
   * reused): for writers that finish with each chunk first. A large message then makes no garbage.
   */
  chunks(): AsyncIterable<Buffer>;
  /** The header block (up to and including the blank line, or the first `limit` bytes). */
  head(limit?: number): Promise<Buffer>;
  /**
   * The path of a file that holds exactly these bytes, from its first byte to its last, when there is
   * one (a spilled message): a backend on this host can then be handed the open file instead of a copy.
   */
  wholeFile?(): string | undefined;
}

/** A header a plugin wants added: name and value (the value may be folded with "\n " or "\n\t"). */
export interface HeaderField {
  readonly name: string;
  readonly value: string;
}

interface OutcomeBase {
  /** Numeric score where the backend gives one (spam score...). */
  score?: number;
  /** Anything later plugins, the log and the quarantine should see. Must be JSON-serialisable. */
  details?: Record<string, unknown>;
  /** True when the plugin found something (virus, spam) even if it does not act on it (`pass`). */
  flagged?: boolean;
}

export type Outcome =
  /**
   * `replace`: the message from here on — its bytes, or a view (e.g. a new header block over the old
   * body, which costs no copy of the message).
   */
  /**
   * `skip`: plugins later in this chain (after the general stage: also in every recipient's chain) that
   * need not run, with `skipReason` saying why (an allow list entry). The host skips only plugins whose
   * definition says `skippable`; a virus check never does, whatever a plugin asks.
   */
  | (OutcomeBase & { verdict: 'accept'; headers?: readonly HeaderField[]; replace?: Buffer | MessageView; skip?: readonly string[]; skipReason?: string })
  | (OutcomeBase & { verdict: 'reject'; text: string })
  | (OutcomeBase & { verdict: 'drop'; reason: string })
  | (OutcomeBase & { verdict: 'tempfail'; text?: string });

export type Verdict = Outcome['verdict'];

/** What one plugin run produced, as later plugins, the log, `test` and the quarantine see it. */
export interface Result {
  readonly plugin: string;
  readonly params: string;
  readonly version: string;
  readonly stage: Stage;
  readonly verdict: Verdict;
  readonly score?: number;
  readonly flagged: boolean;
  readonly details: Readonly<Record<string, unknown>>;
  /** Text for the sender (reject/tempfail) or the reason (drop). */
  readonly text?: string;
  /** When the failure policy decided the verdict: why the plugin failed. */
  readonly error?: string;
  /** Headers this plugin added. */
  readonly headers: readonly HeaderField[];
  readonly replaced: boolean;
  readonly ms: number;
}

export interface ClientInfo {
  readonly ip?: string;
  readonly host?: string;
  readonly localIp?: string;
  readonly localHost?: string;
  readonly helo?: string;
  readonly relayClient?: string;
  readonly authUser?: string;
  readonly proto?: string;
  /** The environment variables plugins may pass on to their programs (TCP*, RELAYCLIENT, ...). */
  readonly env: Readonly<Record<string, string>>;
}

export type FailurePolicy = 'tempfail' | 'accept' | 'reject';
