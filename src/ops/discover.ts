// Where the backends of a starter configuration listen, found the way an administrator would look: clamd's
// LocalSocket (or TCPAddr:TCPSocket) in its clamd.conf, else its usual socket; spamd and rspamd on their
// usual ports. Each candidate gets a short connect and the protocol's ping (check-config --probe's own).

import { readFileSync, realpathSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';

import { pingAddress } from './probe.js';
import { USUAL, type Backends, type Found } from './starter.js';

export const CLAMD_CONF = '/etc/clamav/clamd.conf';

interface Candidate {
  readonly address: string;
  readonly source?: string;
}

/** The addresses a clamd.conf gives clamd: `LocalSocket`, and `TCPAddr:TCPSocket` (127.0.0.1 when no TCPAddr). */
export function clamdConfAddresses(text: string): { socket?: string; tcp?: string } {
  const values = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(\S+)\s+(.*)$/.exec(line);
    // The first of a repeated option (TCPAddr may be given several times): the one to reach it on.
    if (m && !values.has(m[1]!)) values.set(m[1]!, m[2]!.trim().replace(/^"(.*)"$/, '$1'));
  }
  const socket = values.get('LocalSocket');
  const port = values.get('TCPSocket');
  const addr = values.get('TCPAddr');
  const host = addr === undefined || addr === '0.0.0.0' || addr === '::' ? '127.0.0.1' : addr;
  return {
    ...(socket !== undefined && isAbsolute(socket) ? { socket } : {}),
    ...(port !== undefined && /^\d+$/.test(port) ? { tcp: host.includes(':') ? `[${host}]:${port}` : `${host}:${port}` } : {}),
  };
}

/** A path as the kernel would reach it (so /var/run/x and /run/x are seen as one where /var/run -> /run). */
function canonical(path: string): string {
  try {
    return join(realpathSync(dirname(path)), path.slice(dirname(path).length + 1));
  } catch {
    return path;
  }
}

function clamdCandidates(conf: { file: string; text: string } | undefined): Candidate[] {
  const out: Candidate[] = [];
  if (conf !== undefined) {
    const found = clamdConfAddresses(conf.text);
    const file = conf.file;
    if (found.socket) out.push({ address: found.socket, source: `LocalSocket in ${file}` });
    if (found.tcp) out.push({ address: found.tcp, source: `TCPAddr:TCPSocket in ${file}` });
  }
  out.push({ address: USUAL.clamd }, { address: '/var/run/clamav/clamd.ctl' });
  const seen = new Set<string>();
  return out.filter((c) => {
    const key = c.address.startsWith('/') ? canonical(c.address) : c.address;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** A ping's failure said briefly: the address is already on the line. */
function brief(why: string | undefined, address: string): string {
  const text = why ?? 'no answer';
  if (/ECONNREFUSED/.test(text)) return 'connection refused';
  if (/ETIMEDOUT|timed out|timeout/i.test(text)) return 'no answer in time';
  return text.replace(/^cannot connect: /, '').split(`${address}: `).join('');
}

/** The first candidate that answered; else the first one, with why it did not. */
async function first(service: 'clamd' | 'spamd' | 'rspamd', candidates: Candidate[]): Promise<Found> {
  const answers = await Promise.all(candidates.map((c) => pingAddress(service, c.address)));
  const i = answers.findIndex((a) => a === undefined);
  const c = candidates[i >= 0 ? i : 0]!;
  const base = { address: c.address, ...(c.source ? { source: c.source } : {}) };
  if (i >= 0) return { ...base, answered: true };
  const also = candidates.slice(1).map((x) => x.address);
  return { ...base, answered: false, why: `${brief(answers[0], c.address)}${also.length > 0 ? `; nor at ${also.join(', ')}` : ''}` };
}

/**
 * Look for the three backends. `clamdConf` is the clamd.conf to read (`CLAMD_CONF` by default; a missing
 * default is no problem, a file that was asked for and cannot be read throws). `where` names spamd's and
 * rspamd's addresses when they are not the usual ones (init's --spamd and --rspamd).
 */
export async function discover(clamdConf: string | undefined, where: { readonly spamd?: string; readonly rspamd?: string } = {}): Promise<Backends> {
  let conf: { file: string; text: string } | undefined;
  const file = clamdConf ?? CLAMD_CONF;
  try {
    conf = { file, text: readFileSync(file, 'utf8') };
  } catch (err) {
    if (clamdConf !== undefined) throw err;
  }
  const [clamd, spamd, rspamd] = await Promise.all([
    first('clamd', clamdCandidates(conf)),
    first('spamd', [where.spamd !== undefined ? { address: where.spamd, source: '--spamd' } : { address: USUAL.spamd }]),
    first('rspamd', [where.rspamd !== undefined ? { address: where.rspamd, source: '--rspamd' } : { address: USUAL.rspamd }]),
  ]);
  return { clamd: clamd!, spamd: spamd!, rspamd: rspamd! };
}
