// Reading other filters' whitelists into list entries, and NQqueue's own export format back:
// - SpamAssassin (`user_prefs`, `local.cf`): `whitelist_from` / `welcomelist_from` (allow),
//   `blacklist_from` / `blocklist_from` (block), their `un...` forms (take an earlier line back), each
//   with addresses or `*@domain` globs separated by spaces. What cannot be said as a sender entry —
//   `*_from_rcvd` and `*_auth` (they also need the relay or an SPF/DKIM pass, an entry would be weaker),
//   recipient lists, other globs — is reported with its line, not imported.
// - simscan (`simcontrol`): `RECIPIENT_ADDRESS_OR_DOMAIN:key=value,...`, looked up by recipient;
//   `spam=no` goes into that recipient's (or domain's) list as an allow of every sender that skips
//   SpamAssassin. `clam=no` is never imported (NQqueue never skips a virus check); the default line
//   (empty pattern) belongs to routing, not to a list.
// - NQqueue (`nqqueue lists export`): one tab-separated entry a line.
// Every problem has its line; a value that is not an address, domain or network is an error.

import type { ListAction, ListScope, NewListEntry } from '../store/types.js';
import { parseSimcontrol } from '../config/simcontrol.js';
import { holderOf, ListValueError, parseListValue, valueText } from './entry.js';

export type ImportFormat = 'spamassassin' | 'simscan' | 'nqqueue';
export const FORMATS: readonly ImportFormat[] = ['spamassassin', 'simscan', 'nqqueue'];

export interface ImportResult {
  readonly entries: NewListEntry[];
  /** Lines not imported and why (`line 3: ...`): the rest is imported. */
  readonly skipped: string[];
  /** Lines that are wrong: nothing is imported. */
  readonly errors: string[];
}

export interface ImportTarget {
  /** For spamassassin and simscan files: whose list they go into. */
  readonly scope: ListScope;
  readonly owner: string;
  readonly by: string;
}

const SA_ALLOW = new Set(['whitelist_from', 'welcomelist_from', 'def_whitelist_from', 'def_welcomelist_from']);
const SA_BLOCK = new Set(['blacklist_from', 'blocklist_from']);
const SA_UNDO = new Map([
  ['unwhitelist_from', 'allow'],
  ['unwelcomelist_from', 'allow'],
  ['unblacklist_from', 'block'],
  ['unblocklist_from', 'block'],
]);
const SA_NOT = /^(?:def_)?(?:whitelist|welcomelist|blacklist|blocklist)_(?:from_rcvd|auth|allows_relays|to|from_dkim|from_spf)$|^(?:unwhitelist|unwelcomelist)_(?:from_rcvd|auth)$|^(?:more|all)_spam_to$/;

/** A SpamAssassin pattern as a list value, or why it cannot be one. */
function saValue(pattern: string): { value?: string; note?: string; why?: string } {
  const p = pattern.replace(/\\@/g, '@').toLowerCase();
  // SpamAssassin matches a pattern as a glob over the whole address: `example.com` or `@example.com`
  // matches no sender there, so it is not imported as a domain (that would allow or block far more).
  if (!/[*?]/.test(p)) return p.indexOf('@') > 0 ? { value: p } : { why: `${JSON.stringify(pattern)}: not an address, so SpamAssassin matches no sender with it (a domain is written *@domain)` };
  const m = /^\*@(\*\.)?([^*?@]+)$/.exec(p);
  if (!m) return { why: `${JSON.stringify(pattern)}: only addresses, *@domain and *@*.domain can be list entries` };
  if (m[1]) return { value: `.${m[2]}`, note: `*@*.${m[2]} imported as .${m[2]}, which also covers ${m[2]} itself` };
  return { value: m[2] };
}

function parseSpamAssassin(text: string, t: ImportTarget, out: ImportResult): void {
  // The value → its entry, in file order: a later line (or an un... line) changes an earlier one.
  const pending = new Map<string, NewListEntry>();
  text.split('\n').forEach((raw, i) => {
    const n = i + 1;
    const line = raw.replace(/(^|[^\\])#.*$/, '$1').trim();
    if (line === '') return;
    const [word, ...rest] = line.split(/\s+/);
    const key = word!.toLowerCase();
    if (SA_NOT.test(key)) {
      out.skipped.push(`line ${n}: ${key} is not imported (a sender entry cannot say what it also requires)`);
      return;
    }
    const undo = SA_UNDO.get(key);
    const action: ListAction | undefined = SA_ALLOW.has(key) ? 'allow' : SA_BLOCK.has(key) ? 'block' : undefined;
    if (!action && !undo) return; // some other setting of the file
    if (rest.length === 0) {
      out.errors.push(`line ${n}: ${key} without an address`);
      return;
    }
    for (const pattern of rest) {
      const v = saValue(pattern);
      if (v.why) {
        out.skipped.push(`line ${n}: ${v.why}`);
        continue;
      }
      let parsed;
      try {
        parsed = parseListValue(v.value!);
        if (parsed.kind === 'network') throw new ListValueError(`${JSON.stringify(pattern)} is not a sender address or domain`);
      } catch (err) {
        out.errors.push(`line ${n}: ${(err as Error).message}`);
        continue;
      }
      const k = `${parsed.kind}:${parsed.value}`;
      if (undo) {
        if (pending.get(k)?.action === undo) pending.delete(k);
        continue;
      }
      if (v.note) out.skipped.push(`line ${n}: ${v.note}`);
      pending.delete(k);
      pending.set(k, { scope: t.scope, owner: t.owner, action: action!, kind: parsed.kind, value: parsed.value, note: `imported from ${key}`, by: t.by });
    }
  });
  out.entries.push(...pending.values());
}

function parseSimscan(text: string, t: ImportTarget, out: ImportResult): void {
  // The one simcontrol reader (config/simcontrol.ts), shared with `nqqueue import-simscan`: only lines
  // that cannot be read stop the import; how simscan misreads a line is that command's business.
  const sc = parseSimcontrol(text);
  for (const p of sc.problems) if (p.message.startsWith("no ':'")) out.errors.push(`line ${p.line}: ${p.message}`);
  for (const { line: n, pattern, settings } of sc.lines) {
    if (settings.get('clam') === 'no') out.skipped.push(`line ${n}: clam=no is not imported: NQqueue never skips a virus check`);
    if (settings.get('spam') !== 'no') continue;
    if (pattern === '') {
      out.skipped.push(`line ${n}: the default line (no pattern) is not a list entry: leave spamassassin out of the fallback routing line instead`);
      continue;
    }
    // simscan looks simcontrol up by recipient (a local user or domain), and by sender too; only the
    // recipient side is a list: that recipient's, allowing every sender (any client network) and
    // skipping SpamAssassin.
    let holder: { scope: ListScope; owner: string };
    try {
      const parsed = parseListValue(pattern);
      if (parsed.kind === 'address') holder = { scope: 'user', owner: parsed.value };
      else if (parsed.kind === 'domain') holder = { scope: 'domain', owner: parsed.value };
      else throw new ListValueError(`${JSON.stringify(pattern)} is not a recipient's address or domain`);
    } catch (err) {
      out.errors.push(`line ${n}: ${(err as Error).message}`);
      continue;
    }
    for (const value of ['0.0.0.0/0', '::/0']) {
      out.entries.push({ ...holder, action: 'allow', kind: 'network', value, skip: ['spamassassin'], note: `imported from simcontrol: ${pattern} spam=no (every sender)`, by: t.by });
    }
  }
}

/** The export format: scope, owner ('-' global), action, value, skip ('-' default policy, 'none'), note. */
export function exportLine(e: NewListEntry): string {
  const skip = e.action === 'block' || e.skip === undefined ? '-' : e.skip.length === 0 ? 'none' : e.skip.join(':');
  const clean = (s: string) => s.replace(/[\t\r\n]/g, ' ');
  return [e.scope, e.owner === '' ? '-' : e.owner, e.action, valueText(e.kind, e.value), skip, clean(e.note ?? '')].join('\t');
}

export const EXPORT_HEADER = '# nqqueue lists export: scope\towner\taction\tvalue\tskip\tnote';

function parseOwn(text: string, by: string, out: ImportResult, parseSkip: (s: string) => string[]): void {
  text.split('\n').forEach((raw, i) => {
    const n = i + 1;
    if (raw.trim() === '' || raw.startsWith('#')) return;
    const f = raw.replace(/\r$/, '').split('\t');
    if (f.length < 4) {
      out.errors.push(`line ${n}: want scope, owner, action, value[, skip[, note]] separated by tabs`);
      return;
    }
    const [scope, owner, action, value, skip = '-', note = ''] = f as [string, string, string, string, string?, string?];
    try {
      if (scope !== 'global' && scope !== 'domain' && scope !== 'user') throw new ListValueError(`unknown scope ${JSON.stringify(scope)}`);
      if (action !== 'allow' && action !== 'block') throw new ListValueError(`unknown action ${JSON.stringify(action)}`);
      const holder = holderOf(scope, owner === '-' ? '' : owner);
      const parsed = parseListValue(value);
      const policy = action === 'block' || skip === '-' ? undefined : skip === 'none' ? [] : parseSkip(skip);
      if (/[\x00-\x1f\x7f]/.test(note)) throw new ListValueError('a note with control characters');
      out.entries.push({ ...holder, action, kind: parsed.kind, value: parsed.value, ...(policy === undefined ? {} : { skip: policy }), ...(note ? { note: note.slice(0, 500) } : {}), by });
    } catch (err) {
      out.errors.push(`line ${n}: ${(err as Error).message}`);
    }
  });
}

export function parseImport(format: ImportFormat, text: string, t: ImportTarget, parseSkip: (s: string) => string[]): ImportResult {
  const out: ImportResult = { entries: [], skipped: [], errors: [] };
  if (format === 'spamassassin') parseSpamAssassin(text, t, out);
  else if (format === 'simscan') parseSimscan(text, t, out);
  else parseOwn(text, t.by, out, parseSkip);
  return out;
}
