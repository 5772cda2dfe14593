// A plain-text rendering of an HTML mail, for mail that has no text/plain part: block elements as
// line breaks, list items as "- ", links as "text <address>", images as "[image: alt]", and nothing of
// what is not text for a reader (scripts, styles, the head). Bounded: it stops at `max` characters.

import { Parser } from 'htmlparser2';

import { feedBounded, VOID_ELEMENTS } from './html-feed.js';

const SKIP = new Set(['script', 'style', 'head', 'title', 'template', 'noscript', 'svg', 'math', 'xmp', 'iframe', 'object', 'select', 'textarea', 'noembed', 'noframes']);
const BLOCK = new Set([
  'address', 'article', 'aside', 'blockquote', 'body', 'caption', 'center', 'dd', 'div', 'dl', 'dt', 'figcaption', 'figure', 'footer',
  'form', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'header', 'hr', 'html', 'li', 'main', 'nav', 'ol', 'p', 'pre', 'section', 'table', 'tbody',
  'td', 'tfoot', 'th', 'thead', 'tr', 'ul',
]);

export interface HtmlText {
  readonly text: string;
  /** The rendering stopped at the bound. */
  readonly cut: boolean;
}

export function htmlToText(html: string, max: number, nesting = 200): HtmlText {
  let depth = 0;
  // Pieces and the last character, not one growing string: endsWith on a long concatenation would
  // flatten it at every text node.
  const out: string[] = [];
  let length = 0;
  let last = '';
  let cut = false;
  let skip = 0;
  let pre = 0;
  const links: (string | undefined)[] = [];
  const linkText: string[] = [];
  const add = (s: string) => {
    if (cut || s === '') return;
    if (links.length > 0 && linkText[linkText.length - 1]!.length < 1000) linkText[linkText.length - 1] += s;
    if (length + s.length > max) {
      s = s.slice(0, max - length);
      cut = true;
    }
    out.push(s);
    length += s.length;
    if (s !== '') last = s[s.length - 1]!;
  };
  const newline = () => {
    if (length > 0 && last !== '\n') add('\n');
  };
  const parser = new Parser(
    {
      onopentag(name, attribs) {
        if (!VOID_ELEMENTS.has(name)) depth++;
        if (SKIP.has(name)) {
          skip++;
          return;
        }
        if (skip > 0) return;
        if (name === 'br') add('\n');
        else if (BLOCK.has(name)) newline();
        if (name === 'li') add('- ');
        if (name === 'td' || name === 'th') add(' ');
        if (name === 'pre') pre++;
        if (name === 'img') {
          const alt = (attribs.alt ?? '').trim();
          add(alt === '' ? '[image]' : `[image: ${alt}]`);
        }
        if (name === 'a') {
          links.push(attribs.href?.trim());
          linkText.push('');
        }
      },
      ontext(text) {
        if (skip > 0) return;
        if (pre > 0) return add(text);
        let t = text.replace(/\s+/g, ' ');
        if (length === 0 || last === '\n' || last === ' ') t = t.replace(/^ /, '');
        add(t);
      },
      onclosetag(name) {
        if (!VOID_ELEMENTS.has(name)) depth--;
        if (SKIP.has(name)) {
          if (skip > 0) skip--;
          return;
        }
        if (skip > 0) return;
        if (name === 'pre' && pre > 0) pre--;
        if (name === 'a' && links.length > 0) {
          const href = links.pop();
          const shown = linkText.pop()!.trim();
          if (href !== undefined && href !== '' && href !== shown) add(` <${href.length > 300 ? `${href.slice(0, 300)}…` : href}>`);
        }
        if (BLOCK.has(name)) newline();
        if (name === 'p' || /^h[1-6]$/.test(name)) add('\n');
      },
    },
    { decodeEntities: true, lowerCaseTags: true },
  );
  // Past its bound (length or nesting) the rendering stops reading the rest.
  if (feedBounded(parser, html, () => cut || depth > nesting) && !cut) cut = true;
  const text = out.join('').replace(/[ \t]+\n/g, '\n').replace(/\n{3,}/g, '\n\n').trim();
  return { text, cut };
}
