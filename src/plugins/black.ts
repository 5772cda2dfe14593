// `black`: refuse mail from listed senders. PARAMS: addresses, @domain, <> (bounces), file:/path (one a line).

import { readFileSync } from 'node:fs';

import { definePlugin, PluginConfigError } from '../plugin-api/define.js';
import { VERSION } from '../version.js';

export interface BlackConfig {
  readonly addresses: ReadonlySet<string>;
  readonly domains: ReadonlySet<string>;
  readonly bounces: boolean;
  readonly text: string;
}

function addEntry(entry: string, addresses: Set<string>, domains: Set<string>): boolean {
  const e = entry.trim().toLowerCase();
  if (e === '' || e.startsWith('#')) return false;
  if (e === '<>') return true;
  if (e.startsWith('@')) domains.add(e.slice(1));
  else addresses.add(e);
  return false;
}

export default definePlugin<BlackConfig>({
  name: 'black',
  version: VERSION,
  stages: ['general', 'per-user'],
  // Bare words are the senders (addresses, @domain, <>, file:/path): configure checks them.
  params: { words: true, keys: { text: {} } },
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
        for (const line of text.split('\n')) bounces = addEntry(line, addresses, domains) || bounces;
      } else bounces = addEntry(w, addresses, domains) || bounces;
    }
    if (addresses.size === 0 && domains.size === 0 && !bounces) throw new PluginConfigError('no senders listed');
    const text = params.get('text') ?? 'mail from this sender is not accepted (#5.7.1)';
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
