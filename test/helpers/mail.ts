// Reading a digest the way a mail client would, strictly: the header block (every field checked
// against RFC 5322's field syntax), the parts of a multipart/alternative, each decoded from
// quoted-printable (every encoded line checked: at most 76 characters, only printable ASCII).

import assert from 'node:assert/strict';

export interface Field {
  readonly name: string;
  readonly value: string;
}

export interface ReadMail {
  readonly fields: Field[];
  header(name: string): string[];
  readonly parts: { type: string; charset: string; encoding: string; text: string; raw: string }[];
}

function splitHead(text: string): [string, string] {
  const i = text.indexOf('\n\n');
  assert.ok(i > 0, 'a header block and a body');
  return [text.slice(0, i), text.slice(i + 2)];
}

function fieldsOf(head: string): Field[] {
  const fields: Field[] = [];
  for (const line of head.split('\n')) {
    assert.doesNotMatch(line, /\r/, 'LF line ends only (qmail adds the CR)');
    // eslint-disable-next-line no-control-regex
    assert.doesNotMatch(line, /[^\x20-\x7e\t]/, `header line of printable ASCII: ${JSON.stringify(line)}`);
    if (/^[ \t]/.test(line)) {
      assert.ok(fields.length > 0, 'no continuation before the first field');
      const last = fields.pop()!;
      fields.push({ name: last.name, value: `${last.value} ${line.trim()}` });
      continue;
    }
    const m = /^([\x21-\x39\x3b-\x7e]+):[ \t]?(.*)$/.exec(line);
    assert.ok(m, `a header field: ${JSON.stringify(line)}`);
    fields.push({ name: m[1]!, value: m[2]!.trim() });
  }
  return fields;
}

export function decodeQuotedPrintable(raw: string): Buffer {
  const bytes: number[] = [];
  const lines = raw.split('\n');
  lines.forEach((line, i) => {
    assert.ok(line.length <= 76, `quoted-printable line of ${line.length} characters`);
    assert.doesNotMatch(line, /[^\x20-\x7e\t]/, 'quoted-printable is printable ASCII');
    assert.doesNotMatch(line, /[ \t]$/, 'no trailing blank on an encoded line');
    let soft = false;
    for (let p = 0; p < line.length; p++) {
      const c = line[p]!;
      if (c === '=') {
        if (p === line.length - 1) {
          soft = true;
          break;
        }
        const hex = line.slice(p + 1, p + 3);
        assert.match(hex, /^[0-9A-F]{2}$/, `=XX in ${JSON.stringify(line)}`);
        bytes.push(parseInt(hex, 16));
        p += 2;
      } else bytes.push(c.charCodeAt(0));
    }
    if (!soft && i < lines.length - 1) bytes.push(0x0a);
  });
  return Buffer.from(bytes);
}

function param(value: string, name: string): string | undefined {
  const m = new RegExp(`;\\s*${name}="?([^";]+)"?`, 'i').exec(value);
  return m?.[1];
}

export function readMail(message: Buffer): ReadMail {
  const text = message.toString('latin1');
  const [head, body] = splitHead(text);
  const fields = fieldsOf(head);
  const header = (name: string) => fields.filter((f) => f.name.toLowerCase() === name.toLowerCase()).map((f) => f.value);
  const ct = header('Content-Type')[0] ?? '';
  assert.match(ct, /^multipart\/alternative;/i);
  const boundary = param(ct, 'boundary');
  assert.ok(boundary, 'a boundary');
  const pieces = body.split(`\n--${boundary}`);
  // The preamble, the parts, then "--" and the epilogue.
  assert.ok(pieces.length >= 3);
  assert.match(pieces[pieces.length - 1]!, /^--\n?$/, 'the closing delimiter ends the message');
  const parts = pieces.slice(1, -1).map((p) => {
    const [ph, pb] = splitHead(p.replace(/^\n/, ''));
    const pf = fieldsOf(ph);
    const get = (n: string) => pf.find((f) => f.name.toLowerCase() === n)?.value ?? '';
    const type = get('content-type');
    const encoding = get('content-transfer-encoding').toLowerCase();
    assert.equal(encoding, 'quoted-printable');
    const charset = (param(type, 'charset') ?? '').toLowerCase();
    return { type: type.split(';')[0]!.trim().toLowerCase(), charset, encoding, text: decodeQuotedPrintable(pb).toString('utf8'), raw: pb };
  });
  return { fields, header, parts };
}
