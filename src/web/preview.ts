// What the console shows of a held message: the header summary, the plain text (the text/plain part,
// else a text rendering of the HTML), optionally the HTML sanitized into a document for a sandboxed
// frame, and the attachments by name, type and size (never served). Work and output are bounded
// (message-parts.ts PREVIEW_LIMITS); what a bound cut is said in `truncated`.

import type { MessageView } from '../pipeline/types.js';
import { HTML_NESTING, previewDocument, sanitizeMailHtml } from './html-sanitize.js';
import { htmlToText } from './html-text.js';
import {
  cleanField,
  cleanText,
  decodedBody,
  decodedSize,
  decodeText,
  parseMessage,
  PREVIEW_LIMITS,
  type Part,
  type PreviewLimits,
} from './message-parts.js';

export { PREVIEW_LIMITS, type PreviewLimits } from './message-parts.js';
export {
  PREVIEW_CSP,
  PREVIEW_CSP_REMOTE,
  PREVIEW_FRAME_CSP,
  PREVIEW_FRAME_CSP_REMOTE,
  PREVIEW_SANDBOX,
  previewCsp,
  previewFrameCsp,
  previewFrameHeaders,
} from './preview-csp.js';

export interface PreviewOptions {
  /** Also make the sanitized HTML document (when the message has an HTML part) and list its remote images. */
  readonly html?: boolean;
  /** The user asked to load remote content: remote images stay in the document (nothing else remote). */
  readonly remote?: boolean;
  /** Tighter bounds (tests); each defaults to PREVIEW_LIMITS. */
  readonly limits?: Partial<PreviewLimits>;
}

/** The header summary, decoded, as plain one-line strings ('' when the field is absent). */
export interface PreviewHeaders {
  readonly from: string;
  readonly to: string;
  readonly cc: string;
  readonly subject: string;
  readonly date: string;
}

export interface PreviewAttachment {
  /** The file name as a client shows it (RFC 2231/2047-decoded), '' when the part has none. */
  readonly name: string;
  /** Media type, lower-cased. */
  readonly type: string;
  /** Decoded size in bytes (of the bytes read, when `partial`). */
  readonly size: number;
  /** The part goes on past what was read: `size` is a lower bound. */
  readonly partial: boolean;
  /** The name of the attached message this part is inside, when it is inside one. */
  readonly within?: string;
}

export interface Preview {
  readonly headers: PreviewHeaders;
  /** The plain text shown by default. */
  readonly text: string;
  /** Where the text came from: the text/plain part, a rendering of the HTML part, or nothing to show. */
  readonly textFrom: 'plain' | 'html' | 'none';
  /** The message has an HTML part. */
  readonly hasHtml: boolean;
  /** The sanitized document for <iframe sandbox> (with `html: true` and an HTML part). */
  readonly html?: string;
  /** Remote images of the HTML part (blocked unless `remote`), as text (with `html: true`). */
  readonly remoteImages: readonly string[];
  readonly attachments: readonly PreviewAttachment[];
  /** What a bound left out, one sentence each; empty when the whole message was read and shown. */
  readonly truncated: readonly string[];
}

const NESTED = `the HTML nests elements more than ${HTML_NESTING} deep: the rest is not shown`;

/** Image types an inline (cid:) part may be shown as; others stay a placeholder. */
const INLINE_IMAGE = new Set(['image/png', 'image/gif', 'image/jpeg', 'image/webp']);

interface Found {
  plain?: Part;
  html?: Part;
  attachments: { part: Part; within?: string }[];
  byCid: Map<string, Part>;
}

function isBodyText(part: Part, type: string): boolean {
  return part.type === type && part.disposition !== 'attachment' && part.filename === undefined;
}

/**
 * The parts of the message: the first inline text/plain and text/html outside attached messages are
 * the body; every other leaf is listed (an inline image too: what a message carries is all shown).
 */
function collect(part: Part, found: Found, within: string | undefined): void {
  if (part.contentId !== undefined && !found.byCid.has(part.contentId)) found.byCid.set(part.contentId, part);
  const isMessage = part.type === 'message/rfc822' || part.type === 'message/global';
  if (isMessage && part.depth > 0) {
    found.attachments.push({ part, within });
    const inner = part.children[0];
    if (inner) {
      const subject = inner.fields.find(([n]) => n === 'subject')?.[1];
      const name = part.filename ?? (subject !== undefined ? `${subject}.eml` : 'message.eml');
      for (const c of inner.children.length > 0 ? inner.children : [inner]) collectInner(c, found, within === undefined ? name : `${within} / ${name}`);
    }
    return;
  }
  if (part.children.length > 0) {
    for (const c of part.children) collect(c, found, within);
    return;
  }
  if (within === undefined && !found.plain && isBodyText(part, 'text/plain')) found.plain = part;
  else if (within === undefined && !found.html && isBodyText(part, 'text/html')) found.html = part;
  else found.attachments.push({ part, within });
}

/** Inside an attached message every leaf is listed, none is the body. */
function collectInner(part: Part, found: Found, within: string): void {
  if (part.children.length > 0 && !(part.type === 'message/rfc822' || part.type === 'message/global')) {
    for (const c of part.children) collectInner(c, found, within);
    return;
  }
  collect(part, found, within);
}

function textOf(part: Part, maxBytes: number): { text: string; cut: boolean } {
  let bytes = decodedBody(part);
  const cut = bytes.length > maxBytes;
  if (cut) bytes = bytes.subarray(0, maxBytes);
  let charset = part.params.get('charset');
  if (charset === undefined && part.type === 'text/html') {
    // No charset in the MIME header: the one the HTML declares, as a client reads it.
    const m = /<meta[^>]{0,200}charset\s*=\s*["']?([A-Za-z0-9_:.+-]{1,40})/i.exec(bytes.subarray(0, 4096).toString('latin1'));
    charset = m?.[1];
  }
  return { text: decodeText(bytes, charset), cut };
}

function header(fields: readonly (readonly [string, string])[], name: string, max: number): string {
  const values = fields.filter(([n]) => n === name).map(([, v]) => v);
  return values.length === 0 ? '' : cleanField(values[0]!, max);
}

/** The preview of a message already read (`cut`: the message goes on past `bytes`). */
export function previewBytes(bytes: Buffer, cut: boolean, options: PreviewOptions = {}): Preview {
  const limits: PreviewLimits = { ...PREVIEW_LIMITS, ...options.limits };
  const parsed = parseMessage(bytes, cut, limits);
  const truncated = [...parsed.truncated];
  const fields = parsed.root.fields;
  const headers: PreviewHeaders = {
    from: header(fields, 'from', limits.fieldChars),
    to: header(fields, 'to', limits.fieldChars),
    cc: header(fields, 'cc', limits.fieldChars),
    subject: header(fields, 'subject', limits.fieldChars),
    date: header(fields, 'date', limits.fieldChars),
  };
  const found: Found = { attachments: [], byCid: new Map() };
  collect(parsed.root, found, undefined);

  let text = '';
  let textFrom: Preview['textFrom'] = 'none';
  let htmlSource: string | undefined;
  if (found.html) {
    const h = textOf(found.html, limits.htmlBytes);
    htmlSource = h.text;
    if (h.cut) truncated.push(`the HTML part is over ${Math.round(limits.htmlBytes / 1024)} KB: only its start is shown`);
  }
  if (found.plain) {
    const t = textOf(found.plain, limits.textChars * 4);
    text = cleanText(t.text);
    textFrom = 'plain';
  } else if (htmlSource !== undefined) {
    const r = htmlToText(htmlSource, limits.textChars, HTML_NESTING);
    text = cleanText(r.text);
    textFrom = 'html';
    if (r.cut && r.text.length < limits.textChars) truncated.push(NESTED);
  }
  if (text.length > limits.textChars || (found.plain && decodedSize(found.plain) > limits.textChars * 4)) {
    text = text.slice(0, limits.textChars);
    truncated.push(`the text is longer than ${limits.textChars} characters: only its start is shown`);
  }

  let html: string | undefined;
  let remoteImages: readonly string[] = [];
  if (htmlSource !== undefined && options.html) {
    const cid = (id: string): string | undefined => {
      const p = found.byCid.get(id);
      if (!p || !INLINE_IMAGE.has(p.type) || p.cut || decodedSize(p) > limits.inlineImageBytes) return undefined;
      return `data:${p.type};base64,${decodedBody(p).toString('base64')}`;
    };
    const s = sanitizeMailHtml(htmlSource, { remote: options.remote === true, cid }, limits.inlineImagesTotal);
    remoteImages = s.remoteImages;
    if (s.cut && !truncated.includes(NESTED)) truncated.push(NESTED);
    html = previewDocument(s.body, options.remote === true);
  }

  const listed = found.attachments.slice(0, limits.attachments);
  if (found.attachments.length > listed.length) truncated.push(`more than ${limits.attachments} attachments: the rest are not listed`);
  const attachments = listed.map(({ part, within }): PreviewAttachment => ({
    name: part.filename === undefined ? '' : cleanField(part.filename, limits.fieldChars, false),
    type: part.type,
    size: decodedSize(part),
    partial: part.cut,
    ...(within !== undefined ? { within: cleanField(within, limits.fieldChars) } : {}),
  }));
  return { headers, text, textFrom, hasHtml: found.html !== undefined, ...(html !== undefined ? { html } : {}), remoteImages, attachments, truncated };
}

/** The preview of a stored message: at most `limits.readBytes` of it are read. */
export async function previewMessage(view: MessageView, options: PreviewOptions = {}): Promise<Preview> {
  const max = options.limits?.readBytes ?? PREVIEW_LIMITS.readBytes;
  const chunks: Buffer[] = [];
  let length = 0;
  let cut = false;
  const stream = view.stream();
  try {
    for await (const c of stream) {
      const chunk = c as Buffer;
      if (length + chunk.length > max) {
        chunks.push(chunk.subarray(0, max - length));
        length = max;
        cut = true;
        break;
      }
      chunks.push(chunk);
      length += chunk.length;
    }
  } finally {
    stream.destroy();
  }
  if (!cut && view.size > length) cut = true;
  return previewBytes(Buffer.concat(chunks, length), cut, options);
}
