// `nqqueue lists add | del | show | import | export`: the allow and block lists in the store, for the
// administrator (any list: global, a domain's, a user's). Every change is in the audit log as the Unix
// user who ran the command. Values from outside (files to import, addresses) are checked entry by entry:
// a bad one is an error with its line, and an import is all or nothing.

import { readFileSync } from 'node:fs';
import { userInfo } from 'node:os';

import type { Settings } from '../../config/settings.js';
import { describeError } from '../../errors.js';
import { entryText, holderOf, ListValueError, parseListValue, valueText } from '../../lists/entry.js';
import { EXPORT_HEADER, exportLine, FORMATS, parseImport, type ImportFormat } from '../../lists/import.js';
import { NoHomeError, prepareHome } from '../../ops/owner.js';
import { PluginConfigError } from '../../plugin-api/define.js';
import { DEFAULT_SKIP, parseSkip } from '../../plugins/lists.js';
import { pathsFrom, readSettings, type Paths } from '../../queue/services.js';
import type { ListAction, ListHolder, ListQuery, Store } from '../../store/types.js';
import { StoreError } from '../../store/types.js';
import { visible, visibleJson } from '../../text/visible.js';
import { parseCommand, usageFailure, type OptionSpecs } from '../args.js';

export const USAGE = `usage: nqqueue lists add allow|block VALUE WHOSE [--skip PLUGINS] [--note TEXT]
       nqqueue lists del ID | del VALUE WHOSE
       nqqueue lists show [WHOSE] [--action allow|block] [--json]
       nqqueue lists import --format spamassassin|simscan FILE WHOSE | import --format nqqueue FILE
       nqqueue lists export [WHOSE]
  The allow and block lists the lists plugin looks senders up in, kept in the store
  ($NQQUEUE_HOME/store.sqlite). Run as root, it switches to the owner of $NQQUEUE_HOME.
  VALUE             a sender address (alice@example.org), a sender domain only (example.org or
                    @example.org), a domain and every domain under it (.example.org), or the client's
                    network (192.0.2.0/24, 2001:db8::/32, one IP address)
  WHOSE             which list: --global, --domain DOMAIN (every recipient in it) or --user ADDRESS
                    (one recipient)
  add               add an entry; an entry for the same VALUE in that list is replaced (allow becomes
                    block, a new policy)
    --skip PLUGINS    allow: the spam checks it skips for the recipient, comma-separated (spamassassin,
                      rspamd, dspam), or none; default: the lists plugin's skip= (default
                      ${DEFAULT_SKIP.join(':')}). A virus check (clamav) is never skipped
    --note TEXT       a note kept with the entry
  del               remove an entry by its ID (from show), or by its VALUE in one list
  show              the entries, one a line: id, list, action, value, what an allow skips, note
                    (tab-separated); every list without WHOSE
    --action A        only allow or only block entries
    --json            one JSON document: {"total": N, "entries": [...]}
  import            add the entries of a file ("-": standard input) in one go, all or none
    --format spamassassin   whitelist_from / welcomelist_from (allow), blacklist_from /
                            blocklist_from (block) and their un... forms, from user_prefs or local.cf;
                            addresses, *@domain and *@*.domain; other settings are ignored
    --format simscan        simcontrol lines RECIPIENT:...,spam=no,...: into that user's or domain's
                            list, an allow of every sender that skips spamassassin (no WHOSE)
    --format nqqueue        what export writes (the lists are in the file: no WHOSE)
    Lines that cannot be entries (whitelist_from_rcvd, clam=no, globs) are listed on stderr with
    their line and not imported; a line that is wrong imports nothing (exit 1).
  export            the entries in the format import --format nqqueue reads
  Precedence: the recipient's own list, then their domain's, then the global one (the first with a
  matching entry decides); within a list the most specific entry (address, domain, network). nqqueue
  explain shows which entry decides for a sender and recipient.
  -h, --help        this text
  Changes are in the audit log as the Unix user who ran the command, from "command line".
  Exit: 0 done, 1 failed (nothing found to remove, the store, a wrong file), 2 usage.
`;

const STRING = { type: 'string' } as const;
const WHOSE = { global: { type: 'boolean' }, domain: STRING, user: STRING } as const satisfies OptionSpecs;

const SUBCOMMANDS: Record<string, { options: OptionSpecs; min: number; max: number }> = {
  add: { options: { ...WHOSE, skip: STRING, note: STRING }, min: 2, max: 2 },
  del: { options: WHOSE, min: 1, max: 1 },
  show: { options: { ...WHOSE, action: STRING, json: { type: 'boolean' } }, min: 0, max: 0 },
  import: { options: { ...WHOSE, format: STRING }, min: 1, max: 1 },
  export: { options: WHOSE, min: 0, max: 0 },
};

const ID = /^[0-9a-f]{16}$/;

class Usage extends Error {}
/** A file to import that cannot be read: exit 1, not a usage error. */
class Unreadable extends Error {}

const pending: string[] = [];

/** A line for stdout; written by flush() when the command is done. */
function out(text: string): void {
  pending.push(`${text}\n`);
}

/**
 * Write what the command printed, and wait until it is written: a pipe on stdout is written to
 * asynchronously, and the exit that follows the command would cut a long `show` or `export` short.
 */
function flush(): Promise<void> {
  const text = pending.splice(0).join('');
  if (text === '') return Promise.resolve();
  return new Promise((resolve) => process.stdout.write(text, () => resolve()));
}

function err(text: string): void {
  process.stderr.write(`nqqueue lists: ${visible(text)}\n`);
}

function who(): string {
  try {
    return userInfo().username;
  } catch {
    return `uid ${process.getuid?.() ?? '?'}`;
  }
}

/** The list named by --global / --domain / --user; undefined when none is named. */
function whose(values: Record<string, unknown>): ListHolder | undefined {
  const named = [values.global === true, values.domain !== undefined, values.user !== undefined].filter(Boolean).length;
  if (named > 1) throw new Usage('name one list: --global, --domain DOMAIN or --user ADDRESS');
  if (named === 0) return undefined;
  if (values.global === true) return holderOf('global', '');
  if (values.domain !== undefined) return holderOf('domain', values.domain as string);
  return holderOf('user', values.user as string);
}

function listName(h: ListHolder): string {
  return h.scope === 'global' ? 'global' : `${h.scope} ${h.owner}`;
}

export async function run(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === '--help' || sub === '-h') {
    process.stdout.write(USAGE);
    return 0;
  }
  if (sub === undefined) return usageFailure('lists', USAGE, 'which one: add, del, show, import or export?');
  const spec = Object.hasOwn(SUBCOMMANDS, sub) ? SUBCOMMANDS[sub]! : undefined;
  if (!spec) return usageFailure('lists', USAGE, `unknown subcommand ${JSON.stringify(sub)}`);
  const parsed = parseCommand(`lists ${sub}`, USAGE, rest, spec.options, { min: spec.min, max: spec.max });
  if (typeof parsed === 'number') return parsed;
  const values = parsed.values as Record<string, unknown>;
  const ops = parsed.positionals;
  let holder: ListHolder | undefined;
  let work: (store: Store, settings: Settings) => Promise<number>;
  try {
    holder = whose(values);
    work = prepare(sub, ops, values, holder);
  } catch (e) {
    if (e instanceof Usage || e instanceof ListValueError || e instanceof PluginConfigError) return usageFailure(`lists ${sub}`, USAGE, e.message);
    if (e instanceof Unreadable) {
      err(e.message);
      return 1;
    }
    throw e;
  }
  let paths: Paths;
  try {
    paths = pathsFrom(env);
    prepareHome(paths.home, `lists ${sub}`, { createAsRoot: false });
  } catch (e) {
    // Nothing to show in a home that does not exist yet (and none made as root).
    if (e instanceof NoHomeError && (sub === 'show' || sub === 'export')) return 0;
    err(describeError(e));
    return 1;
  }
  let settings: Settings;
  let store: Store;
  try {
    settings = readSettings(paths);
    const { openStore } = await import('../../store/open.js');
    store = await openStore(paths.home, settings);
  } catch (e) {
    err(e instanceof StoreError ? e.message : describeError(e));
    return 1;
  }
  try {
    return await work(store, settings);
  } catch (e) {
    err(e instanceof StoreError ? e.message : describeError(e));
    return 1;
  } finally {
    await store.close().catch(() => undefined);
    await flush();
  }
}

function audit(store: Store, action: string, detail: string): Promise<void> {
  return store.audit({ at: new Date().toISOString(), who: who(), from: 'command line', action, detail });
}

/** Check the arguments (usage errors before anything is opened) and return the work to do. */
function prepare(sub: string, ops: string[], values: Record<string, unknown>, holder: ListHolder | undefined): (store: Store, settings: Settings) => Promise<number> {
  if (sub === 'add') {
    const action = ops[0];
    if (action !== 'allow' && action !== 'block') throw new Usage(`add allow or add block, not ${JSON.stringify(action)}`);
    if (!holder) throw new Usage('which list: --global, --domain DOMAIN or --user ADDRESS');
    const { kind, value } = parseListValue(ops[1]!);
    const skipText = values.skip as string | undefined;
    if (skipText !== undefined && action === 'block') throw new Usage('--skip is for allow entries');
    const skip = skipText === undefined ? undefined : skipText.trim() === 'none' ? [] : parseSkip(skipText.replace(/,/g, ':'));
    const note = values.note as string | undefined;
    if (note !== undefined && /[\x00-\x1f\x7f]/.test(note)) throw new Usage('--note: no control characters');
    return async (store) => {
      const r = await store.putListEntry({ ...holder, action, kind, value, ...(skip === undefined ? {} : { skip }), ...(note ? { note: note.slice(0, 500) } : {}), by: who() });
      await audit(store, 'list-add', `${entryText(r.entry)}${r.replaced ? ` (was ${r.replaced.action})` : ''}`);
      out(`${r.replaced ? 'replaced' : 'added'} ${r.entry.id}: ${visible(entryText(r.entry))}`);
      return 0;
    };
  }
  if (sub === 'del') {
    const target = ops[0]!;
    const byId = ID.test(target) && !holder;
    const parsedValue = byId ? undefined : parseListValue(target);
    if (!byId && !holder) throw new Usage('del VALUE needs its list: --global, --domain DOMAIN or --user ADDRESS (or give the ID from show)');
    return async (store) => {
      let id = target;
      if (parsedValue) {
        const found = (await store.findListEntries({ scope: holder!.scope, owner: holder!.owner })).entries.find((e) => e.kind === parsedValue.kind && e.value === parsedValue.value);
        if (!found) {
          err(`no entry for ${valueText(parsedValue.kind, parsedValue.value)} in the ${listName(holder!)} list`);
          return 1;
        }
        id = found.id;
      }
      const gone = await store.deleteListEntry(id);
      if (!gone) {
        err(`no list entry ${id}`);
        return 1;
      }
      await audit(store, 'list-del', entryText(gone));
      out(`removed ${gone.id}: ${visible(entryText(gone))}`);
      return 0;
    };
  }
  if (sub === 'show' || sub === 'export') {
    const action = values.action as string | undefined;
    if (action !== undefined && action !== 'allow' && action !== 'block') throw new Usage(`--action allow or --action block, not ${JSON.stringify(action)}`);
    const query: ListQuery = { ...(holder ? { scope: holder.scope, owner: holder.owner } : {}), ...(action ? { action: action as ListAction } : {}) };
    return async (store) => {
      const found = await store.findListEntries(query);
      if (sub === 'export') {
        out(EXPORT_HEADER);
        for (const e of found.entries) out(visible(exportLine(e), { tabs: true }));
        return 0;
      }
      if (values.json === true) {
        out(visibleJson({ total: found.total, entries: found.entries }));
        return 0;
      }
      for (const e of found.entries) {
        const skip = e.action === 'allow' ? (e.skip === undefined ? 'default policy' : e.skip.length ? `skips ${e.skip.join(',')}` : 'skips nothing') : '-';
        out([e.id, listName(e), e.action, valueText(e.kind, e.value), skip, e.note ?? ''].map((f) => visible(f)).join('\t'));
      }
      return 0;
    };
  }
  // import
  const format = values.format as string | undefined;
  if (format === undefined || !(FORMATS as readonly string[]).includes(format)) throw new Usage(`--format ${FORMATS.join(', ')}`);
  if (format === 'nqqueue' && holder) throw new Usage('--format nqqueue names the lists in the file: no --global, --domain or --user');
  if (format === 'simscan' && holder) throw new Usage("--format simscan: each simcontrol line names the recipient or domain whose list it goes into: no --global, --domain or --user");
  if (format === 'spamassassin' && !holder) throw new Usage('which list the entries go into: --global, --domain DOMAIN or --user ADDRESS');
  const file = ops[0]!;
  // Read now, as the user who runs the command: run as root, the command becomes the owner of
  // $NQQUEUE_HOME before it opens the store, and that user may not read ~bob/.spamassassin/user_prefs.
  let text: string;
  try {
    text = readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (e) {
    throw new Unreadable(`${file}: ${(e as Error).message}`);
  }
  return async (store) => {
    const name = file === '-' ? '(stdin)' : file;
    const by = who();
    const r = parseImport(format as ImportFormat, text, { scope: holder?.scope ?? 'global', owner: holder?.owner ?? '', by }, (s) => parseSkip(s));
    for (const s of r.skipped) err(`${name}: ${s}`);
    if (r.errors.length) {
      for (const e of r.errors) err(`${name}: ${e}`);
      err(`nothing imported: ${r.errors.length} wrong line${r.errors.length === 1 ? '' : 's'}`);
      return 1;
    }
    const added = await store.putListEntries(r.entries);
    await audit(store, 'list-import', `${format} ${name}: ${r.entries.length} entries, ${added} new`);
    out(`imported ${r.entries.length} entr${r.entries.length === 1 ? 'y' : 'ies'} (${added} new, ${r.entries.length - added} replaced)${r.skipped.length ? `; ${r.skipped.length} line${r.skipped.length === 1 ? '' : 's'} not imported (above)` : ''}`);
    return 0;
  };
}
