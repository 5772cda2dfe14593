// `lists`: the allow and block lists kept in the store (managed with `nqqueue lists` and the console).
// Per-user stage: the recipient's own list, their domain's and the global one, in that precedence
// (src/lists/entry.ts); general stage: the global list only (there is no recipient yet). A block refuses
// (`text`, default below); an allow asks the host to skip the spam checks of the entry's policy (or of
// `skip`, the default policy) for this recipient — the host skips only plugins that declare themselves
// skippable, never a virus check. The store is loaded only here, for a message whose chain has `lists`;
// a store that cannot be used defers the message: `onerror=accept` is refused, so a blocked sender is
// never let through because the list could not be read.

import { describeError } from '../errors.js';
import { decide, entryText, holdersFor, valueText } from '../lists/entry.js';
import { BackendError, definePlugin, PluginConfigError } from '../plugin-api/define.js';
import type { ListHolder, Store } from '../store/types.js';
import { VERSION } from '../version.js';

export interface ListsConfig {
  /** The default policy: what an allow entry without its own skips. */
  readonly skip: readonly string[];
  readonly text: string;
}

export const DEFAULT_SKIP: readonly string[] = ['spamassassin', 'rspamd', 'dspam'];
export const DEFAULT_BLOCK_TEXT = 'mail from this sender is refused by a block list (#5.7.1)';
/** Built-ins that are never skipped (the host refuses anyway): named in a policy, they are an error. */
export const NEVER_SKIPPED: readonly string[] = ['clamav', 'lists', 'quarantine'];

const PLUGIN = /^[a-z][a-z0-9_-]{0,63}$/;

/** A policy as written (`spamassassin:rspamd`, like attach=): plugin names; throws for a bad one. */
export function parseSkip(text: string): string[] {
  const names = text
    .split(/[:\s]+/)
    .map((n) => n.trim().toLowerCase())
    .filter(Boolean);
  for (const n of names) {
    if (!PLUGIN.test(n)) throw new PluginConfigError(`skip: ${JSON.stringify(n)} is not a plugin name`);
    if (NEVER_SKIPPED.includes(n)) throw new PluginConfigError(`skip: ${n} is never skipped${n === 'clamav' ? ' (a virus check runs for every message)' : ''}`);
  }
  return [...new Set(names)];
}

/** The refusal text: what qmail-smtpd can carry (printable ASCII, one line, at most 255 bytes). */
export function checkBlockText(text: string): string {
  if (!/^[\x20-\x7e]{1,255}$/.test(text)) throw new PluginConfigError('text: one line of printable ASCII, 1 to 255 characters');
  return text;
}

export default definePlugin<ListsConfig>({
  name: 'lists',
  version: VERSION,
  stages: ['general', 'per-user'],
  description:
    "The allow and block lists kept in the store (nqqueue lists, the console): a block entry refuses the message, an allow entry skips the spam checks of its policy for that recipient, never a virus check. Per-user stage: the recipient's own list, then their domain's, then the global one (the first with a matching entry decides); general stage: the global list only. A store that cannot be read defers the message (onerror=accept is refused).",
  params: {
    keys: {
      skip: {
        check: (v) => void parseSkip(v),
        doc: 'the default policy: the plugins an allow entry without a policy of its own skips for its recipient (colon-separated plugin names); clamav is refused: a virus check is never skipped',
        default: DEFAULT_SKIP.join(':'),
      },
      text: { check: (v) => void checkBlockText(v), doc: 'the refusal a block entry gives (one line of printable ASCII, at most 255 characters)', default: DEFAULT_BLOCK_TEXT },
    },
  },
  // Whatever the site's onerror: a list that cannot be read defers the message.
  defaults: { onerror: 'tempfail' },
  configure({ params }) {
    if (params.get('onerror') === 'accept') throw new PluginConfigError('onerror=accept would let blocked senders through whenever the store cannot be read: use tempfail (the default) or reject');
    const skip = params.get('skip');
    const text = params.get('text');
    return { skip: skip === undefined ? DEFAULT_SKIP : parseSkip(skip), text: text === undefined ? DEFAULT_BLOCK_TEXT : checkBlockText(text) };
  },
  // The recipient's own list decides first: each recipient is looked up on their own.
  scope: (_config, recipient) => recipient,
  async run(ctx) {
    const holders: ListHolder[] = ctx.stage === 'general' ? [{ scope: 'global', owner: '' }] : holdersFor(ctx.recipient);
    const { sharedStore, dropSharedStore } = await import('../store/open.js');
    let store: Store | undefined;
    let matches;
    try {
      store = await sharedStore(ctx.home, ctx.settings);
      matches = await store.matchListEntries({ sender: ctx.sender, ...(ctx.client.ip === undefined ? {} : { ip: ctx.client.ip }), holders });
    } catch (err) {
      if (store) dropSharedStore(ctx.home, store);
      throw new BackendError(`the lists cannot be read: ${describeError(err)}`, { cause: err });
    }
    const d = decide(matches);
    if (d.action === 'none' || !d.entry) return { verdict: 'accept', details: { matched: 0 } };
    const e = d.entry;
    const details = { action: e.action, scope: e.scope, owner: e.owner, entry: e.id, kind: e.kind, value: valueText(e.kind, e.value), matched: d.matches.length };
    if (e.action === 'block') return { verdict: 'reject', text: ctx.config.text, flagged: true, details };
    const skip = e.skip ?? ctx.config.skip;
    return {
      verdict: 'accept',
      details: { ...details, skip: skip.join(',') },
      skip,
      skipReason: `the sender is allowed by ${entryText(e, ctx.config.skip)}`,
    };
  },
});
