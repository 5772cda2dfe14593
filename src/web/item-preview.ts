// The preview section of an item page and the policy that page needs. Plain text by default; the HTML
// version only when asked (?html=1), in an <iframe sandbox> whose document comes from
// GET /item/ID/preview (routes/preview.ts) under its own policy; remote images only when asked again
// (?html=1&remote=1). Attachments are listed, never served.

import type { QuarantineItem } from '../store/types.js';
import { PAGE_CSP } from './headers.js';
import { html, shown, type Html } from './html.js';
import { formatBytes } from './message-parts.js';
import { visibleLines } from './plain-preview.js';
import { PREVIEW_SANDBOX } from './preview-csp.js';
import type { MessageView } from '../pipeline/types.js';
import type { Preview, PreviewOptions } from './preview.js';

/**
 * The preview of a message, the preview module loaded on first use: the sanitizer and its parsers
 * take over 100 ms to load, which `nqqueue web` need not spend before it listens.
 */
export async function previewOf(view: MessageView, options: PreviewOptions): Promise<Preview> {
  return (await import('./preview.js')).previewMessage(view, options);
}

export interface PreviewChoice {
  /** Show the sanitized HTML version in its frame. */
  readonly html: boolean;
  /** ...with its remote images. */
  readonly remote: boolean;
}

export function previewChoice(query: unknown): PreviewChoice {
  const q = (query ?? {}) as Record<string, unknown>;
  const html = q.html === '1';
  return { html, remote: html && q.remote === '1' };
}

/** The item page's policy when it holds the preview frame: the console's own, plus frames from the console itself. */
export const PAGE_CSP_WITH_PREVIEW = `${PAGE_CSP}; frame-src 'self'`;

/** The URL of the preview frame's document. */
export function previewFrameUrl(id: string, remote: boolean): string {
  return `/item/${id}/preview${remote ? '?remote=1' : ''}`;
}

function headerList(p: Preview): Html {
  const rows: [string, string][] = [
    ['From', p.headers.from],
    ['To', p.headers.to],
    ['Cc', p.headers.cc],
    ['Subject', p.headers.subject],
    ['Date', p.headers.date],
  ];
  return html`<dl class="meta preview-headers">${rows.filter(([, v]) => v !== '').map(([k, v]) => html`<dt>${k}</dt><dd>${shown(v)}</dd>`)}</dl>`;
}

function attachmentList(p: Preview): Html {
  if (p.attachments.length === 0) return html``;
  return html`<h3>Attachments (${p.attachments.length})</h3>
<table class="attachments"><thead><tr><th>Name</th><th>Type</th><th>Size</th></tr></thead><tbody>
${p.attachments.map(
  (a) => html`<tr><td>${a.name === '' ? html`<span class="muted">(no name)</span>` : shown(a.name)}${a.within ? html` <span class="muted">in ${shown(a.within)}</span>` : ''}</td><td>${shown(a.type)}</td><td class="nowrap">${a.partial ? 'at least ' : ''}${formatBytes(a.size)}</td></tr>`,
)}
</tbody></table>
<p class="muted">Attachments are not opened here. Release the message to open them in your mail program.</p>`;
}

/** The section: header summary, text or HTML frame, the switch between them, the attachments, what was cut. */
export function previewSection(item: QuarantineItem, p: Preview, choice: PreviewChoice): Html {
  const base = `/item/${item.id}`;
  const cut = p.truncated.length > 0 ? html`<p class="muted">Not all of the message is shown: ${p.truncated.join('; ')}.</p>` : html``;
  let body: Html;
  if (choice.html && p.hasHtml) {
    const remoteNote =
      p.remoteImages.length === 0
        ? html``
        : choice.remote
          ? html`<p class="notice">Remote images are shown: the sender can see that and when this message was looked at. <a href="${base}?html=1">Block them again</a></p>`
          : html`<p class="notice">${p.remoteImages.length} remote image${p.remoteImages.length === 1 ? ' is' : 's are'} blocked (the sender could see that you looked). <a href="${base}?html=1&amp;remote=1" class="load-remote">Load remote content</a></p>`;
    body = html`<p><a href="${base}">Show the plain text</a> · HTML version, links do not work (their addresses are shown beside them)</p>
${remoteNote}
<iframe class="preview" sandbox="${PREVIEW_SANDBOX}" src="${previewFrameUrl(item.id, choice.remote)}" title="The message's HTML, made safe" referrerpolicy="no-referrer" width="100%" height="560"></iframe>`;
  } else {
    const text = p.textFrom === 'none' ? html`<p class="muted">This message has no text to show.</p>` : html`<pre class="message">${visibleLines(p.text)}</pre>`;
    body = html`${p.hasHtml ? html`<p>${p.textFrom === 'html' ? 'Text made from the HTML version' : 'Plain text'} · <a href="${base}?html=1" class="show-html">Show the HTML version</a></p>` : ''}
${text}`;
  }
  return html`${headerList(p)}
${body}
${cut}
${attachmentList(p)}`;
}
