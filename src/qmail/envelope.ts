// The qmail-queue envelope: F<sender>\0 T<rcpt>\0 ... \0 — an incremental parser on Buffers, and the encoder.

import { NqqError } from '../errors.js';
import type { Address, Envelope } from '../pipeline/types.js';

/** qmail-queue refuses an address of this many bytes or more (exit 11). */
export const ADDRESS_LIMIT = 1003;

const NUL = 0;
const F = 0x46;
const T = 0x54;

/**
 * Parses an envelope fed in arbitrary pieces. Errors are raised as soon as the bytes show them, in
 * the order qmail-queue would find them: the format (91), an address too long (11), a control
 * character in an address (91), too many recipients; `end()` raises 54 when the final \0 never came.
 */
export class EnvelopeParser {
  private readonly addrs: Buffer[] = [];
  private current: Buffer[] = [];
  private currentLen = 0;
  /** 'type' = expecting F/T or the final \0; 'addr' = inside an address; 'done' = final \0 seen. */
  private state: 'type' | 'addr' | 'done' = 'type';
  private count = 0;

  constructor(private readonly maxRecipients = 10_000) {}

  push(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.state === 'done') {
        throw new NqqError('NQQ_ERR_ENVELOPE_FORMAT', 'bytes after the final \\0 of the envelope');
      }
      if (this.state === 'type') {
        const b = chunk[i++]!;
        if (this.count === 0) {
          if (b !== F) throw new NqqError('NQQ_ERR_ENVELOPE_FORMAT', 'envelope does not start with F');
        } else if (b === NUL) {
          this.state = 'done';
          continue;
        } else if (b !== T) {
          throw new NqqError('NQQ_ERR_ENVELOPE_FORMAT', 'envelope record does not start with T');
        } else if (this.count > this.maxRecipients) {
          throw new NqqError('NQQ_ERR_TOO_MANY_RECIPIENTS', `more than ${this.maxRecipients} recipients`);
        }
        this.state = 'addr';
        continue;
      }
      // Inside an address: scan to the next NUL, checking each byte.
      const end = chunk.indexOf(NUL, i);
      const stop = end < 0 ? chunk.length : end;
      for (let j = i; j < stop; j++) {
        const b = chunk[j]!;
        if (b < 0x20 || b === 0x7f) {
          throw new NqqError('NQQ_ERR_ENVELOPE_FORMAT', 'control character in an envelope address');
        }
      }
      this.currentLen += stop - i;
      if (this.currentLen >= ADDRESS_LIMIT) {
        throw new NqqError('NQQ_ERR_ADDRESS_TOO_LONG', `envelope address of ${ADDRESS_LIMIT} bytes or more`);
      }
      if (stop > i) this.current.push(chunk.subarray(i, stop));
      if (end < 0) return;
      this.addrs.push(this.current.length === 1 ? Buffer.from(this.current[0]!) : Buffer.concat(this.current));
      this.current = [];
      this.currentLen = 0;
      this.count++;
      this.state = 'type';
      i = end + 1;
    }
  }

  /** The envelope is complete: its final \0 has been read. */
  get complete(): boolean {
    return this.state === 'done';
  }

  /** Call at EOF. Returns sender and recipients as raw bytes. */
  end(): { sender: Buffer; recipients: Buffer[] } {
    if (this.state !== 'done') {
      throw new NqqError('NQQ_ERR_TRUNCATED_ENVELOPE', 'envelope ended before its final \\0');
    }
    return { sender: this.addrs[0]!, recipients: this.addrs.slice(1) };
  }
}

/** Parse a whole envelope in one go (tests, spool files). */
export function parseEnvelope(bytes: Buffer, maxRecipients?: number): { sender: Buffer; recipients: Buffer[] } {
  const p = new EnvelopeParser(maxRecipients);
  p.push(bytes);
  return p.end();
}

/** Encode an envelope the way qmail-queue reads it. */
export function encodeEnvelope(sender: Buffer, recipients: readonly Buffer[]): Buffer {
  const parts: Buffer[] = [Buffer.from('F'), sender, Buffer.alloc(1)];
  for (const r of recipients) parts.push(Buffer.from('T'), r, Buffer.alloc(1));
  parts.push(Buffer.alloc(1));
  return Buffer.concat(parts);
}

/**
 * Turn raw envelope bytes into addresses. `relayClient` (the RELAYCLIENT string qmail-smtpd appended
 * to every recipient) is stripped for matching; the raw bytes are kept for qmail-queue.
 */
export function toEnvelope(raw: { sender: Buffer; recipients: Buffer[] }, relayClient?: string): Envelope {
  return {
    sender: toAddress(raw.sender),
    recipients: raw.recipients.map((r) => toAddress(r, relayClient)),
  };
}

export function toAddress(raw: Buffer, relayClient?: string): Address {
  let text = raw.toString('utf8');
  if (relayClient && text.length > relayClient.length && text.endsWith(relayClient)) {
    text = text.slice(0, text.length - relayClient.length);
  }
  const at = text.lastIndexOf('@');
  return { raw, address: text, domain: at < 0 ? '' : text.slice(at + 1).toLowerCase() };
}
