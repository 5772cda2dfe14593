// `attach`: refuse attachments by file extension (simscan's attach=.exe:.vbs). Every part is looked
// at, at any depth, and every name a client could show for it counts (names.ts): one that matches
// refuses the message. A message past a hard bound of the walk is not accepted unless `onlimit` says so.

import { limitOutcome, limitPolicy, MimeLimitError, ONLIMIT_KEY, type LimitPolicy } from '../mime/limits.js';
import { nameVariants } from '../mime/names.js';
import { walkMime } from '../mime/walk.js';
import { definePlugin, PluginConfigError } from '../plugin-api/define.js';
import { VERSION } from '../version.js';

export interface AttachConfig {
  readonly extensions: readonly string[];
  readonly onlimit: LimitPolicy;
}

export default definePlugin<AttachConfig>({
  name: 'attach',
  version: VERSION,
  stages: ['general', 'per-user'],
  description:
    'Refuse attachments by file name extension (attach=.exe:.vbs:.scr). It looks into every part at any depth (nested multiparts, digests, attached messages, also those sent base64 or quoted-printable) and into uuencoded begin lines. A part is refused when any name a mail client could show for it matches: every name= and filename= parameter, RFC 2231 and RFC 2047 forms read every way, each name also without control characters, cut at a NUL, without invisible characters, NFKC-folded, with trailing dots and spaces removed.',
  // Bare words are colon-separated extensions: configure checks them.
  params: {
    words: true,
    wordsDoc: 'extensions, colon-separated (.exe:.vbs), as with attach=',
    keys: {
      attach: { list: true, doc: 'the extensions refused, colon-separated (.exe:.vbs:.scr); repeat for more' },
      onlimit: ONLIMIT_KEY,
    },
  },
  configure({ params }) {
    const extensions: string[] = [];
    for (const w of [...params.words, ...params.all('attach')]) {
      for (const e of w.split(':')) {
        const ext = e.trim().toLowerCase();
        if (ext === '') continue;
        if (!/^\.?[a-z0-9_~$#-]+$/.test(ext)) throw new PluginConfigError(`invalid extension ${JSON.stringify(e)}`);
        extensions.push(ext.startsWith('.') ? ext : `.${ext}`);
      }
    }
    if (extensions.length === 0) throw new PluginConfigError('no extensions given (attach=.exe:.vbs)');
    return { extensions, onlimit: limitPolicy(params) };
  },
  async run({ config, message, signal }) {
    let found: { name: string; ext: string } | undefined;
    const check = (name: string): boolean => {
      for (const v of nameVariants(name)) {
        const ext = config.extensions.find((e) => v.endsWith(e));
        if (ext) {
          found = { name, ext };
          return true;
        }
      }
      return false;
    };
    try {
      await walkMime(
        () => message.chunks(),
        {
          part: (part) => part.names.some(check),
          bodyName: (_part, name) => check(name),
        },
        signal,
      );
    } catch (err) {
      if (!(err instanceof MimeLimitError)) throw err;
      return limitOutcome('attach', config.onlimit, err);
    }
    if (found) {
      return {
        verdict: 'reject',
        text: `message refused: attachments of type ${found.ext} are not accepted (#5.7.1)`,
        flagged: true,
        details: { filename: found.name, extension: found.ext },
      };
    }
    return { verdict: 'accept' };
  },
});
