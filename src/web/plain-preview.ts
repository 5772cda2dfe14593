// The message as plain text, for the item page: its header block and the start of its body, exactly as
// stored, decoded as UTF-8, with every control and bidirectional character made visible and the whole
// escaped. Nothing in it is interpreted: no MIME decoding, no HTML — a raw look that cannot do harm.

import type { MessageView } from '../pipeline/types.js';
import { html, type Html } from './html.js';
import { visible } from '../text/visible.js';

export const PREVIEW_BYTES = 16 * 1024;

async function firstBytes(view: MessageView, limit: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let got = 0;
  const stream = view.stream();
  try {
    for await (const chunk of stream) {
      const b = chunk as Buffer;
      parts.push(b.subarray(0, limit - got));
      got += Math.min(b.length, limit - got);
      if (got >= limit) break;
    }
  } finally {
    stream.destroy();
  }
  return Buffer.concat(parts);
}

/** Text shown line by line: newlines kept, tabs kept, every other control character an escape. */
export function visibleLines(text: string): string {
  return text
    .split('\n')
    .map((l) => visible(l.replace(/\r$/, ''), { tabs: true }))
    .join('\n');
}

export async function plainPreview(view: MessageView): Promise<Html> {
  const bytes = await firstBytes(view, PREVIEW_BYTES);
  const more = view.size > bytes.length;
  return html`<pre class="message">${visibleLines(bytes.toString('utf8'))}</pre>
${more ? html`<p class="muted">The first ${PREVIEW_BYTES / 1024} KB of ${Math.ceil(view.size / 1024)} KB.</p>` : ''}`;
}
