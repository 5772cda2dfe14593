// A streaming walk over a message's MIME structure: every part's headers (nested multiparts and
// message/rfc822 included), never its body in memory. Enough to find attachment names; nothing more.

import type { Readable } from 'node:stream';

import { decodeEncodedWords, parseHeaderValue } from './words.js';

export interface MimePart {
  /** Depth of nesting (0 = the message itself). */
  readonly depth: number;
  readonly contentType: string;
  /** Decoded file name from Content-Disposition filename or Content-Type name, if any. */
  readonly filename?: string;
  readonly disposition?: string;
}

const MAX_HEADER_BYTES = 256 * 1024;
const MAX_DEPTH = 32;

/** Unfold and split a header block into [lower-case name, raw value] pairs. */
export function splitHeaders(block: string): [string, string][] {
  const out: [string, string][] = [];
  for (const line of block.split('\n')) {
    const l = line.replace(/\r$/, '');
    if (l === '') continue;
    if ((l[0] === ' ' || l[0] === '\t') && out.length > 0) {
      out[out.length - 1]![1] += ` ${l.trim()}`;
      continue;
    }
    const colon = l.indexOf(':');
    if (colon <= 0) continue;
    out.push([l.slice(0, colon).trim().toLowerCase(), l.slice(colon + 1).trim()]);
  }
  return out;
}

function partOf(headers: [string, string][], depth: number, parentDigest: boolean) {
  const get = (n: string) => headers.find(([k]) => k === n)?.[1];
  const ct = parseHeaderValue(get('content-type') ?? (parentDigest ? 'message/rfc822' : 'text/plain'));
  const cd = get('content-disposition');
  const disp = cd ? parseHeaderValue(cd) : undefined;
  const raw = disp?.params.get('filename') ?? ct.params.get('name');
  const part: MimePart = {
    depth,
    contentType: ct.value.toLowerCase(),
    filename: raw === undefined ? undefined : decodeEncodedWords(raw),
    disposition: disp?.value.toLowerCase(),
  };
  return { part, boundary: ct.params.get('boundary') };
}

/** Lines of a stream, without their "\n"; a final line without one is given too. */
async function* lines(stream: Readable): AsyncGenerator<Buffer> {
  let rest: Buffer | undefined;
  for await (const c of stream) {
    let chunk = c as Buffer;
    if (rest) {
      chunk = Buffer.concat([rest, chunk]);
      rest = undefined;
    }
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl < 0) break;
      yield chunk.subarray(start, nl);
      start = nl + 1;
    }
    if (start < chunk.length) rest = Buffer.from(chunk.subarray(start));
    // A line longer than any header we keep is body: drop what we hold of it past the limit.
    if (rest && rest.length > MAX_HEADER_BYTES) rest = rest.subarray(0, MAX_HEADER_BYTES);
  }
  if (rest) yield rest;
}

interface Frame {
  readonly boundary: string;
  readonly depth: number;
  readonly digest: boolean;
}

/** Calls `onPart` for every part, in order. */
export async function walkMime(stream: Readable, onPart: (p: MimePart) => void): Promise<void> {
  const stack: Frame[] = [];
  let inHeaders = true;
  let header: string[] = [];
  let headerBytes = 0;
  let depth = 0;
  let parentDigest = false;
  // After a message/rfc822 part's headers, its body starts with headers of its own.
  for await (const raw of lines(stream)) {
    const line = raw.length > 0 && raw[raw.length - 1] === 0x0d ? raw.subarray(0, raw.length - 1) : raw;
    if (inHeaders) {
      if (line.length === 0) {
        const { part, boundary } = partOf(splitHeaders(header.join('\n')), depth, parentDigest);
        onPart(part);
        header = [];
        headerBytes = 0;
        inHeaders = false;
        if (part.contentType.startsWith('multipart/') && boundary && stack.length < MAX_DEPTH) {
          stack.push({ boundary, depth: depth + 1, digest: part.contentType === 'multipart/digest' });
        } else if (part.contentType === 'message/rfc822' && stack.length < MAX_DEPTH) {
          inHeaders = true;
          depth++;
          parentDigest = false;
        }
        continue;
      }
      if (headerBytes < MAX_HEADER_BYTES) {
        header.push(line.toString('latin1'));
        headerBytes += line.length + 1;
      }
      continue;
    }
    if (line.length < 3 || line[0] !== 0x2d || line[1] !== 0x2d) continue;
    const text = line.toString('latin1').trimEnd();
    for (let i = stack.length - 1; i >= 0; i--) {
      const f = stack[i]!;
      if (text === `--${f.boundary}`) {
        stack.length = i + 1;
        inHeaders = true;
        depth = f.depth;
        parentDigest = f.digest;
        break;
      }
      if (text === `--${f.boundary}--`) {
        stack.length = i;
        break;
      }
    }
  }
  if (inHeaders && header.length > 0) onPart(partOf(splitHeaders(header.join('\n')), depth, parentDigest).part);
}
