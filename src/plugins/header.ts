// `header`: refuse when a header matches a regular expression (simscan's regex). PARAMS: NAME:/REGEX/[flags].
// Rules are matched against every field of that name in the message's header block and in the header
// blocks of all its MIME parts, at any depth (walk.ts), raw and RFC 2047-decoded every way a client
// could. Patterns run on the linear-time engine (admin-regex.ts): no header can make a match run away.

import { AdminRegexError, compileAdminRegex, MATCH_BUDGET, regexCost } from '../config/admin-regex.js';
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

/** The refusal text when the line sets none: it names the field (lower-cased) that matched. */
export function refusalText(name: string): string {
  return `message refused: its ${name} header is not accepted (#5.7.1)`;
}

export interface HeaderRule {
  readonly name: string;
  readonly re: RegExp;
  readonly source: string;
}

/** The shortest field a rule must be able to take: shorter than that, the rules must be split. */
const MIN_FIELD = 1000;

export interface HeaderConfig {
  readonly rules: readonly HeaderRule[];
  /**
   * Per field name, the longest field its rules are matched against: the matching of one field costs at
   * most the sum of its rules' program sizes per character (admin-regex.ts), held to MATCH_BUDGET.
   */
  readonly maxField: ReadonlyMap<string, number>;
  readonly text: string | undefined;
  readonly onlimit: LimitPolicy;
}

export default definePlugin<HeaderConfig>({
  name: 'header',
  version: VERSION,
  stages: ['general', 'per-user'],
  description:
    'Refuse the message when a header field matches a rule (header=Subject:/lottery/i). A rule is matched against every field of that name in the header block of the message and of every MIME part, attached messages included, at any depth: the value unfolded, matched raw and RFC 2047-decoded. Patterns run on a linear-time engine: one it cannot run (backreferences, lookahead, counted repetitions over 16, the u flag) is refused when the configuration is loaded. A field over 64 KB, or longer than its rules can be matched against in bounded time, is a bound (onlimit).',
  // Bare words are NAME:/REGEX/ rules: configure checks them.
  params: {
    words: true,
    wordsDoc: 'rules, NAME:/REGEX/FLAGS (flags i, m, s), as with header=',
    keys: {
      header: { list: true, doc: 'a rule: NAME:/REGEX/FLAGS, the field name and a regular expression (flags i, m, s); repeat for several' },
      text: { doc: 'the refusal text', default: refusalText('NAME') },
      onlimit: ONLIMIT_KEY,
    },
  },
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
    const cost = new Map<string, number>();
    for (const r of rules) cost.set(r.name, (cost.get(r.name) ?? 0) + regexCost(r.re));
    const maxField = new Map<string, number>();
    for (const [name, c] of cost) {
      const n = Math.min(MIME_LIMITS.fieldBytes, Math.floor(MATCH_BUDGET / c));
      if (n < MIN_FIELD) {
        throw new PluginConfigError(
          `the rules for ${name} are too large to match a field of ${MIN_FIELD} characters in bounded time (about ${c} states; at most ${Math.floor(MATCH_BUDGET / MIN_FIELD)}): split them over several header plugins on the line`,
        );
      }
      maxField.set(name, n);
    }
    return { rules, maxField, text: params.get('text'), onlimit: limitPolicy(params) };
  },
  async run({ config, message, signal }) {
    const names = new Set(config.rules.map((r) => r.name));
    let hit: { name: string; rule: string; part: number } | undefined;
    try {
      await walkMime(
        () => message.chunks(),
        {
          field: (part, name, value) => {
            if (!names.has(name)) return false;
            // One match is bounded by the field's length: a field longer than any real one is a limit.
            if (value.length > MIME_LIMITS.fieldBytes) throw new MimeLimitError('field');
            // ...and by what its rules cost per character (a large pattern takes a shorter field).
            if (value.length > config.maxField.get(name)!) throw new MimeLimitError('field-cost');
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
        text: config.text ?? refusalText(hit.name),
        flagged: true,
        details: { header: hit.name, rule: hit.rule, part: hit.part },
      };
    }
    return { verdict: 'accept' };
  },
});
