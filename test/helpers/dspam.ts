// makeDspamStandIn(): an executable dspam stand-in (see dspam-stand-in.ts) in a directory, and the
// record of its calls. Like the qmail-queue stand-in, it imports a private copy of the compiled module.

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import type { DspamCall, DspamStandInConfig } from './dspam-stand-in.js';
import { writeNodeScript } from './stand-in.js';

export { SPAM_MARKER } from './dspam-stand-in.js';
export type { DspamCall } from './dspam-stand-in.js';

const MODULE = new URL('./dspam-stand-in.js', import.meta.url);

export interface DspamStandIn {
  /** The executable (mode 0755). */
  readonly path: string;
  calls(): DspamCall[];
}

export function makeDspamStandIn(dir: string, mode: DspamStandInConfig['mode'] = 'normal', name = 'dspam'): DspamStandIn {
  const text = readFileSync(MODULE, 'utf8');
  if (!text.includes('export async function runDspamStandIn(')) throw new Error(`${MODULE.pathname} looks incomplete (being rebuilt?)`);
  const copy = join(dir, `${name}-stand-in.mjs`);
  writeFileSync(copy, text, { mode: 0o644 });
  const log = join(dir, `${name}.calls`);
  const path = join(dir, name);
  writeNodeScript(path, pathToFileURL(copy).href, 'runDspamStandIn', { log, mode } satisfies DspamStandInConfig);
  return {
    path,
    calls: () =>
      existsSync(log)
        ? readFileSync(log, 'utf8')
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l) as DspamCall)
        : [],
  };
}
