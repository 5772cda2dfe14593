// `header`: refuse when a header matches a regular expression (simscan's regex). PARAMS: NAME:/REGEX/[flags].
// Rules are matched against every field of that name in the message's header block and in the header
// blocks of all its MIME parts, at any depth (walk.ts), raw and RFC 2047-decoded every way a client
// could. Patterns run on the linear-time engine (admin-regex.ts): no header can make a match run away.

import { AdminRegexError, compileAdminRegex } from '../config/admin-regex.js';
import { limitOutcome, limitPolicy, MIME_LIMITS, MimeLimitError, ONLIMIT_KEY, type LimitPolicy } from '../mime/limits.js';
import { walkMime } from '../mime/walk.js';
import { encodedWordReadings } from '../mime/words.js';
import { definePlugin, PluginConfigError } from '../plugin-api/define.js';
import { VERSION } from '../version.js';

// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f]/;
// eslint-disable-next-line no-control-regex
const CONTROLS = /[\x00-\x08\x0a-\x1f\x7f]/g;

/**
 * The texts a rule is matched against: the field as written and every way a client could decode its
 * encoded words (words.ts), each also without control characters (a NUL or a lone CR that a client
 * drops must not split a word a rule looks for).
 */
function fieldReadings(value: string): string[] {
  const out = new Set(encodedWordReadings(value));
  out.add(value);
  for (const t of [...out]) if (CONTROL.test(t)) out.add(t.replace(CONTROLS, ''));
  return [...out];
}

export interface HeaderRule {
  readonly name: string;
  readonly re: RegExp;
  readonly source: string;
}

export interface HeaderConfig {
  readonly rules: readonly HeaderRule[];
  readonly text: string | undefined;
  readonly onlimit: LimitPolicy;
}

export default definePlugin<HeaderConfig>({
  name: 'header',
  version: VERSION,
  stages: ['general', 'per-user'],
  // Bare words are NAME:/REGEX/ rules: configure checks them.
  params: { words: true, keys: { header: { list: true }, text: {}, onlimit: ONLIMIT_KEY } },
  configure({ params }) {
    const rules: HeaderRule[] = [];
    const specs = [...params.words, ...params.all('header')];
    for (const spec of specs) {
      const m = /^([!-9;-~]+):\/(.*)\/([a-z]*)$/.exec(spec);
      if (!m) throw new PluginConfigError(`expected NAME:/REGEX/, got ${JSON.stringify(spec)}`);
      let re: RegExp;
      try {
        re = compileAdminRegex(m[2]!, m[3]!.replace(/[gy]/g, ''));
      } catch (err) {
        throw new PluginConfigError(err instanceof AdminRegexError ? `${spec}: ${err.message}` : `${(err as Error).message}`);
      }
      rules.push({ name: m[1]!.toLowerCase(), re, source: spec });
    }
    if (rules.length === 0) throw new PluginConfigError('no NAME:/REGEX/ given');
    return { rules, text: params.get('text'), onlimit: limitPolicy(params) };
  },
  async run({ config, message, signal }) {
    const names = new Set(config.rules.map((r) => r.name));
    let hit: { name: string; rule: string; part: number } | undefined;
    try {
      await walkMime(
        () => message.stream(),
        {
          field: (part, name, value) => {
            if (!names.has(name)) return false;
            // One match is bounded by the field's length: a field longer than any real one is a limit.
            if (value.length > MIME_LIMITS.fieldBytes) throw new MimeLimitError('field');
            const texts = fieldReadings(value);
            for (const rule of config.rules) {
              if (rule.name !== name) continue;
              if (texts.some((t) => rule.re.test(t))) {
                hit = { name, rule: rule.source, part: part.index };
                return true;
              }
            }
            return false;
          },
        },
        signal,
      );
    } catch (err) {
      if (!(err instanceof MimeLimitError)) throw err;
      return limitOutcome('header', config.onlimit, err);
    }
    if (hit) {
      return {
        verdict: 'reject',
        text: config.text ?? `message refused: its ${hit.name} header is not accepted (#5.7.1)`,
        flagged: true,
        details: { header: hit.name, rule: hit.rule, part: hit.part },
      };
    }
    return { verdict: 'accept' };
  },
});
