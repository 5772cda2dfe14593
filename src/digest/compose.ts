// The digest mail: one message to one owner listing the items held for them since their last digest,
// as plain text and HTML (multipart/alternative, UTF-8, quoted-printable), with signed one-click links
// per item when the console's address is known. Everything taken from a held message (its subject, its
// sender, a plugin's text) is hostile: it is stripped of control characters and line breaks in the text
// part, escaped in the HTML part, and never put in a header — the header block holds only what NQqueue
// makes itself and the owner's address, which the caller checked is plain.
//
// Lines end in LF: qmail-inject reads a Unix text file and qmail turns LF into CRLF on the wire.

import { randomBytes } from 'node:crypto';

import type { QuarantineItem } from '../store/types.js';
// The console's words for why an item is held (its list shows the same line): one vocabulary.
import { whySummary } from '../web/why.js';

export interface DigestLinks {
  readonly release: string;
  readonly delete: string;
  readonly view: string;
}

export interface DigestEntry {
  readonly item: QuarantineItem;
  /** Absent when the console's address ([web] url) is not set. */
  readonly links?: DigestLinks;
}

export interface DigestInput {
  readonly from: string;
  readonly to: string;
  /** Newest first. */
  readonly entries: readonly DigestEntry[];
  /** Items that were new but are not listed (over MAX_LISTED). */
  readonly more: number;
  readonly now: Date;
  /** For the Message-ID. */
  readonly hostname: string;
  /** When the links stop working (links only). */
  readonly linksExpire?: Date;
  /** The console's address, when known. */
  readonly consoleUrl?: string;
  /** How long held mail is kept before it is removed. */
  readonly expireMs: number;
  /** The owner's first digest. */
  readonly first?: boolean;
}

/** At most this many items are listed in one digest; the rest are counted. */
export const MAX_LISTED = 100;
/** A subject or sender longer than this is cut (with an ellipsis). */
const MAX_FIELD = 200;

// C0, DEL, C1, the line and paragraph separators, and the bidi controls that reorder what is shown.
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/g;

/** Hostile text as one line: no control character, no line break, whitespace runs as one space, cut short. */
export function oneLine(s: string, max = MAX_FIELD): string {
  const flat = s.replace(UNSAFE, ' ').replace(/\s+/g, ' ').trim();
  const chars = [...flat];
  return chars.length > max ? `${chars.slice(0, max - 1).join('')}…` : flat;
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** A header's value from our own text: one line, printable ASCII only. */
function headerValue(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, '').trim();
}

/** RFC 5322 date-time in UTC: `Wed, 02 Dec 2026 00:10:51 +0000`. */
export function rfc5322Date(d: Date): string {
  return d.toUTCString().replace(/GMT$/, '+0000');
}

/** `2026-12-02 00:10 UTC`: a date a person reads, the same whatever the reader's locale. */
function shortDate(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return oneLine(iso, 40);
  return `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** `1 message`, `2 messages`. */
export function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

function days(ms: number): string {
  const d = Math.round(ms / 86_400_000);
  return d >= 1 ? plural(d, 'day', 'days') : plural(Math.max(1, Math.round(ms / 3_600_000)), 'hour', 'hours');
}

/** The Subject: how many items, nothing else (no text of a held message ever goes in a header). */
export function digestSubject(count: number): string {
  return `${plural(count, 'message', 'messages')} held for you in quarantine`;
}

/** Quoted-printable (RFC 2045 §6.7) of UTF-8 text with LF line ends: lines of at most 76 characters. */
export function quotedPrintable(text: string): string {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const bytes = Buffer.from(line, 'utf8');
    let cur = '';
    const push = (tok: string) => {
      // 75 leaves room for the soft break's '='.
      if (cur.length + tok.length > 75) {
        out.push(`${cur}=`);
        cur = '';
      }
      cur += tok;
    };
    for (let i = 0; i < bytes.length; i++) {
      const b = bytes[i]!;
      const last = i === bytes.length - 1;
      const printable = (b >= 33 && b <= 126 && b !== 61) || ((b === 32 || b === 9) && !last);
      // "From " at a line's start is mangled by mbox writers; a leading dot by some SMTP paths.
      const guard = cur === '' && ((b === 0x46 && bytes.subarray(i, i + 5).toString('latin1') === 'From ') || b === 0x2e);
      push(printable && !guard ? String.fromCharCode(b) : `=${b.toString(16).toUpperCase().padStart(2, '0')}`);
    }
    out.push(cur);
  }
  return out.join('\n');
}

interface Listed {
  readonly n: number;
  readonly id: string;
  readonly date: string;
  readonly sender: string;
  readonly subject: string;
  readonly why: string;
  readonly links?: DigestLinks;
}

function listed(input: DigestInput): Listed[] {
  return input.entries.map((e, i) => ({
    n: i + 1,
    id: e.item.id,
    date: shortDate(e.item.date),
    sender: oneLine(e.item.sender.text) || '(no sender: a bounce)',
    subject: oneLine(e.item.subject) || '(no subject)',
    why: oneLine(whySummary(e.item.results, e.item.caughtBy), 400),
    ...(e.links ? { links: e.links } : {}),
  }));
}

function intro(input: DigestInput, total: number): string {
  return (
    `${plural(total, 'message', 'messages')} for ${oneLine(input.to)} ${input.first ? (total === 1 ? 'is' : 'are') : total === 1 ? 'was' : 'were'} held in quarantine${input.first ? '' : ' since your last digest'}. ` +
    `Held mail is not delivered unless you release it, and is removed after ${days(input.expireMs)}.`
  );
}

function textPart(input: DigestInput, items: readonly Listed[], total: number): string {
  const lines: string[] = [intro(input, total), ''];
  for (const it of items) {
    lines.push(`${it.n}. ${it.date}`, `   From:    ${it.sender}`, `   Subject: ${it.subject}`, `   Why:     ${it.why}`);
    // In angle brackets (RFC 3986, appendix C): a reader that wraps the long line still finds its end.
    if (it.links) lines.push(`   Release: <${it.links.release}>`, `   Delete:  <${it.links.delete}>`, `   View:    <${it.links.view}>`);
    else lines.push(`   Id:      ${it.id}`);
    lines.push('');
  }
  if (input.more > 0) lines.push(`... and ${plural(input.more, 'more message', 'more messages')}, not listed here.`, '');
  lines.push(...howTo(input).map((l) => l.text));
  return `${lines.join('\n')}\n`;
}

/** The closing paragraphs, as text and as HTML (with the console's link when there is one). */
function howTo(input: DigestInput): { text: string; html: string }[] {
  if (input.consoleUrl !== undefined) {
    const until = input.linksExpire ? ` until ${shortDate(input.linksExpire.toISOString())}` : '';
    return [
      {
        text: `Opening a link shows the message and asks you to confirm: nothing is released or deleted before you click the button on that page. The links work${until}, each action once.`,
        html: `Opening a link shows the message and asks you to confirm: nothing is released or deleted before you click the button on that page. The links work${escapeHtml(until)}, each action once.`,
      },
      {
        text: `All your held mail: <${input.consoleUrl}>`,
        html: `All your held mail: <a href="${escapeHtml(input.consoleUrl)}">${escapeHtml(input.consoleUrl)}</a>`,
      },
    ];
  }
  const postmaster = oneLine(input.from);
  return [
    {
      text: `To have one released or deleted, write to ${postmaster} with its id. On the mail server: nqqueue quarantine release ID (or delete ID).`,
      html: `To have one released or deleted, write to ${escapeHtml(postmaster)} with its id. On the mail server: <code>nqqueue quarantine release ID</code> (or <code>delete ID</code>).`,
    },
  ];
}

function htmlPart(input: DigestInput, items: readonly Listed[], total: number): string {
  const rows = items.map((it) => {
    const actions = it.links
      ? `<a href="${escapeHtml(it.links.release)}">Release</a> &middot; <a href="${escapeHtml(it.links.delete)}">Delete</a> &middot; <a href="${escapeHtml(it.links.view)}">View</a>`
      : `id <code>${escapeHtml(it.id)}</code>`;
    return (
      `<tr><td style="padding:6px;vertical-align:top;white-space:nowrap">${escapeHtml(it.date)}</td>` +
      `<td style="padding:6px;vertical-align:top">${escapeHtml(it.sender)}</td>` +
      `<td style="padding:6px;vertical-align:top">${escapeHtml(it.subject)}<br><small>${escapeHtml(it.why)}</small></td>` +
      `<td style="padding:6px;vertical-align:top;white-space:nowrap">${actions}</td></tr>`
    );
  });
  const more = input.more > 0 ? [`<p>&hellip; and ${escapeHtml(plural(input.more, 'more message', 'more messages'))}, not listed here.</p>`] : [];
  return [
    '<!DOCTYPE html>',
    '<html><head><meta charset="utf-8"><title>' + escapeHtml(digestSubject(total)) + '</title></head>',
    '<body style="font-family:sans-serif">',
    `<p>${escapeHtml(intro(input, total))}</p>`,
    '<table style="border-collapse:collapse">',
    '<tr><th style="text-align:left;padding:6px">Date</th><th style="text-align:left;padding:6px">From</th><th style="text-align:left;padding:6px">Subject and why</th><th></th></tr>',
    ...rows,
    '</table>',
    ...more,
    ...howTo(input).map((l) => `<p>${l.html}</p>`),
    '</body></html>',
    '',
  ].join('\n');
}

/** The whole message, ready for qmail-inject. */
export function composeDigest(input: DigestInput): Buffer {
  const items = listed(input);
  const total = items.length + input.more;
  const boundary = `=_nqqueue_${randomBytes(12).toString('hex')}`;
  const host = input.hostname.toLowerCase().replace(/[^a-z0-9.-]/g, '') || 'localhost';
  const messageId = `<digest.${input.now.getTime().toString(36)}.${randomBytes(8).toString('hex')}@${host}>`;
  const head = [
    `From: NQqueue quarantine <${headerValue(input.from)}>`,
    `To: <${headerValue(input.to)}>`,
    `Subject: ${digestSubject(total)}`,
    `Date: ${rfc5322Date(input.now)}`,
    `Message-ID: ${messageId}`,
    'MIME-Version: 1.0',
    'Auto-Submitted: auto-generated',
    'Precedence: bulk',
    'X-Auto-Response-Suppress: All',
    // Folded: RFC 5322 asks for lines of at most 78 characters.
    'Content-Type: multipart/alternative;',
    ` boundary="${boundary}"`,
  ];
  const part = (type: string, body: string) => [`--${boundary}`, `Content-Type: ${type}; charset=utf-8`, 'Content-Transfer-Encoding: quoted-printable', '', quotedPrintable(body)];
  const lines = [
    ...head,
    '',
    'This is a message in MIME format: plain text and HTML.',
    '',
    ...part('text/plain', textPart(input, items, total)),
    ...part('text/html', htmlPart(input, items, total)),
    `--${boundary}--`,
    '',
  ];
  return Buffer.from(lines.join('\n'), 'utf8');
}
