// The content security policy of a preview document, and the headers the console serves it with.
// The document is meant for an <iframe sandbox> (no allow-scripts, no allow-same-origin): the
// sanitizer keeps out what it can, the sandbox and the policy stop what it missed.

import { createHash } from 'node:crypto';

/** The preview's own stylesheet; the policy allows this one by its hash, and no other style. */
export const PREVIEW_STYLE = [
  'html{color-scheme:light}',
  'body{margin:8px;font:14px/1.45 system-ui,sans-serif;color:#111;background:#fff;overflow-wrap:anywhere}',
  'img{max-width:100%;height:auto}',
  'table{max-width:100%}',
  'pre{white-space:pre-wrap}',
  '.nqq-link{color:#0645ad;text-decoration:underline dotted;cursor:default}',
  '.nqq-url{color:#555;font-size:90%;font-family:ui-monospace,monospace}',
  '.nqq-blocked{display:inline-block;border:1px dashed #999;color:#555;background:#f6f6f6;padding:0 4px;font-size:90%}',
].join('');

const STYLE_HASH = `'sha256-${createHash('sha256').update(PREVIEW_STYLE, 'utf8').digest('base64')}'`;

/**
 * The policy inside the document (a <meta http-equiv>): nothing may load but data: images (and https
 * images once the user asked for remote content), no style but the preview's own, no form may post,
 * no <base> may move relative URLs.
 */
export function previewCsp(remote = false): string {
  return [
    "default-src 'none'",
    `img-src data:${remote ? ' https:' : ''}`,
    `style-src ${STYLE_HASH}`,
    "form-action 'none'",
    "base-uri 'none'",
  ].join('; ');
}

/**
 * The same policy as the console's response header for the frame's URL, plus what only a header can
 * say: `sandbox` (the document is sandboxed even when opened on its own, outside the frame) and
 * `frame-ancestors 'self'` (only the console may frame it).
 */
export function previewFrameCsp(remote = false): string {
  return `${previewCsp(remote)}; frame-ancestors 'self'; sandbox`;
}

export const PREVIEW_CSP = previewCsp(false);
export const PREVIEW_CSP_REMOTE = previewCsp(true);
export const PREVIEW_FRAME_CSP = previewFrameCsp(false);
export const PREVIEW_FRAME_CSP_REMOTE = previewFrameCsp(true);

/** The sandbox attribute of the console's <iframe>: empty, i.e. every restriction (no scripts, opaque origin, no forms, no navigation of the top). */
export const PREVIEW_SANDBOX = '';

/**
 * Every header of the frame's response: the policy; UTF-8 stated, never sniffed (the document is
 * always UTF-8, whatever the mail's charset was); no Referer to remote images (it would carry the
 * item's URL); not cached.
 */
export function previewFrameHeaders(remote = false): Record<string, string> {
  return {
    'content-type': 'text/html; charset=utf-8',
    'content-security-policy': previewFrameCsp(remote),
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'cache-control': 'no-store',
    'cross-origin-resource-policy': 'same-origin',
  };
}
