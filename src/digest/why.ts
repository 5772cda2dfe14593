// Why an item is held, in words for the person it was meant for (the digest): one short phrase per
// plugin that caught it. The administrator's full account (every result, the routing line) is the
// console's; this only has to be understood at a glance.

import type { ItemResult, QuarantineItem } from '../store/types.js';

function detail(r: ItemResult | undefined, key: string): string | undefined {
  const v = r?.details[key];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function score(r: ItemResult | undefined): string {
  return typeof r?.score === 'number' && Number.isFinite(r.score) ? ` (score ${r.score.toFixed(1)})` : '';
}

function phrase(plugin: string, r: ItemResult | undefined): string {
  switch (plugin) {
    case 'clamav': {
      const virus = detail(r, 'virus');
      return virus ? `a virus was found in it (${virus})` : 'a virus was found in it';
    }
    case 'spamassassin':
    case 'rspamd':
      return `it looks like spam${score(r)}`;
    case 'dspam':
      return 'it looks like spam (the learning filter says so)';
    case 'black':
      return 'the sender or its server is on a block list';
    case 'attach':
      return 'it has an attachment of a kind that is not let through';
    case 'header':
      return 'one of its header lines matched a rule';
    default: {
      const text = r?.text ?? detail(r, 'result');
      return text ? `${plugin}: ${text}` : `the ${plugin} check held it`;
    }
  }
}

/** `it looks like spam (score 12.3); a virus was found in it (Eicar-Test)`. */
export function whyInWords(item: Pick<QuarantineItem, 'caughtBy' | 'results'>): string {
  const plugins = item.caughtBy.length > 0 ? item.caughtBy : item.results.filter((r) => r.flagged).map((r) => r.plugin);
  if (plugins.length === 0) return 'a check held it';
  const seen = new Set<string>();
  const out: string[] = [];
  for (const p of plugins) {
    const r = item.results.find((x) => x.plugin === p && x.flagged) ?? item.results.find((x) => x.plugin === p);
    const words = phrase(p, r);
    if (!seen.has(words)) {
      seen.add(words);
      out.push(words);
    }
  }
  return out.join('; ');
}
