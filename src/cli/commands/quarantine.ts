// `nqqueue quarantine list | show ID | release ID | delete ID | expire | audit`: the global quarantine,
// through the store (its index) and the files under $NQQUEUE_HOME/quarantine (the bytes). `release`
// hands the message to qmail-queue for its original recipient only, exactly once however many ask at
// once; when qmail-queue fails the item stays and the exit is 1. Every release, delete and expiry is in
// the audit log with the Unix user who asked. What a message carries is hostile text: it is shown
// terminal-safe, and its raw bytes are written only on request and never to a terminal.

import { userInfo } from 'node:os';
import { isatty } from 'node:tty';

import { parseAge } from '../../config/service-sections.js';
import type { Settings } from '../../config/settings.js';
import { describeError } from '../../errors.js';
import { NoHomeError, prepareHome } from '../../ops/owner.js';
import { pathsFrom, readSettings, type Paths } from '../../queue/services.js';
import { checkId, QuarantineError, whyText } from '../../quarantine/store.js';
import type { Actor, ItemQuery, ItemStatus, QuarantineItem } from '../../store/types.js';
import { StoreError } from '../../store/types.js';
import { visible, visibleJson } from '../../text/visible.js';
import { parseCommand, usageFailure, type OptionSpecs } from '../args.js';

export const USAGE = `usage: nqqueue quarantine list [FILTERS] | show [--raw] ID | release ID | delete ID | expire | audit [--item ID] [--limit N]
  The global quarantine: the index in the store ($NQQUEUE_HOME/store.sqlite), the messages in
  $NQQUEUE_HOME/quarantine. Run as root, it switches to the owner of $NQQUEUE_HOME.
  list              held items, oldest first, one a line: id, date, <sender>, <recipient>, why
                    (tab-separated). Filters (all must match; text is matched case-insensitively):
    --recipient TEXT    the recipient contains TEXT
    --sender TEXT       the sender contains TEXT
    --domain DOMAIN     the recipient's domain is DOMAIN
    --text TEXT         sender, recipient, subject or a plugin's name contains TEXT
    --caught-by PLUGIN  PLUGIN's result made the quarantine keep it
    --since WHEN        quarantined at or after WHEN: a date (2026-01-31, ISO 8601) or an age (7d, 12h)
    --before WHEN       quarantined before WHEN
    --status LIST       held (the default), releasing, released, deleted, expired, or all; comma-separated
    --limit N           at most N items (with --json, "total" says how many matched)
    --json              one JSON document: {"total": N, "items": [...]} (control characters escaped)
  show ID           the item: envelope, date, subject, status, every plugin's result, the routing lines
                    that chose the chains and the message's header block; control characters are shown
                    as escapes (\\x1b, \\u009b)
  show --raw ID     the stored message exactly as received, for a program (> file, | formail); refused
                    when stdout is a terminal
  release ID        hand the message to qmail-queue for its original recipient only, exactly once, then
                    remove it; exit 1 and the item stays when qmail-queue fails; exit 1 when someone else
                    took it already
  delete ID         remove the item
  expire            remove the held items older than quarantine_expire (nqqueue.conf, default 30d): their
                    status becomes expired; for cron when nqqueue serve does not run
  audit             the audit log, oldest first: time, who, from where, action, item, detail
    --item ID           only this item's entries
    --limit N           only the last N entries
  -h, --help        this text
  release, delete and expire are in the audit log as the Unix user who ran the command, from "command line".
`;

const STRING = { type: 'string' } as const;
const FILTERS = {
  recipient: STRING,
  sender: STRING,
  domain: STRING,
  text: STRING,
  'caught-by': STRING,
  since: STRING,
  before: STRING,
  status: STRING,
  limit: STRING,
  json: { type: 'boolean' },
} as const satisfies OptionSpecs;

/** Each subcommand's options and how many operands it takes. */
const SUBCOMMANDS: Record<string, { options: OptionSpecs; operands: number }> = {
  list: { options: FILTERS, operands: 0 },
  show: { options: { raw: { type: 'boolean' } }, operands: 1 },
  release: { options: {}, operands: 1 },
  delete: { options: {}, operands: 1 },
  expire: { options: {}, operands: 0 },
  audit: { options: { item: STRING, limit: STRING }, operands: 0 },
};

const STATUSES: readonly ItemStatus[] = ['held', 'releasing', 'released', 'deleted', 'expired'];

class Usage extends Error {}

function out(text: string): void {
  process.stdout.write(`${text}\n`);
}

function writeOut(chunk: Buffer): Promise<void> {
  return new Promise((resolve, reject) => process.stdout.write(chunk, (e) => (e ? reject(e) : resolve())));
}

function err(text: string): void {
  process.stderr.write(`nqqueue quarantine: ${visible(text)}\n`);
}

/** The results that made the quarantine keep the item. */
function catching(item: QuarantineItem): QuarantineItem['results'] {
  const caught = item.results.filter((r) => r.flagged && item.caughtBy.includes(r.plugin));
  return caught.length ? caught : item.results.filter((r) => item.caughtBy.includes(r.plugin));
}

function resultLine(r: QuarantineItem['results'][number]): string {
  const score = r.score === undefined ? '' : ` score ${r.score}`;
  return `${visible(r.plugin)}${r.params ? `=${visible(r.params)}` : ''} -> ${visible(r.verdict)}${score} ${visibleJson(r.details)}`;
}

function describeItem(item: QuarantineItem): string[] {
  const lines = [
    `id: ${item.id}`,
    `date: ${item.date}`,
    `message id: ${visible(item.messageId)}`,
    `size: ${item.size}`,
    `sender: <${visible(item.sender.text)}>`,
    `recipient: <${visible(item.recipient.text)}>`,
    `subject: ${visible(item.subject)}`,
    `status: ${item.status}${item.statusBy ? ` (${visible(item.statusBy)}${item.statusAt ? ` at ${item.statusAt}` : ''})` : ''}`,
    `host: ${visible(item.host)}`,
    `why: ${visible(whyText(catching(item)))}`,
  ];
  for (const r of catching(item)) lines.push(`caught by: ${resultLine(r)}`);
  for (const r of item.results) lines.push(`result: ${r.stage} ${resultLine(r)}`);
  for (const which of ['general', 'user'] as const) {
    const ref = item.routing[which];
    if (ref) lines.push(`routing: ${which === 'user' ? 'per-user' : 'general'} ${visible(ref.file)}:${ref.line}`);
  }
  if (item.note) lines.push(`note: ${visible(item.note)}`);
  return lines;
}

/** A date or an age back from now, as ISO 8601. */
function when(option: string, v: string): string {
  if (/^\d+[smhd]$/.test(v.trim())) return new Date(Date.now() - parseAge(v)).toISOString();
  const d = new Date(v);
  if (Number.isNaN(d.getTime())) throw new Usage(`--${option} wants a date (2026-01-31, ISO 8601) or an age (7d, 12h), not ${JSON.stringify(v)}`);
  return d.toISOString();
}

function count(option: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d{1,9}$/.test(v)) throw new Usage(`--${option} wants a whole number, not ${JSON.stringify(v)}`);
  return Number(v);
}

function listQuery(values: Record<string, unknown>): ItemQuery {
  const s = (k: string) => values[k] as string | undefined;
  let status: ItemStatus[] = ['held'];
  if (s('status') !== undefined) {
    const words = s('status')!.split(',').map((w) => w.trim()).filter(Boolean);
    status = words.includes('all') ? [...STATUSES] : [];
    for (const w of words) {
      if (w === 'all') continue;
      if (!STATUSES.includes(w as ItemStatus)) throw new Usage(`--status: unknown status ${JSON.stringify(w)} (${STATUSES.join(', ')} or all)`);
      if (!status.includes(w as ItemStatus)) status.push(w as ItemStatus);
    }
  }
  const limit = count('limit', s('limit'));
  return {
    status,
    order: 'oldest',
    ...(s('recipient') === undefined ? {} : { recipient: s('recipient') }),
    ...(s('sender') === undefined ? {} : { sender: s('sender') }),
    ...(s('domain') === undefined ? {} : { domain: s('domain') }),
    ...(s('text') === undefined ? {} : { text: s('text') }),
    ...(s('caught-by') === undefined ? {} : { caughtBy: s('caught-by') }),
    ...(s('since') === undefined ? {} : { since: when('since', s('since')!) }),
    ...(s('before') === undefined ? {} : { before: when('before', s('before')!) }),
    ...(limit === undefined ? {} : { limit }),
  };
}

/** Who asks, as the audit log records it: the Unix user who ran the command (before any switch). */
function actor(): Actor {
  let who: string;
  try {
    who = userInfo().username;
  } catch {
    who = `uid ${process.getuid?.() ?? '?'}`;
  }
  return { who, from: 'command line' };
}

export async function run(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === '--help' || sub === '-h') {
    process.stdout.write(USAGE);
    return 0;
  }
  if (sub === undefined) return usageFailure('quarantine', USAGE, 'which one: list, show, release, delete, expire or audit?');
  const spec = Object.hasOwn(SUBCOMMANDS, sub) ? SUBCOMMANDS[sub]! : undefined;
  if (!spec) return usageFailure('quarantine', USAGE, `unknown subcommand ${JSON.stringify(sub)}`);
  const parsed = parseCommand(`quarantine ${sub}`, USAGE, rest, spec.options, { min: spec.operands, max: spec.operands });
  if (typeof parsed === 'number') return parsed;
  const id = parsed.positionals[0];
  const raw = parsed.values.raw === true;
  if (raw && isatty(1)) {
    // Raw bytes are for programs; a terminal would act on whatever control sequences the sender put in.
    err('show --raw writes the message exactly as received: redirect stdout (> file, | formail), it is a terminal');
    return 2;
  }
  if (id !== undefined) {
    try {
      checkId(id);
    } catch (e) {
      err((e as Error).message);
      return 2;
    }
  }
  let query: ItemQuery | undefined;
  let auditLimit: number | undefined;
  try {
    if (sub === 'list') query = listQuery(parsed.values);
    if (sub === 'audit') {
      auditLimit = count('limit', parsed.values.limit as string | undefined);
      if (parsed.values.item !== undefined) checkId(parsed.values.item as string);
    }
  } catch (e) {
    if (e instanceof Usage || e instanceof QuarantineError) return usageFailure(`quarantine ${sub}`, USAGE, e.message);
    throw e;
  }
  const who = actor();
  let paths: Paths;
  let settings: Settings;
  try {
    paths = pathsFrom(env);
  } catch (e) {
    err(describeError(e));
    return 1;
  }
  try {
    settings = readSettings(paths);
  } catch (e) {
    err(describeError(e));
    return 1;
  }
  // Every subcommand opens the store, which writes under the home (the store file, its WAL): as the
  // home's owner (root switches to it), never leaving root-owned files qmail-smtpd's user cannot use.
  try {
    prepareHome(paths.home, `quarantine ${sub}`, { createAsRoot: false });
  } catch (e) {
    if (!(e instanceof NoHomeError)) {
      err(describeError(e));
      return 1;
    }
    // Nothing to list in a home that does not exist yet (and none made as root) — unless the store is
    // the site's, shared by several hosts: then this host sees (and acts on) every host's items.
    if (settings.store === 'sqlite') {
      if (sub === 'list' || sub === 'audit') return 0;
      err(describeError(e));
      return 1;
    }
  }
  let q;
  try {
    const { openQuarantine } = await import('../../quarantine/actions.js');
    q = await openQuarantine(paths, settings, { problem: (bad, why) => err(`${bad}: ${why}`) });
  } catch (e) {
    err(e instanceof StoreError || e instanceof QuarantineError ? e.message : describeError(e));
    return 1;
  }
  try {
    return await subcommand(sub, q, id, raw, query, auditLimit, parsed.values.item as string | undefined, who, parsed.values.json === true);
  } catch (e) {
    err(e instanceof StoreError || e instanceof QuarantineError ? e.message : describeError(e));
    return 1;
  } finally {
    await q.store.close().catch(() => undefined);
  }
}

async function subcommand(
  sub: string,
  q: import('../../quarantine/actions.js').Quarantine,
  id: string | undefined,
  raw: boolean,
  query: ItemQuery | undefined,
  auditLimit: number | undefined,
  auditItem: string | undefined,
  who: Actor,
  json: boolean,
): Promise<number> {
  const actions = await import('../../quarantine/actions.js');
  if (sub === 'list') {
    const found = await q.store.findItems(query!);
    if (json) {
      out(visibleJson({ total: found.total, items: found.items }));
      return 0;
    }
    for (const item of found.items) {
      out([item.id, visible(item.date), `<${visible(item.sender.text)}>`, `<${visible(item.recipient.text)}>`, visible(whyText(catching(item)))].join('\t'));
    }
    return 0;
  }
  if (sub === 'audit') {
    const entries = await q.store.auditLog({ ...(auditItem === undefined ? {} : { item: auditItem }), ...(auditLimit === undefined ? {} : { limit: auditLimit }) });
    for (const e of [...entries].reverse()) {
      out([e.at, visible(e.who), visible(e.from), visible(e.action), e.item ?? '-', visible(e.detail ?? '')].join('\t'));
    }
    return 0;
  }
  if (sub === 'expire') {
    const n = await actions.expireItems(q, who);
    out(`expired ${n} item${n === 1 ? '' : 's'} older than ${actions.ageText(q.settings.quarantineExpireMs)} (quarantine_expire)`);
    return 0;
  }
  if (sub === 'show') {
    const item = await q.store.getItem(id!);
    if (!item) {
      err(`no quarantined message ${id}`);
      return 1;
    }
    if (raw) {
      for await (const chunk of (await actions.itemMessage(q, id!)).stream()) await writeOut(chunk as Buffer);
      return 0;
    }
    const lines = describeItem(item);
    let head: string | undefined;
    try {
      head = (await (await actions.itemMessage(q, id!)).head()).toString('utf8').replace(/\n+$/, '');
    } catch (e) {
      if (!(e instanceof QuarantineError && e.notFound)) throw e;
      lines.push(`message: not here any more (${item.status})`);
    }
    if (head !== undefined) lines.push('', ...head.split('\n').map((l) => visible(l, { tabs: true })));
    out(lines.join('\n'));
    return 0;
  }
  const r = sub === 'release' ? await actions.releaseItem(q, id!, who) : await actions.deleteItem(q, id!, who);
  if (!r.ok) {
    err(r.reason);
    return 1;
  }
  out(sub === 'release' ? `released ${id} to <${visible(r.item.recipient.text)}>` : `deleted ${id}`);
  return 0;
}
