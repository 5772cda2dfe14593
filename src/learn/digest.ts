// The digest a message is remembered by once it has been taught: the same message gives the same
// digest wherever it is found — in a Maildir after qmail-local added its Return-Path and Delivered-To,
// in the quarantine, in a file given on the command line — and whatever the scanners added to it.
// So it is taken over what the sender wrote: Message-ID, Date, From and To, and the body. Not the
// Subject: rspamd's "rewrite subject" and SpamAssassin's rewrite_header change it on the way.

import { createHash } from 'node:crypto';

import { headerEnd } from '../intake/message.js';
import { headerFields } from '../mime/header-block.js';

const IDENTITY = ['message-id', 'date', 'from', 'to'] as const;

/** The learning digest of a whole message (hex sha256). */
export function learningDigest(message: Buffer): string {
  const end = headerEnd(message);
  const head = end < 0 ? message : message.subarray(0, end);
  const body = end < 0 ? Buffer.alloc(0) : message.subarray(end);
  const values = new Map<string, string>();
  for (const f of headerFields(head)) {
    const name = f.name.toLowerCase();
    // The first of each: a copy the scanners tagged has the sender's fields unchanged below ours.
    if (!(IDENTITY as readonly string[]).includes(name) || values.has(name)) continue;
    const raw = head.subarray(f.start, f.end).toString('latin1');
    values.set(name, raw.slice(f.name.length + 1).replace(/\r?\n[ \t]+/g, ' ').trim());
  }
  const h = createHash('sha256');
  for (const name of IDENTITY) h.update(`${name}:${values.get(name) ?? ''}\n`);
  // Line ends as LF: a message saved with CRLF by some client is still the same message.
  h.update(body.toString('latin1').replace(/\r\n/g, '\n'), 'latin1');
  return h.digest('hex');
}
