// `spamassassin`: ask spamd (SPAMC/1.5 HEADERS) with `User:` = the recipient, a fixed user or none;
// tag the message with spamd's own X-Spam-* fields; spam is refused unless `pass`. `hits=N` decides
// instead of spamd's required score. Recipients needing the same spamd user and the same bytes share
// one scan; each line decides with its own threshold. Over maxsize (default 512K) the message is not
// scanned and the log says so; a spamd that cannot be used yields the failure policy.

import type { Timeouts } from '../clients/socket.js';
import { DEFAULT_TIMEOUTS, SpamdClient } from '../clients/spamd.js';
import { editHeader, headerEditRefusal } from '../intake/message.js';
import { removeFields } from '../mime/header-block.js';
import { BackendError, definePlugin, PluginConfigError } from '../plugin-api/define.js';
import { messageKey } from '../plugin-api/message-key.js';
import type { Outcome } from '../pipeline/types.js';
import { VERSION } from '../version.js';
import { backendAddresses, backendPool, backendTimeouts, makeClient, POOL_KEYS, timeoutKeys, socketOrHost } from './backend.js';

export type SpamdUser = { readonly kind: 'rcpt' } | { readonly kind: 'global' } | { readonly kind: 'name'; readonly name: string };

export interface SpamassassinConfig {
  readonly client: SpamdClient;
  readonly timeouts: Partial<Timeouts>;
  readonly user: SpamdUser;
  /** The line's own threshold, instead of the required score spamd applies. */
  readonly hits: number | undefined;
  readonly pass: boolean;
}

export const DEFAULT_HOST = '127.0.0.1:783';
/** spamc's own limit; larger messages are not scanned (and the log says so). */
export const DEFAULT_MAXSIZE = 512 * 1024;
export const DEFAULT_USER = 'rcpt';

const X_SPAM = (name: string): boolean => /^x-spam-/i.test(name);

// eslint-disable-next-line no-control-regex
const BAD_USER = /[\x00-\x20\x7f]/;

export function parseUser(v: string | undefined): SpamdUser {
  if (v === undefined || v === 'rcpt') return { kind: 'rcpt' };
  if (v === 'global') return { kind: 'global' };
  if (v === '' || v.length > 256 || BAD_USER.test(v)) throw new PluginConfigError(`user=${JSON.stringify(v)}: use rcpt, global or a user name without spaces`);
  return { kind: 'name', name: v };
}

export function parseHits(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^-?\d+(?:\.\d+)?$/.test(v.trim())) throw new PluginConfigError(`hits=${JSON.stringify(v)}: not a number`);
  return Number(v);
}

/** The spam decision of one line: its own threshold when it has one, else spamd's. */
export function decide(scan: { isSpam: boolean; score: number; threshold: number }, hits: number | undefined): { spam: boolean; threshold: number } {
  if (hits === undefined) return { spam: scan.isSpam, threshold: scan.threshold };
  return { spam: scan.score >= hits, threshold: hits };
}

export function spamText(score: number, threshold: number): string {
  return `message rejected as spam (score ${score.toFixed(1)}, required ${threshold.toFixed(1)}) (#5.7.1)`;
}

export default definePlugin<SpamassassinConfig>({
  name: 'spamassassin',
  version: VERSION,
  stages: ['per-user'],
  description:
    `Ask spamd (SPAMC/1.5 HEADERS) with User: the recipient (see user), and tag the copy with spamd's own X-Spam-* fields (fields the message came with are removed, as spamd does). Spam is refused ("message rejected as spam (score S, required R) (#5.7.1)") unless pass is given; hits decides instead of spamd's required score (spamd's headers still show its own). Recipients that need the same spamd user and get the same bytes share one scan, each line deciding with its own hits. Messages over maxsize (${DEFAULT_MAXSIZE / 1024}K by default, as spamc) are not scanned, and the log says so.`,
  // A spam check: an allow list entry may spare a recipient it.
  skippable: true,
  params: {
    words: ['pass'],
    wordsDoc: { pass: 'record the verdict, do not act on it: spam is neither refused nor deferred' },
    keys: {
      host: { list: true, check: (v) => void socketOrHost([{ key: 'host', value: v }]), doc: "spamd's TCP address, HOST:PORT; repeat for fail-over, tried in turn", default: DEFAULT_HOST },
      socket: { list: true, check: (v) => void socketOrHost([{ key: 'socket', value: v }]), doc: "spamd's Unix socket (an absolute path); repeat for fail-over" },
      user: {
        check: (v) => void parseUser(v),
        doc: "spamd's User: rcpt (the recipient, lower-cased: its user_prefs), global (no user: spamd's defaults) or a fixed name",
        default: DEFAULT_USER,
      },
      hits: { check: (v) => void parseHits(v), doc: "the score at which this line calls a message spam, instead of spamd's required score", default: "spamd's required score" },
      ...timeoutKeys(DEFAULT_TIMEOUTS),
      ...POOL_KEYS,
    },
  },
  defaults: { maxsize: DEFAULT_MAXSIZE },
  configure({ params, settings }) {
    const items = backendAddresses(params, settings.section('spamassassin'), ['host', 'socket'], [{ key: 'host', value: DEFAULT_HOST }]);
    const addresses = socketOrHost(items);
    const timeouts = backendTimeouts(params);
    return {
      client: makeClient(() => new SpamdClient({ addresses, ...timeouts, ...backendPool(params) })),
      timeouts,
      user: parseUser(params.get('user') ?? DEFAULT_USER),
      hits: parseHits(params.get('hits')),
      pass: params.has('pass'),
    };
  },
  scope(config, recipient) {
    return config.user.kind === 'rcpt' ? recipient : undefined;
  },
  async run(ctx) {
    const { config } = ctx;
    const user = config.user.kind === 'rcpt' ? ctx.recipient!.toLowerCase() : config.user.kind === 'name' ? config.user.name : undefined;
    if (user !== undefined && (user === '' || BAD_USER.test(user))) {
      throw new BackendError(`recipient ${JSON.stringify(user)} cannot be sent to spamd as a user name`);
    }
    const key = messageKey(ctx.message);
    // One scan per spamd user, address list and message bytes: lines that differ only in hits= share it.
    const scan = await ctx.shared(`spamassassin:${config.client.endpoints.map((e) => e.text).join(',')}:${user ?? ''}:${key}`, () =>
      config.client.headers(ctx.message, { signal: ctx.signal, ...config.timeouts, ...(user === undefined ? {} : { user }) }),
    );
    const { spam, threshold } = decide(scan, config.hits);
    const details = {
      spam,
      threshold,
      required: scan.threshold,
      user: user ?? '(spamd default)',
      backend: scan.address,
      ms: Math.round(scan.ms * 10) / 10,
    };
    if (spam && !config.pass) return { verdict: 'reject', text: spamText(scan.score, threshold), score: scan.score, flagged: true, details };
    const outcome: Outcome = { verdict: 'accept', headers: scan.headers, score: scan.score, flagged: spam, details };
    // spamd drops X-Spam-* fields the message already had (a sender may forge them): so do we.
    // Header block only: the body is not copied.
    let stripped;
    try {
      stripped = await ctx.shared(`strip-x-spam:${key}`, () => editHeader(ctx.message, (block) => removeFields(block, X_SPAM)));
    } catch (err) {
      return headerEditRefusal(err);
    }
    if (stripped) outcome.replace = stripped;
    return outcome;
  },
});
