// makeInjectStandIn(): an executable qmail-inject stand-in (qmail-inject-stand-in.ts) in a fresh temp
// dir — it runs with any arguments, no environment and any cwd — and a reader for what it recorded.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { readInjectCalls, type InjectCall, type InjectStandInConfig, type InjectStandInOptions } from './qmail-inject-stand-in.js';
import { writeNodeScript } from './stand-in.js';

export type { InjectCall, InjectStandInOptions } from './qmail-inject-stand-in.js';

export interface InjectStandIn {
  readonly path: string;
  readonly dir: string;
  calls(): InjectCall[];
  /** Calls that queued a message (exit 0). */
  queued(): InjectCall[];
  setOptions(o: InjectStandInOptions): void;
  cleanup(): void;
}

const MODULE = new URL('./qmail-inject-stand-in.js', import.meta.url);

export function makeInjectStandIn(opts: InjectStandInOptions = {}): InjectStandIn {
  const dir = mkdtempSync(join(tmpdir(), 'nqq-inject-'));
  // A private copy: a rebuild of dist-test/ rewrites the original in place.
  const text = readFileSync(MODULE, 'utf8');
  if (!text.includes('export function runInjectStandIn(')) throw new Error(`${MODULE.pathname} looks incomplete`);
  if (/\bfrom\s+['"]\./.test(text)) throw new Error('qmail-inject-stand-in must import node: built-ins only (it is copied)');
  const copy = join(dir, 'qmail-inject-stand-in.mjs');
  writeFileSync(copy, text);
  const path = join(dir, 'qmail-inject');
  const install = (o: InjectStandInOptions) => {
    const config: InjectStandInConfig = { dir, options: structuredClone(o) };
    writeNodeScript(path, pathToFileURL(copy).href, 'runInjectStandIn', config);
  };
  install(opts);
  return {
    path,
    dir,
    calls: () => readInjectCalls(dir),
    queued: () => readInjectCalls(dir).filter((c) => c.outcome === 'queued'),
    setOptions: install,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
