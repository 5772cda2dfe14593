// `header`: refuse when a header matches a regular expression (simscan's regex). PARAMS: NAME:/REGEX/[flags].

import { splitHeaders } from '../mime/walk.js';
import { decodeEncodedWords } from '../mime/words.js';
import { definePlugin, PluginConfigError } from '../plugin-api/define.js';
import { VERSION } from '../version.js';

export interface HeaderRule {
  readonly name: string;
  readonly re: RegExp;
  readonly source: string;
}

export interface HeaderConfig {
  readonly rules: readonly HeaderRule[];
  readonly text: string | undefined;
}

export default definePlugin<HeaderConfig>({
  name: 'header',
  version: VERSION,
  stages: ['general', 'per-user'],
  // Bare words are NAME:/REGEX/ rules: configure checks them.
  params: { words: true, keys: { header: { list: true }, text: {} } },
  configure({ params }) {
    const rules: HeaderRule[] = [];
    const specs = [...params.words, ...params.all('header')];
    for (const spec of specs) {
      const m = /^([!-9;-~]+):\/(.*)\/([a-z]*)$/.exec(spec);
      if (!m) throw new PluginConfigError(`expected NAME:/REGEX/, got ${JSON.stringify(spec)}`);
      let re: RegExp;
      try {
        re = new RegExp(m[2]!, m[3]!.replace(/[gy]/g, ''));
      } catch (err) {
        throw new PluginConfigError(`${(err as Error).message}`);
      }
      rules.push({ name: m[1]!.toLowerCase(), re, source: spec });
    }
    if (rules.length === 0) throw new PluginConfigError('no NAME:/REGEX/ given');
    return { rules, text: params.get('text') };
  },
  async run({ config, message }) {
    const headers = splitHeaders((await message.head()).toString('utf8'));
    for (const rule of config.rules) {
      for (const [name, value] of headers) {
        if (name !== rule.name) continue;
        if (rule.re.test(value) || rule.re.test(decodeEncodedWords(value))) {
          return {
            verdict: 'reject',
            text: config.text ?? `message refused: its ${name} header is not accepted (#5.7.1)`,
            flagged: true,
            details: { header: name, rule: rule.source },
          };
        }
      }
    }
    return { verdict: 'accept' };
  },
});
