// Text from a message shown line by line in a <pre>: newlines and tabs kept, every other control and
// bidirectional character made a visible escape (the page then escapes the whole as usual).

import { visible } from '../text/visible.js';

export function visibleLines(text: string): string {
  return text
    .split('\n')
    .map((l) => visible(l.replace(/\r$/, ''), { tabs: true }))
    .join('\n');
}
