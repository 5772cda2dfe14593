// `quarantine`: when earlier results named in PARAMS (clamav, spamassassin, rspamd, dspam, or all)
// flagged the message, keep this recipient's copy aside instead of delivering it (drop): in the
// global store under $NQQUEUE_HOME/quarantine (q=global, managed with `nqqueue quarantine`) or in a
// Maildir folder of the recipient's (q=maildir, folder from the `maildir` template; a recipient without
// a usable Maildir gets the global store, with a note). The copy is stored at the message's commit
// point, durable before the message is accepted; a store that cannot take it defers the message
// whatever `onerror` says; a message deferred after all (retried by its sender) has it taken back.
// A copy in the global store is indexed in the store (SPEC §10) once its bytes are durable: a store that
// cannot index it defers the message too, and a copy taken back is forgotten. The store's code is
// loaded only here, for a message being quarantined: other mail never touches it.

import { describeError } from '../errors.js';
import { renderHeaders, rfc5322Date } from '../pipeline/headers.js';
import { definePlugin, PluginConfigError } from '../plugin-api/define.js';
import { checkTemplate, maildirFolder, maildirProblem, prepareMaildir } from '../quarantine/maildir.js';
import { newQuarantineId, QuarantineStore, storedAddress, whyText, type PendingItem } from '../quarantine/store.js';
import type { Store } from '../store/types.js';
import { VERSION } from '../version.js';

export const SOURCES = ['clamav', 'spamassassin', 'rspamd', 'dspam'] as const;
/** Where a copy is kept when the line does not say (q=). */
export const DEFAULT_STORE = 'global';

export interface QuarantineConfig {
  /** The plugins whose flagged results count; undefined: all of them. */
  readonly sources: ReadonlySet<string> | undefined;
  readonly store: 'global' | 'maildir';
  readonly template: string | undefined;
}

export default definePlugin<QuarantineConfig>({
  name: 'quarantine',
  version: VERSION,
  stages: ['per-user'],
  description:
    "When earlier results named by its bare words flagged the message, keep this recipient's copy instead of delivering it. q=global keeps it in $NQQUEUE_HOME/quarantine/ID/ (the exact envelope bytes, the date, the results that caught it; 0600 files in 0700 directories), indexed in the store and managed with nqqueue quarantine and the console; q=maildir puts it in the recipient's Maildir folder (with Return-Path: and X-NQqueue-Quarantine: in front); a recipient whose Maildir is missing gets the global store instead, with a note. The copy is made durable at the message's commit point, before the message is accepted, and taken back if the message ends up deferred; a store that cannot take it defers the message (71, NQQ_ERR_KEEP), whatever onerror says. A dry run (nqqueue test) stores nothing.",
  // A run decides from the results before it and holds nothing: the copy is stored at the commit
  // point, one at a time. It leaves the fan-out to the plugins before it (concurrency = auto).
  concurrency: 1024,
  params: {
    words: [...SOURCES, 'all'],
    wordsDoc: {
      clamav: 'keep the copy when clamav found a virus',
      spamassassin: 'keep the copy when spamassassin called it spam',
      rspamd: 'keep the copy when rspamd asked to refuse, defer or tag it',
      dspam: 'keep the copy when dspam called it spam',
      all: 'keep the copy when any earlier result flagged it',
    },
    keys: {
      q: {
        check: (v) => {
          if (v !== 'global' && v !== 'maildir') throw new PluginConfigError('use global or maildir');
        },
        doc: "where the copy is kept: global ($NQQUEUE_HOME/quarantine, the store's index) or maildir (the recipient's folder, see maildir)",
        default: DEFAULT_STORE,
      },
      maildir: {
        check: (v) => void checkTemplate(v),
        doc: 'the folder template of q=maildir, e.g. /home/vpopmail/domains/%d/%u/Maildir/.Quarantine (%u the local part, %d the domain, both lower-cased; %% a percent sign)',
      },
    },
  },
  configure({ params }) {
    const names = params.words;
    if (names.length === 0) throw new PluginConfigError(`name the results that count: ${SOURCES.join(', ')} or all (quarantine=spamassassin)`);
    const sources = new Set<string>();
    let all = false;
    for (const n of names) {
      if (n === 'all') all = true;
      else if ((SOURCES as readonly string[]).includes(n)) sources.add(n);
      else throw new PluginConfigError(`unknown result "${n}" (use ${SOURCES.join(', ')} or all)`);
    }
    const q = params.get('q') ?? DEFAULT_STORE;
    if (q !== 'global' && q !== 'maildir') throw new PluginConfigError(`q=${q}: use global or maildir`);
    let template: string | undefined;
    if (q === 'maildir') {
      const t = params.get('maildir');
      if (t === undefined) throw new PluginConfigError('q=maildir needs a folder template: maildir = /path/%d/%u/Maildir/.Quarantine in [quarantine]');
      try {
        template = checkTemplate(t);
      } catch (err) {
        throw new PluginConfigError((err as Error).message);
      }
    }
    return { sources: all ? undefined : sources, store: q, template };
  },
  // Each recipient's copy is kept on its own, with its own envelope.
  scope: (_config, recipient) => recipient,
  async run(ctx) {
    const { config } = ctx;
    const caught = ctx.results.filter((r) => r.flagged && (config.sources === undefined || config.sources.has(r.plugin)));
    if (caught.length === 0) return { verdict: 'accept' };
    const recipient = ctx.envelope.recipients.find((a) => a.address === ctx.recipient);
    if (!recipient) throw new Error(`recipient ${ctx.recipient} is not in the envelope`);
    const why = whyText(caught.map((r) => ({ ...r })));
    const caughtBy = caught.map((r) => r.plugin).join(',');
    const message = ctx.message;
    const store = new QuarantineStore(ctx.home);
    // Nothing is written here: the copy is stored at the commit point (ctx.onCommit), before the
    // message is accepted, and taken back if it ends up refused or deferred (ctx.onSettled(false)).
    let kept: PendingItem | undefined;
    let indexed: { store: Store; id: string } | undefined;
    ctx.onSettled(async (accepted) => {
      if (accepted) return;
      // Forgotten first: a crash between the two leaves bytes without an index entry, which the next
      // `nqqueue quarantine` or console indexes (a copy too many), never an entry without its message.
      try {
        if (indexed) await indexed.store.forgetItem(indexed.id);
      } finally {
        kept?.discard();
      }
    });
    const keepGlobal = async (id: string, note: string | undefined): Promise<void> => {
      // What indexing needs is loaded here, for a message being quarantined only.
      const [{ subjectOf }, { entryFromMeta, itemResult, thisHost }] = await Promise.all([import('../quarantine/subject.js'), import('../quarantine/index-entry.js')]);
      let pending;
      try {
        let subject = '';
        try {
          subject = subjectOf(await message.head());
        } catch {
          // indexed without a subject rather than not kept
        }
        pending = await store.prepare(message, {
          id,
          messageId: ctx.messageId,
          sender: ctx.envelope.sender.raw,
          recipient: recipient.raw,
          caughtBy: caught,
          ...(note === undefined ? {} : { note }),
          owner: ctx.recipient!.toLowerCase(),
          host: thisHost(ctx.settings),
          subject,
          results: ctx.results.map(itemResult),
          routing: ctx.rules,
        });
        kept = pending;
        pending.commit();
      } catch (err) {
        throw new Error(`quarantine store failed: cannot keep the copy for <${storedAddress(recipient.raw).text}> in ${store.dir}: ${describeError(err)}`, { cause: err });
      }
      // The bytes are durable: now the index. Without it no one could find the item, so a store that
      // cannot take it defers the message (the copy is taken back when it is settled).
      const { sharedStore, dropSharedStore } = await import('../store/open.js');
      let index: Store | undefined;
      try {
        index = await sharedStore(ctx.home, ctx.settings);
        // A store shared by several hosts keeps the bytes too: any host's console shows and releases it.
        await index.addItem(entryFromMeta(pending.meta, '', pending.meta.host!), index.shared ? await message.buffer() : undefined);
        indexed = { store: index, id };
      } catch (err) {
        if (index) dropSharedStore(ctx.home, index);
        throw new Error(`quarantine: the store cannot index the copy for <${storedAddress(recipient.raw).text}>: ${describeError(err)}`, { cause: err });
      }
    };
    let note: string | undefined;
    if (config.store === 'maildir') {
      const where = maildirFolder(config.template!, ctx.recipient!);
      const problem = 'folder' in where ? maildirProblem(where.folder) : where.reason;
      if ('folder' in where && problem === undefined) {
        const folder = where.folder;
        const prefix = renderHeaders([
          { name: 'Return-Path', value: `<${storedAddress(ctx.envelope.sender.raw).text}>` },
          {
            name: 'X-NQqueue-Quarantine',
            value: `for <${storedAddress(recipient.raw).text}> by ${why.replace(/[^\x20-\x7e]/g, '?')};\n\tid ${ctx.messageId}; ${rfc5322Date(new Date())}`,
          },
        ]);
        const fallbackId = newQuarantineId();
        ctx.onCommit(async () => {
          let pending: PendingItem | undefined;
          try {
            pending = await prepareMaildir(folder, prefix, message, ctx.settings.hostname);
            kept = pending;
            pending.commit();
            return undefined;
          } catch (err) {
            pending?.discard();
            kept = undefined;
            // One recipient's broken folder is that recipient's problem: the global store instead.
            const reason = `cannot write to the Maildir folder ${folder}: ${describeError(err)}: kept in the global quarantine instead`;
            await keepGlobal(fallbackId, reason);
            return `quarantine <${ctx.recipient}>: ${reason} as ${fallbackId}`;
          }
        });
        return { verdict: 'drop', reason: "quarantined in the recipient's Maildir folder", details: { store: 'maildir', folder, caughtBy } };
      }
      note = `${problem}: kept in the global quarantine instead`;
    }
    const id = newQuarantineId();
    ctx.onCommit(() => keepGlobal(id, note));
    return {
      verdict: 'drop',
      reason: note === undefined ? `quarantined as ${id}` : `quarantined as ${id} (${note})`,
      details: { store: 'global', id, caughtBy, ...(note === undefined ? {} : { note }) },
    };
  },
});
