// `attach`: refuse attachments by file extension (simscan's attach=.exe:.vbs), looking into nested
// multiparts and attached messages, with RFC 2047/2231 encoded names.

import { walkMime } from '../mime/walk.js';
import { definePlugin, PluginConfigError } from '../plugin-api/define.js';
import { VERSION } from '../version.js';

export interface AttachConfig {
  readonly extensions: readonly string[];
}

/** The name as Windows would see it: trailing dots and spaces do not count. */
function normalise(name: string): string {
  return name.replace(/[\s.]+$/, '').toLowerCase();
}

export default definePlugin<AttachConfig>({
  name: 'attach',
  version: VERSION,
  stages: ['general', 'per-user'],
  // Bare words are colon-separated extensions: configure checks them.
  params: { words: true, keys: { attach: { list: true } } },
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
    return { extensions };
  },
  async run({ config, message }) {
    let found: { name: string; ext: string } | undefined;
    await walkMime(message.stream(), (part) => {
      if (found || part.filename === undefined) return;
      const name = normalise(part.filename);
      const ext = config.extensions.find((e) => name.endsWith(e));
      if (ext) found = { name: part.filename, ext };
    });
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
