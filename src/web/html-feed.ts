// Feeding HTML to an htmlparser2 Parser with its open elements bounded. The parser keeps its stack of
// open elements in a way that makes each new element cost the depth (a hundred thousand nested <div>
// take tens of seconds), so a caller that counts depth stops the feed once it is too deep: small
// slices keep what one slice can add to the stack small too.

import type { Parser } from 'htmlparser2';

const SLICE = 4096;

/** Write `html` to `parser` slice by slice until `stop()` says so, then end it. Returns whether it stopped early. */
export function feedBounded(parser: Parser, html: string, stop: () => boolean): boolean {
  for (let i = 0; i < html.length; i += SLICE) {
    if (stop()) {
      parser.end();
      return true;
    }
    parser.write(html.slice(i, i + SLICE));
  }
  parser.end();
  return stop();
}

/** Elements without an end tag: they never add to the depth. */
export const VOID_ELEMENTS = new Set(['area', 'base', 'br', 'col', 'embed', 'hr', 'img', 'input', 'keygen', 'link', 'meta', 'param', 'source', 'track', 'wbr', 'image']);
