// What the store indexes for one held copy, built from what the quarantine knows when it keeps it (the
// results, the routing lines) or, for an item kept before the store existed, from its meta.json.

import { hostname } from 'node:os';

import type { Settings } from '../config/settings.js';
import type { Result } from '../pipeline/types.js';
import type { ItemResult, NewQuarantineItem, RuleRef } from '../store/types.js';
import type { QuarantineMeta } from './store.js';

/** The host that holds the bytes: the one the trace header names. */
export function thisHost(settings: Settings): string {
  return settings.hostname ?? hostname();
}

/** A pipeline result as the store keeps it (only what is data: no headers, no timings). */
export function itemResult(r: Result): ItemResult {
  return {
    plugin: r.plugin,
    params: r.params,
    stage: r.stage,
    verdict: r.verdict,
    flagged: r.flagged,
    ...(r.score === undefined ? {} : { score: r.score }),
    ...(r.text === undefined ? {} : { text: r.text }),
    details: r.details,
  };
}

/** `alice@example.com` → its domain, lower case ('' without an `@`). */
export function domainOf(owner: string): string {
  const at = owner.lastIndexOf('@');
  return at < 0 ? '' : owner.slice(at + 1).toLowerCase();
}

/** The index entry of an item from its meta.json (older items carry only the results that caught it). */
export function entryFromMeta(meta: QuarantineMeta, subject: string, host: string): NewQuarantineItem {
  const owner = (meta.owner ?? meta.recipient.text).toLowerCase();
  const results: ItemResult[] =
    meta.results?.map((r) => ({ ...r })) ??
    meta.caughtBy.map((c) => ({
      plugin: c.plugin,
      params: c.params,
      stage: 'per-user' as const,
      verdict: c.verdict,
      flagged: true,
      ...(c.score === undefined ? {} : { score: c.score }),
      ...(c.text === undefined ? {} : { text: c.text }),
      details: c.details,
    }));
  const routing: { general?: RuleRef; user?: RuleRef } = meta.routing ?? {};
  return {
    id: meta.id,
    date: meta.date,
    messageId: meta.messageId,
    host: meta.host ?? host,
    size: meta.size,
    sender: meta.sender,
    recipient: meta.recipient,
    owner,
    domain: domainOf(owner),
    subject: meta.subject ?? subject,
    results,
    caughtBy: [...new Set(meta.caughtBy.map((c) => c.plugin))],
    routing,
    ...(meta.note === undefined ? {} : { note: meta.note }),
  };
}
