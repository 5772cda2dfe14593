// The HTML of a mail made safe to show: an allow-list sanitizer (sanitize-html) decides what is kept;
// before it, one pass makes links inert (the address shown as text beside the link) and images local
// (cid: parts as small data: URIs, remote ones as a placeholder naming the address unless remote
// content was asked for). The result is the body of a complete document for a sandboxed frame.

import { Parser } from 'htmlparser2';
import sanitize from 'sanitize-html';

import { escapeHtml } from './html.js';
import { feedBounded, VOID_ELEMENTS as VOID } from './html-feed.js';
import { PREVIEW_STYLE, previewCsp } from './preview-csp.js';

export interface SanitizeOptions {
  /** Keep remote images (http, https, protocol-relative): the user asked to load remote content. */
  readonly remote?: boolean;
  /** The data: URI of the inline part with this Content-ID, when it may be shown. */
  readonly cid?: (id: string) => string | undefined;
  /** The nesting depth read; the HTML is not read past an element deeper than this. */
  readonly nesting?: number;
}

export interface SanitizedHtml {
  /** The sanitized body (HTML of the allowed elements only). */
  readonly body: string;
  /** Remote images met (absolute http/https or protocol-relative addresses), in order, once each. */
  readonly remoteImages: readonly string[];
  /** The HTML was not read to its end: it nests deeper than `nesting`. */
  readonly cut: boolean;
}

/** Nesting read by default: far beyond real mail, small enough to keep the parser's cost linear. */
export const HTML_NESTING = 200;

/** Elements kept: text structure and tables. Nothing that runs, loads, submits, embeds or styles. */
const TAGS = [
  'a', 'abbr', 'address', 'article', 'aside', 'b', 'bdi', 'bdo', 'big', 'blockquote', 'br', 'caption', 'center',
  'cite', 'code', 'col', 'colgroup', 'dd', 'del', 'dfn', 'div', 'dl', 'dt', 'em', 'figcaption', 'figure', 'font',
  'footer', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'header', 'hr', 'i', 'img', 'ins', 'kbd', 'li', 'main', 'mark', 'nav',
  'ol', 'p', 'pre', 'q', 's', 'samp', 'section', 'small', 'span', 'strike', 'strong', 'sub', 'sup', 'table', 'tbody',
  'td', 'tfoot', 'th', 'thead', 'time', 'tr', 'tt', 'u', 'ul', 'var', 'wbr',
];

/**
 * Elements dropped with their content: what is not text for a reader (scripts, styles, templates,
 * foreign content, embedded documents, form option lists, the head's title). Other elements not
 * allowed (form, button, label...) are dropped but their text kept.
 */
const NON_TEXT = [
  'script', 'style', 'textarea', 'option', 'select', 'xmp', 'noscript', 'noembed', 'noframes', 'template', 'title',
  'svg', 'math', 'iframe', 'frame', 'frameset', 'object', 'embed', 'applet', 'audio', 'video', 'canvas', 'head',
  'datalist', 'plaintext', 'listing',
];

/** Presentational attributes only: no style, no class or id of the mail's own, no URL but img src. */
const ATTRIBUTES: Record<string, string[]> = {
  '*': ['align', 'valign', 'dir', 'lang', 'width', 'height', 'bgcolor', 'border', 'cellpadding', 'cellspacing', 'colspan', 'rowspan', 'nowrap', 'span'],
  font: ['color', 'face', 'size'],
  img: ['src', 'alt'],
  ol: ['start', 'type', 'reversed'],
  ul: ['type'],
  li: ['value'],
  time: ['datetime'],
};

/** The classes of the preview's own marks (an inert link, its address, a blocked image). */
const CLASSES: Record<string, string[]> = { a: ['nqq-link'], span: ['nqq-url', 'nqq-blocked'] };

const IMAGE_DATA = /^data:image\/(?:png|gif|jpeg|webp);base64,[A-Za-z0-9+/]+={0,2}$/i;
const REMOTE = /^(?:https?:)?\/\//i;
const SHOWN_URL = 300;

/** A URL shown as text: white space made visible as written, cut when long (a data: URI can be megabytes). */
function shownUrl(url: string): string {
  const one = url.replace(/\s+/g, ' ').trim();
  return one.length > SHOWN_URL ? `${one.slice(0, SHOWN_URL)}…` : one;
}

const NAME = /^[a-z][a-z0-9-]*$/;
/** Attributes whose value is free text; every other kept attribute is presentational and must look like it. */
const FREE_TEXT = new Set(['alt', 'title', 'datetime']);
/** What a presentational value is (a size, a colour, a font list, a direction): never an address. */
const PRESENTATIONAL = /^[#A-Za-z0-9%., -]{0,100}$/;

interface Prepared {
  readonly html: string;
  readonly remoteImages: string[];
  readonly cut: boolean;
}

/**
 * The pass before the sanitizer: links lose their href and get their address written after them as
 * text; images get a local source or become a placeholder. It writes well-formed HTML (every text and
 * attribute value escaped, odd tag and attribute names dropped) for the sanitizer to parse again: the
 * sanitizer stays the one gate, this pass only rewrites.
 */
function prepare(html: string, options: SanitizeOptions, imageBudget: { total: number }): Prepared {
  const out: string[] = [];
  const remoteImages = new Set<string>();
  const links: (string | undefined)[] = [];
  const nesting = options.nesting ?? HTML_NESTING;
  let depth = 0;
  const parser = new Parser(
    {
      onopentag(name, attribs) {
        if (!NAME.test(name)) return;
        if (name === 'img' || name === 'image') {
          out.push(image(attribs, options, remoteImages, imageBudget));
          return;
        }
        let href: string | undefined;
        let tag = `<${name}`;
        for (const [k, v] of Object.entries(attribs)) {
          if (name === 'a' && k === 'href') {
            href = v;
            continue;
          }
          if (NAME.test(k) && (FREE_TEXT.has(k) || PRESENTATIONAL.test(v))) tag += ` ${k}="${escapeHtml(v)}"`;
        }
        if (name === 'a' && href !== undefined) tag += ' class="nqq-link"';
        out.push(`${tag}>`);
        if (VOID.has(name)) return;
        depth++;
        if (name === 'a') links.push(href);
      },
      ontext(text) {
        out.push(escapeHtml(text));
      },
      onclosetag(name) {
        if (!NAME.test(name) || VOID.has(name)) return;
        depth--;
        out.push(`</${name}>`);
        if (name === 'a') {
          const href = links.pop();
          if (href !== undefined && href.trim() !== '') out.push(` <span class="nqq-url">[${escapeHtml(shownUrl(href))}]</span>`);
        }
      },
    },
    { decodeEntities: true, lowerCaseTags: true, lowerCaseAttributeNames: true },
  );
  const cut = feedBounded(parser, html, () => depth > nesting);
  return { html: out.join(''), remoteImages: [...remoteImages], cut };
}

function placeholder(what: string, alt: string | undefined): string {
  const label = alt !== undefined && alt.trim() !== '' ? `${what} “${shownUrl(alt)}”` : what;
  return `<span class="nqq-blocked">[${escapeHtml(label)}]</span>`;
}

function image(attribs: Record<string, string>, options: SanitizeOptions, remote: Set<string>, budget: { total: number }): string {
  const src = (attribs.src ?? '').trim();
  const alt = attribs.alt;
  const keep = (s: string) => `<img src="${escapeHtml(s)}"${alt !== undefined ? ` alt="${escapeHtml(alt)}"` : ''}${dims(attribs)}>`;
  if (/^cid:/i.test(src)) {
    let id = src.slice(4);
    try {
      id = decodeURIComponent(id);
    } catch {
      // A malformed %-escape: the id as written.
    }
    const data = options.cid?.(id);
    if (data !== undefined && data.length <= budget.total) {
      budget.total -= data.length;
      return keep(data);
    }
    return placeholder('inline image not shown', alt);
  }
  if (/^data:/i.test(src)) {
    const compact = src.replace(/\s+/g, '');
    if (IMAGE_DATA.test(compact) && compact.length <= budget.total) {
      budget.total -= compact.length;
      return keep(compact);
    }
    return placeholder('embedded image not shown', alt);
  }
  if (src === '') return placeholder('image', alt);
  if (REMOTE.test(src)) {
    remote.add(src);
    if (options.remote) return keep(src);
    return placeholder(`remote image: ${shownUrl(src)}`, alt);
  }
  // Relative or of another scheme: nothing a mail can point at (a relative one would be the console's).
  return placeholder(`image not shown: ${shownUrl(src)}`, alt);
}

function dims(attribs: Record<string, string>): string {
  let s = '';
  for (const k of ['width', 'height']) {
    const v = attribs[k];
    if (v !== undefined && /^\d{1,5}%?$/.test(v.trim())) s += ` ${k}="${v.trim()}"`;
  }
  return s;
}

/** Sanitize the HTML of a mail (already decoded to text). */
export function sanitizeMailHtml(html: string, options: SanitizeOptions = {}, imageBytes = 4 * 1024 * 1024): SanitizedHtml {
  const budget = { total: Math.ceil((imageBytes * 4) / 3) + 64 };
  const prepared = prepare(html, options, budget);
  const remote = options.remote === true;
  const body = sanitize(prepared.html, {
    allowedTags: TAGS,
    allowedAttributes: ATTRIBUTES,
    allowedClasses: CLASSES,
    allowedStyles: {},
    parseStyleAttributes: false,
    allowedSchemes: [],
    allowedSchemesByTag: { img: remote ? ['data', 'http', 'https'] : ['data'] },
    allowedSchemesAppliedToAttributes: ['href', 'src', 'cite', 'action', 'formaction', 'background', 'poster', 'srcset', 'longdesc', 'lowsrc', 'dynsrc', 'xlink:href'],
    allowProtocolRelative: remote,
    allowedIframeHostnames: [],
    allowVulnerableTags: false,
    disallowedTagsMode: 'discard',
    nonTextTags: NON_TEXT,
    nestingLimit: (options.nesting ?? HTML_NESTING) + 10,
    enforceHtmlBoundary: false,
    transformTags: {
      // A second look at every image the sanitizer itself parsed: only what the pass above wrote may stay.
      img: (tagName, attribs) => {
        const src = attribs.src ?? '';
        if (IMAGE_DATA.test(src) || (remote && REMOTE.test(src))) return { tagName, attribs };
        return { tagName: 'span', attribs: { class: 'nqq-blocked' }, text: '[image]' };
      },
      // Links never carry an address out of the pass above; one the sanitizer parses differently loses it here.
      a: (tagName, attribs) => ({ tagName, attribs: attribs.class === 'nqq-link' ? { class: 'nqq-link' } : ({} as Record<string, string>) }),
    },
  });
  return { body, remoteImages: prepared.remoteImages, cut: prepared.cut };
}

/** A complete document around a sanitized body: UTF-8, its own policy, no referrer, the preview's stylesheet. */
export function previewDocument(body: string, remote = false): string {
  return [
    '<!DOCTYPE html>',
    '<html><head><meta charset="utf-8">',
    `<meta http-equiv="Content-Security-Policy" content="${escapeHtml(previewCsp(remote))}">`,
    '<meta name="referrer" content="no-referrer">',
    `<style>${PREVIEW_STYLE}</style>`,
    '</head><body>',
    body,
    '</body></html>',
  ].join('\n');
}
