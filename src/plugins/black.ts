// `black`: refuse mail from listed senders. PARAMS: addresses, @domain, <> (bounces), file:/path (one a line).

import { readFileSync } from 'node:fs';

import { definePlugin, PluginConfigError } from '../plugin-api/define.js';
import { VERSION } from '../version.js';

export const DEFAULT_TEXT = 'mail from this sender is not accepted (#5.7.1)';

export interface BlackConfig {
  readonly addresses: ReadonlySet<string>;
  readonly domains: ReadonlySet<string>;
  readonly bounces: boolean;
  readonly text: string;
}

/**
 * Why an entry can never match a sender, with what to write instead; undefined when it can. Habits from
 * other lists (a bare domain, a glob, a trailing dot) would otherwise block nobody, in silence.
 */
export function unmatchableEntry(e: string): string | undefined {
  const q = JSON.stringify(e);
  const at = e.lastIndexOf('@');
  const domain = at < 0 ? e : e.slice(at + 1);
  if (/[*?]/.test(e)) {
    const d = domain.replace(/^[*?.]+/, '');
    return `${q} never matches: entries have no wildcards (write "@${d || 'example.com'}" for every sender in that domain)`;
  }
  const quoted = at > 0 ? /^"([^"\\\s]+)"$/.exec(e.slice(0, at)) : null;
  if (quoted) return `${q} never matches: qmail-smtpd takes the quotes off an address (write "${quoted[1]}@${domain}")`;
  if (at < 0 && e.includes('.')) return `${q} never matches a sender: an address has an @ (write "@${e.replace(/^\.+/, '')}" for every sender in that domain)`;
  if (at >= 0 && domain.endsWith('.')) return `${q} never matches: addresses have no trailing dot (write "${e.replace(/\.+$/, '')}")`;
  if (at >= 0 && (domain === '' || domain.startsWith('.') || domain.includes('..'))) return `${q} never matches: its domain has an empty label`;
  return undefined;
}

function addEntry(entry: string, addresses: Set<string>, domains: Set<string>, where?: string): boolean {
  const e = entry.trim().toLowerCase();
  if (e === '' || e.startsWith('#')) return false;
  if (e === '<>') return true;
  const never = unmatchableEntry(e);
  if (never) throw new PluginConfigError(where ? `${where}: ${never}` : never);
  if (e.startsWith('@')) domains.add(e.slice(1));
  else addresses.add(e);
  return false;
}

export default definePlugin<BlackConfig>({
  name: 'black',
  version: VERSION,
  stages: ['general', 'per-user'],
  description:
    'Refuse mail from listed senders. Case and a trailing dot on the sender do not matter; an entry that can never match (spammer.com without @, *@spammer.com, a trailing dot) is an error that says what to write.',
  // Bare words are the senders (addresses, @domain, <>, file:/path): configure checks them.
  params: {
    words: true,
    wordsDoc: 'the senders refused: addresses (user@domain), @domain (every sender in that domain), <> (bounces), file:/path (a file of such entries, one a line)',
    keys: { text: { doc: 'the refusal text', default: DEFAULT_TEXT } },
  },
  configure({ params }) {
    const addresses = new Set<string>();
    const domains = new Set<string>();
    let bounces = false;
    for (const w of params.words) {
      if (w.startsWith('file:')) {
        const path = w.slice(5);
        if (!path.startsWith('/')) throw new PluginConfigError(`file:${path} must be an absolute path`);
        let text: string;
        try {
          text = readFileSync(path, 'utf8');
        } catch (err) {
          throw new PluginConfigError(`cannot read ${path}: ${(err as Error).message}`);
        }
        text.split('\n').forEach((line, i) => {
          bounces = addEntry(line, addresses, domains, `${path}:${i + 1}`) || bounces;
        });
      } else bounces = addEntry(w, addresses, domains) || bounces;
    }
    if (addresses.size === 0 && domains.size === 0 && !bounces) throw new PluginConfigError('no senders listed');
    const text = params.get('text') ?? DEFAULT_TEXT;
    return { addresses, domains, bounces, text };
  },
  async run({ config, sender }) {
    // evil.com. is evil.com (the absolute form): a listed sender must not get through by adding a dot.
    const s = sender.toLowerCase().replace(/\.+$/, '');
    const at = s.lastIndexOf('@');
    const hit = s === '' ? config.bounces : config.addresses.has(s) || (at >= 0 && config.domains.has(s.slice(at + 1)));
    if (hit) return { verdict: 'reject', text: config.text, flagged: true, details: { sender } };
    return { verdict: 'accept' };
  },
});
