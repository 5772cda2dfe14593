// Which routing line applies: general.cfb by the sender, and per recipient the first of $NQQFILE.cfb,
// <domain>.cfb, nqqueue.cfb that exists. Nothing from an address becomes a path unless it is a plain
// domain name.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { NqqError } from '../errors.js';
import { danglingLink } from './dangling.js';
import { parseCfb, type CfbFile, type CfbLine, type CfbMatch, type CfbOptions } from './cfb.js';

const FILE_NAME = /^[a-z0-9_-][a-z0-9_.-]*$/i;
const DOMAIN_FILE = /^[a-z0-9_-]+(\.[a-z0-9_-]+)*$/;

export interface Routing {
  readonly controlDir: string;
  /**
   * The general line for this sender. `bySender`: whether the sender chooses it (a local sender on a
   * trusted submission); otherwise the fallback line applies.
   */
  general(sender: string, bySender: boolean): CfbLine | undefined;
  /** The same, with the rule that chose the line (for explain). */
  generalMatch(sender: string, bySender: boolean): CfbMatch | undefined;
  /** The per-user file that applies to a recipient, or undefined when none of them exists. */
  userFile(recipient: string, domain: string): CfbFile | undefined;
  /** The per-user line for a local recipient. */
  user(recipient: string, domain: string): CfbLine | undefined;
  /** Every file read so far (for check-config and explain). */
  files(): readonly CfbFile[];
}

export function configError(file: CfbFile): NqqError {
  const p = file.problems[0]!;
  return new NqqError('NQQ_ERR_CONFIG', `${p.file}:${p.line}: ${p.message}`);
}

/** Read a .cfb file; undefined when it does not exist. Other read errors are configuration errors. */
export function readCfb(path: string, options: CfbOptions = {}): CfbFile | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      const broken = danglingLink(path);
      if (broken) throw new NqqError('NQQ_ERR_CONFIG', broken);
      return undefined;
    }
    throw new NqqError('NQQ_ERR_CONFIG', `${path}: cannot read: ${(err as Error).message}`);
  }
  return parseCfb(text, path, options);
}

export function makeRouting(controlDir: string, nqqfile: string | undefined, options: CfbOptions = {}): Routing {
  const cache = new Map<string, CfbFile | undefined>();
  const get = (name: string): CfbFile | undefined => {
    if (!cache.has(name)) cache.set(name, readCfb(join(controlDir, `${name}.cfb`), options));
    return cache.get(name);
  };
  // A broken file is an error wherever it is consulted: a mistyped line must never mean "no scanning".
  const checked = (f: CfbFile | undefined): CfbFile | undefined => {
    if (f && f.problems.length > 0) throw configError(f);
    return f;
  };
  if (nqqfile !== undefined && nqqfile !== '' && !FILE_NAME.test(nqqfile)) {
    throw new NqqError('NQQ_ERR_CONFIG', `NQQFILE ${JSON.stringify(nqqfile)} is not a plain file name`);
  }
  const candidates = (domain: string): string[] => {
    const names: string[] = [];
    if (nqqfile) names.push(nqqfile);
    if (domain !== '' && DOMAIN_FILE.test(domain) && domain !== 'general' && domain !== 'nqqueue') names.push(domain);
    names.push('nqqueue');
    return names;
  };
  const routing: Routing = {
    controlDir,
    general(sender, bySender) {
      return routing.generalMatch(sender, bySender)?.line;
    },
    generalMatch(sender, bySender) {
      const f = checked(get('general'));
      if (!f) return undefined;
      if (bySender) return f.match(sender);
      return f.fallback ? { line: f.fallback, rule: 'fallback' } : undefined;
    },
    userFile(_recipient, domain) {
      for (const name of candidates(domain)) {
        const f = checked(get(name));
        if (f) return f;
      }
      return undefined;
    },
    user(recipient, domain) {
      return routing.userFile(recipient, domain)?.lookup(recipient);
    },
    files() {
      return [...cache.values()].filter((f): f is CfbFile => f !== undefined);
    },
  };
  return routing;
}
