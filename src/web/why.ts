// Why an item is held, in words its recipient understands: one sentence per plugin that ran, from the
// result the pipeline recorded ("SpamAssassin scored it 12.3 (your limit is 5.0)", "ClamAV found the
// virus Eicar-Test", "Rspamd ... would refuse it"). The values come from scanners and from the
// message: they are plain text here and escaped by the page.

import type { ItemResult } from '../store/types.js';

export interface WhyLine {
  readonly plugin: string;
  /** The plugin's own words for what it found. */
  readonly sentence: string;
  /** True when this result is one that made the quarantine keep the message. */
  readonly caught: boolean;
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function fixed(n: number): string {
  return n.toFixed(1);
}

function percent(n: number): string {
  return `${Math.round(n * 100)}%`;
}

const NAMES: Record<string, string> = {
  spamassassin: 'SpamAssassin',
  rspamd: 'Rspamd',
  clamav: 'ClamAV',
  dspam: 'DSPAM',
  black: 'The blocked senders list',
  attach: 'The attachment rules',
  header: 'The header rules',
  exec: 'A site check',
  quarantine: 'The quarantine',
  lists: 'The allow and block lists',
};

export function pluginName(plugin: string): string {
  return Object.hasOwn(NAMES, plugin) ? NAMES[plugin]! : plugin;
}

/** Rspamd's actions (its own names, as it reports them) in words. */
const ADVICE: Record<string, string> = {
  reject: 'would refuse it',
  'soft reject': 'would have it sent again later',
  'rewrite subject': 'would mark it as spam',
  'add header': 'would mark it as spam',
  greylist: 'would have it sent again later',
  'no action': 'would let it through',
};

function sentenceOf(r: ItemResult): string {
  const d = r.details;
  const score = num(r.score);
  // Spared by an allow list entry: it did not look at the message at all.
  if (d.skipped === 'allowed') return `${pluginName(r.plugin)} did not check it: ${str(r.text)?.replace(/^not run: /, '') ?? 'the sender is allowed'}`;
  switch (r.plugin) {
    case 'lists': {
      const value = str(d.value);
      const whose = d.scope === 'user' ? 'your list' : d.scope === 'domain' ? `the list of ${str(d.owner) ?? 'your domain'}` : d.scope === 'global' ? "the site's list" : undefined;
      if (!whose || !value) return 'The sender is on none of the allow and block lists';
      return d.action === 'block' ? `The sender (${value}) is blocked by ${whose}` : `The sender (${value}) is allowed by ${whose}`;
    }
    case 'spamassassin': {
      const limit = num(d.threshold) ?? num(d.required);
      const whose = str(d.user) && d.user !== '(spamd default)' ? 'your limit' : 'the limit';
      if (score === undefined) return `SpamAssassin ${r.flagged ? 'thinks it is spam' : 'found nothing'}`;
      return `SpamAssassin scored it ${fixed(score)}${limit === undefined ? '' : ` (${whose} is ${fixed(limit)})`}${r.flagged ? ': spam' : ': not spam'}`;
    }
    case 'rspamd': {
      const limit = num(d.required);
      const action = str(d.action);
      const symbols = Array.isArray(d.symbols) ? d.symbols.filter((s): s is string => typeof s === 'string') : [];
      let s = score === undefined ? 'Rspamd checked it' : `Rspamd scored it ${fixed(score)}${limit === undefined ? '' : ` (the limit is ${fixed(limit)})`}`;
      if (action) s += ` and ${Object.hasOwn(ADVICE, action) ? ADVICE[action] : `advised: ${action}`}`;
      if (symbols.length > 0) s += `; it matched ${symbols.slice(0, 8).join(', ')}${symbols.length > 8 ? ` and ${symbols.length - 8} more` : ''}`;
      return s;
    }
    case 'clamav': {
      const virus = str(d.virus);
      return virus ? `ClamAV found the virus ${virus}` : 'ClamAV found no virus';
    }
    case 'dspam': {
      const result = str(d.result);
      const p = num(d.probability);
      const c = num(d.confidence);
      const bits = [p === undefined ? '' : `probability ${percent(p)}`, c === undefined ? '' : `confidence ${percent(c)}`].filter(Boolean);
      return `DSPAM classified it as ${result ? result.toLowerCase() : r.flagged ? 'spam' : 'not spam'}${bits.length ? ` (${bits.join(', ')})` : ''}`;
    }
    case 'black': {
      const sender = str(d.sender);
      return r.flagged ? `The sender${sender ? ` ${sender}` : ''} is on the blocked senders list` : 'The sender is not on the blocked senders list';
    }
    case 'attach': {
      const name = str(d.filename);
      const ext = str(d.extension);
      return r.flagged ? `It has an attachment${name ? ` named ${name}` : ''}${ext ? ` of a type that is not accepted (${ext})` : ' that is not accepted'}` : 'Its attachments are accepted';
    }
    case 'header': {
      const header = str(d.header);
      const rule = str(d.rule);
      if (!r.flagged) return 'Its headers matched no rule';
      return `${header ? `Its ${header} header` : 'A header'} matched the rule ${rule ?? '(not recorded)'}`;
    }
    default: {
      const text = str(r.text);
      const what = r.flagged ? 'found something' : 'found nothing';
      return `${pluginName(r.plugin)} (${r.plugin}) ${what}${score === undefined ? '' : `, score ${fixed(score)}`}${text ? `: ${text}` : ''}`;
    }
  }
}

export function whyLines(results: readonly ItemResult[], caughtBy: readonly string[]): WhyLine[] {
  return results
    .filter((r) => r.plugin !== 'quarantine')
    .map((r) => ({ plugin: r.plugin, sentence: sentenceOf(r), caught: r.flagged && caughtBy.includes(r.plugin) }));
}

/** One short line for the list: what caught it. */
export function whySummary(results: readonly ItemResult[], caughtBy: readonly string[]): string {
  const caught = whyLines(results, caughtBy).filter((l) => l.caught);
  if (caught.length === 0) return caughtBy.length ? caughtBy.map(pluginName).join(', ') : 'held';
  return caught.map((l) => l.sentence).join('; ');
}
