// The verdict a delivered copy was delivered with, read from the copy itself: NQqueue's own trace
// header (the first `Received: by HOST (NQqueue ...` line: the one this host wrote, above anything the
// sender sent) says which scanners ran for this copy, and each of those scanners' own header fields
// below it (above the next Received field: the message as it came) say what it thought. A scanner's
// fields count only when the trace says it ran: each plugin strips forged fields of its own kind from
// the mail it tags, not those of the others.

import { headerEnd } from '../intake/message.js';
import { headerFields } from '../mime/header-block.js';

/** The learners NQqueue can teach, named as their plugins are. */
export const LEARNER_NAMES = ['spamassassin', 'rspamd', 'dspam'] as const;
export type LearnerName = (typeof LEARNER_NAMES)[number];

export interface DeliveredVerdict {
  /** Delivered as spam: at least one scanner that ran flagged it. */
  readonly spam: boolean;
  /** The scanners that ran for this copy (of those that learn). */
  readonly ran: readonly LearnerName[];
  /** Those of them that said spam. */
  readonly votedSpam: readonly LearnerName[];
  /** dspam's signature of the copy, to retrain it as an error. */
  readonly dspamSignature?: string;
  readonly dspamResult?: string;
}

const TRACE = /^Received:\s*by\s+\S+\s+\(NQqueue\s/i;
const DSPAM_SPAM = new Set(['spam', 'virus', 'blacklisted', 'blocklisted']);

interface Field {
  /** Lower case. */
  readonly name: string;
  /** Unfolded, trimmed. */
  readonly value: string;
  /** The whole field, unfolded. */
  readonly raw: string;
}

function unfolded(head: Buffer): Field[] {
  return headerFields(head).map((f) => {
    const raw = head.subarray(f.start, f.end).toString('latin1').replace(/\r?\n[ \t]+/g, ' ').trim();
    return { name: f.name.toLowerCase(), value: raw.slice(f.name.length + 1).trim(), raw };
  });
}

/** The plugin names in the trace header's comment: `general: a=accept, ...; per-user: b=accept/3.1, ...`. */
function tracePlugins(trace: string): Set<string> {
  const open = trace.indexOf('(');
  const close = trace.indexOf(')', open);
  const comment = open < 0 || close < 0 ? '' : trace.slice(open + 1, close);
  const names = new Set<string>();
  for (const part of comment.split(';')) {
    const list = part.replace(/^\s*(general|per-user):/, '');
    for (const m of list.matchAll(/([A-Za-z0-9._:+@-]+)=([a-z]+)((?:\/[^\s,;)]*)?)/g)) {
      // A plugin that failed (…/failed), or was skipped for this recipient (an allow entry), told nothing.
      if (!m[3]!.split('/').includes('failed') && !m[2]!.startsWith('skip')) names.add(m[1]!.toLowerCase());
    }
  }
  return names;
}

/** The verdict of a delivered copy; undefined when NQqueue did not deliver it or no learner ran for it. */
export function deliveredVerdict(message: Buffer): DeliveredVerdict | undefined {
  const end = headerEnd(message);
  const head = end < 0 ? message : message.subarray(0, end);
  const fields = unfolded(head);
  const at = fields.findIndex((f) => TRACE.test(f.raw));
  if (at < 0) return undefined;
  const ran = tracePlugins(fields[at]!.raw);
  // Below our trace: what the scanners added for this copy, then the message as it came — which starts
  // with its own trace fields (qmail-smtpd's Received). What lies below the next Received is the
  // sender's: a forged X-Spam-Flag there is no scanner's vote (rspamd strips nothing of a copy it
  // passed without headers of its own).
  const rest = fields.slice(at + 1);
  const next = rest.findIndex((f) => f.name === 'received');
  const below = next < 0 ? rest : rest.slice(0, next);
  const get = (name: string) => below.filter((f) => f.name === name).map((f) => f.value);
  const spamFlag = get('x-spam-flag').some((v) => /^yes\b/i.test(v)) || get('x-spam-status').some((v) => /^yes\b/i.test(v));
  const learners = LEARNER_NAMES.filter((n) => ran.has(n));
  if (learners.length === 0) return undefined;
  const voted: LearnerName[] = [];
  if (learners.includes('spamassassin') && spamFlag) voted.push('spamassassin');
  if (learners.includes('rspamd')) {
    const action = get('x-rspamd-result')
      .map((v) => /action="([^"]*)"/.exec(v)?.[1])
      .find((a) => a !== undefined);
    // rspamd's milter headers write X-Spam-Status/X-Spam-Flag like SpamAssassin; its fallback header the action.
    if ((action !== undefined && action !== 'no action') || (action === undefined && spamFlag) || get('x-spam').some((v) => /^yes\b/i.test(v))) voted.push('rspamd');
  }
  let dspamResult: string | undefined;
  let dspamSignature: string | undefined;
  if (learners.includes('dspam')) {
    dspamResult = get('x-dspam-result')[0];
    dspamSignature = get('x-dspam-signature')[0];
    if (dspamResult !== undefined && DSPAM_SPAM.has(dspamResult.toLowerCase())) voted.push('dspam');
  }
  return {
    spam: voted.length > 0,
    ran: learners,
    votedSpam: voted,
    ...(dspamSignature !== undefined && /^[A-Za-z0-9,]{1,128}$/.test(dspamSignature) ? { dspamSignature } : {}),
    ...(dspamResult !== undefined ? { dspamResult } : {}),
  };
}
