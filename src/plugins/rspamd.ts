// `rspamd`: POST /checkv2 with the envelope and client (From, one Rcpt, IP, Helo, Hostname, User,
// Queue-Id) and map rspamd's action: reject → reject, soft reject / greylist → tempfail, add header /
// rewrite subject → tagged (rspamd's milter headers, the new Subject), no action → accept. Each
// recipient gets its own request (rspamd applies one settings rule per request, chosen by Rcpt), unless
// the line names the rule with settings=ID: then every recipient using that rule shares one request.

import { DEFAULT_TIMEOUTS, RSPAMD_CONCURRENCY, RspamdClient, type RspamdResult } from '../clients/rspamd.js';
import type { Timeouts } from '../clients/socket.js';
import { editHeader, headerEditRefusal } from '../intake/message.js';
import { removeFields, replaceSubject } from '../mime/header-block.js';
import { BackendError, definePlugin, PluginConfigError, type PluginContext } from '../plugin-api/define.js';
import { messageKey } from '../plugin-api/message-key.js';
import type { HeaderField, Outcome } from '../pipeline/types.js';
import { VERSION } from '../version.js';
import { backendAddresses, backendPool, backendTimeouts, makeClient, POOL_KEYS, timeoutKeys } from './backend.js';

export interface RspamdConfig {
  readonly client: RspamdClient;
  readonly timeouts: Partial<Timeouts>;
  readonly settingsId: string | undefined;
  readonly pass: boolean;
}

export const DEFAULT_URL = 'http://127.0.0.1:11333';

const SETTINGS_ID = /^[A-Za-z0-9_.-]{1,128}$/;
const ACTIONS: ReadonlySet<string> = new Set(['no action', 'greylist', 'add header', 'rewrite subject', 'soft reject', 'reject']);

/**
 * Headers for a tagged message when rspamd sent none (its milter_headers module is off): `X-Spam-Flag:
 * YES` as SpamAssassin writes it, and the action and score.
 */
export function fallbackHeaders(r: Pick<RspamdResult, 'action' | 'score' | 'requiredScore'>): HeaderField[] {
  const required = Number.isFinite(r.requiredScore) ? r.requiredScore.toFixed(2) : '?';
  return [
    { name: 'X-Spam-Flag', value: 'YES' },
    { name: 'X-Rspamd-Result', value: `action="${r.action}"; score=${r.score.toFixed(2)}; required=${required}` },
  ];
}

/** What one rspamd answer means for this line (the message edits are done by the caller). */
export function mapAction(
  r: Pick<RspamdResult, 'action' | 'score' | 'requiredScore' | 'smtpMessage' | 'addHeaders'>,
  pass: boolean,
): { kind: 'reject'; text: string } | { kind: 'tempfail'; text: string } | { kind: 'accept'; headers: HeaderField[]; flagged: boolean; subject: boolean } {
  if (!ACTIONS.has(r.action)) throw new BackendError(`rspamd answered an unknown action ${JSON.stringify(r.action)}`);
  const flagged = r.action !== 'no action';
  const headers: HeaderField[] = r.addHeaders.map((h) => ({ name: h.name, value: h.value }));
  if (!pass && r.action === 'reject') {
    return { kind: 'reject', text: r.smtpMessage || `message rejected as spam (rspamd score ${r.score.toFixed(2)}) (#5.7.1)` };
  }
  if (!pass && (r.action === 'soft reject' || r.action === 'greylist')) {
    return { kind: 'tempfail', text: r.smtpMessage || `message deferred by rspamd (${r.action}), try again later (#4.7.1)` };
  }
  return {
    kind: 'accept',
    headers: flagged && headers.length === 0 ? fallbackHeaders(r) : headers,
    flagged,
    subject: r.action === 'rewrite subject',
  };
}

/** Does the milter `remove_headers` entry (index 0 = every instance, n = the nth, -n = nth from the end) pick this field? */
export function removalPicks(removals: RspamdResult['removeHeaders'], name: string, nth: number, count: number): boolean {
  return removals.some((r) => r.name.toLowerCase() === name.toLowerCase() && (r.index === 0 || r.index === nth || (r.index < 0 && count + r.index + 1 === nth)));
}

async function ask(ctx: PluginContext<RspamdConfig>): Promise<RspamdResult> {
  const { config } = ctx;
  const { client } = config;
  const base = {
    signal: ctx.signal,
    ...config.timeouts,
    from: ctx.sender,
    ...(ctx.client.ip ? { ip: ctx.client.ip } : {}),
    ...(ctx.client.helo ? { helo: ctx.client.helo } : {}),
    hostname: ctx.client.host ?? 'unknown',
    ...(ctx.client.authUser ? { user: ctx.client.authUser } : {}),
    queueId: ctx.messageId,
  };
  const key = messageKey(ctx.message);
  if (config.settingsId !== undefined) {
    // The rule is named: every recipient using it gets the same answer, so they share one request.
    return ctx.shared(`rspamd:${client.urls.join(',')}:settings:${config.settingsId}:${key}`, () =>
      client.check(ctx.message, { ...base, rcpt: [...ctx.group], settingsId: config.settingsId }),
    );
  }
  const rcpt = ctx.recipient!;
  return ctx.shared(`rspamd:${client.urls.join(',')}:rcpt:${rcpt}:${key}`, () => client.check(ctx.message, { ...base, rcpt: [rcpt], deliverTo: rcpt }));
}

export default definePlugin<RspamdConfig>({
  name: 'rspamd',
  version: VERSION,
  stages: ['per-user'],
  description:
    "POST /checkv2 to rspamd's normal worker with From, one Rcpt (and Deliver-To), IP, Helo (from qmail-smtpd's Received: line), Hostname (unknown when tcpserver gave none), User (SMTPAUTHUSER or AUTHUSER) and Queue-Id (the log id): one request per recipient, as rspamd applies one settings rule per request; with settings one request for all the recipients that use that rule. Actions: reject refuses (with rspamd's SMTP message); soft reject and greylist defer; add header and rewrite subject deliver with rspamd's milter headers (the Subject rewritten in place, fields rspamd asks to remove removed); no action accepts. A tagging action without milter headers adds X-Spam-Flag: YES and X-Rspamd-Result.",
  // A spam check: an allow list entry may spare a recipient it.
  skippable: true,
  // rspamd takes a message's requests at once (concurrency = auto).
  concurrency: RSPAMD_CONCURRENCY,
  params: {
    words: ['pass'],
    wordsDoc: { pass: 'record the verdict, never refuse or defer' },
    keys: {
      url: { list: true, doc: "rspamd's normal worker (http://HOST:PORT); repeat for fail-over", default: DEFAULT_URL },
      settings: {
        check: (v) => {
          if (!SETTINGS_ID.test(v)) throw new PluginConfigError(`${JSON.stringify(v)} is not a settings id`);
        },
        doc: 'a settings rule to apply by its id (Settings-ID:); without it rspamd picks the rule by recipient',
      },
      ...timeoutKeys(DEFAULT_TIMEOUTS),
      ...POOL_KEYS,
    },
  },
  configure({ params, settings }) {
    const urls = backendAddresses(params, settings.section('rspamd'), ['url'], [{ key: 'url', value: DEFAULT_URL }]).map((i) => i.value.trim());
    const settingsId = params.get('settings');
    if (settingsId !== undefined && !SETTINGS_ID.test(settingsId)) throw new PluginConfigError(`settings=${JSON.stringify(settingsId)}: not a settings id`);
    const timeouts = backendTimeouts(params);
    return { client: makeClient(() => new RspamdClient({ urls, ...timeouts, ...backendPool(params) })), timeouts, settingsId, pass: params.has('pass') };
  },
  // The daemon's kept-alive HTTP connections of a replaced configuration, closed at once.
  teardown(config) {
    config.client.close();
  },
  scope(config, recipient) {
    return config.settingsId === undefined ? recipient : undefined;
  },
  async run(ctx) {
    const r = await ask(ctx);
    const details = {
      action: r.action,
      score: r.score,
      required: Number.isFinite(r.requiredScore) ? r.requiredScore : null,
      settings: ctx.config.settingsId ?? null,
      backend: r.address,
      ms: Math.round(r.ms * 10) / 10,
      symbols: r.symbols,
    };
    const m = mapAction(r, ctx.config.pass);
    if (m.kind === 'reject') return { verdict: 'reject', text: m.text, score: r.score, flagged: true, details };
    if (m.kind === 'tempfail') return { verdict: 'tempfail', text: m.text, score: r.score, flagged: true, details };
    const outcome: Outcome = { verdict: 'accept', headers: m.headers, score: r.score, flagged: m.flagged, details };
    // rspamd asks to remove the fields it replaces (a sender may forge them), and may rewrite the Subject.
    const remove = r.removeHeaders.length > 0;
    if (remove || (m.subject && r.subject !== undefined)) {
      const edits = JSON.stringify([r.removeHeaders, m.subject ? r.subject : null]);
      // Only the header block is rewritten: the body stays where it is (the spill file), so every
      // recipient's different edit costs a header block, not a copy of the message.
      let edited;
      try {
        edited = await ctx.shared(`rspamd-edit:${messageKey(ctx.message)}:${edits}`, () =>
          editHeader(ctx.message, (block) => {
            let out = block;
            if (remove) out = removeFields(out, (name, nth, count) => removalPicks(r.removeHeaders, name, nth, count)) ?? out;
            if (m.subject && r.subject !== undefined) out = replaceSubject(out, r.subject);
            return out === block ? undefined : out;
          }),
        );
      } catch (err) {
        return headerEditRefusal(err);
      }
      if (edited) outcome.replace = edited;
    }
    return outcome;
  },
});
