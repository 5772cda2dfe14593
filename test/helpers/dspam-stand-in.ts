// A stand-in for the dspam program (dspam 3.10 is not packaged here), run as
// `dspam --stdout --deliver=innocent,spam --user USER` with the message on stdin, following dspam(1):
// it reads the whole message, needs exactly one --user, and with --stdout writes the message back
// with its X-DSPAM-* fields at the end of the header block (Result, Processed, Confidence,
// Probability, Signature); exit 0. Without a user it prints its usage on stderr and exits 1
// (EXIT_FAILURE), as dspam does. Its verdict is deterministic: a body holding `nqq-dspam-spam` is
// Spam, anything else Innocent. Each call is recorded (argv, cwd, environment) as one JSON line.
//
// Retraining, as dspam(1) and its README describe it: `--class=spam|innocent` with `--source=error`
// (a classification error: dspam finds the message by its signature — `--signature=SIG`, else the
// X-DSPAM-Signature field of the message on stdin — and no signature, or one it never issued for that
// user, fails with "Unable to find a valid signature. Aborting.", exit 1), `--source=corpus` or
// `inoculation` (a message trained as new: no signature needed). Retraining delivers nothing (no
// output), exit 0. Signatures it issued are kept in `<log>.sigs`, one JSON line each.
//
// This module is copied next to the generated executable and imported from there: node: built-ins only.

import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';

export interface DspamStandInConfig {
  /** File each call appends one JSON line to. */
  readonly log: string;
  /** normal (default), fail (storage error: exit 1), hang (never answers), noresult (no X-DSPAM-Result). */
  readonly mode?: 'normal' | 'fail' | 'hang' | 'noresult';
}

export interface DspamCall {
  readonly argv: string[];
  readonly cwd: string;
  readonly env: Record<string, string>;
  readonly user: string | null;
  readonly result: string | null;
  /** For a retraining call: what was taught, from where, and the signature it was found by. */
  readonly retrain?: { readonly class: string; readonly source: string; readonly signature: string | null };
}

export const SPAM_MARKER = 'nqq-dspam-spam';

const SYNTAX = 'Syntax: dspam [--help|--version|[--client|--daemon [--nofork]] [--debug] --mode=[toe|tum|teft|notrain|unlearn] --user [user1 user2 ... userN] [--feature=[no,wh,tb=N,sbph,noise]] [--class=[spam|innocent]] [--source=[error|corpus|inoculation]] [--profile=[PROFILE]] [--deliver=[spam,[innocent|nonspam]]] [--process|--classify] [--stdout] [--mail-from=sender-address] [--rcpt-to recipient-address(es)] [--signature=DSPAM-Signature] [passthru-arguments]]';

/** dspam's ctime(3) form of the processing time. */
function ctime(d: Date): string {
  const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const p = (n: number) => String(n).padStart(2, '0');
  return `${days[d.getDay()]} ${months[d.getMonth()]} ${String(d.getDate()).padStart(2, ' ')} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())} ${d.getFullYear()}`;
}

function readStdin(): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    process.stdin.on('data', (c: Buffer) => chunks.push(c));
    process.stdin.on('end', () => resolve(Buffer.concat(chunks)));
    process.stdin.on('error', reject);
  });
}

/** `--user` takes every following argument up to the next option (dspam accepts several users). */
function usersOf(argv: readonly string[]): string[] {
  const users: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] !== '--user') continue;
    for (let j = i + 1; j < argv.length && !argv[j]!.startsWith('--'); j++) users.push(argv[j]!);
  }
  return users;
}

export async function runDspamStandIn(config: DspamStandInConfig): Promise<void> {
  const argv = process.argv.slice(2);
  const message = await readStdin();
  const users = usersOf(argv);
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  const record = (result: string | null, retrain?: DspamCall['retrain']) =>
    appendFileSync(config.log, `${JSON.stringify({ argv, cwd: process.cwd(), env, user: users[0] ?? null, result, ...(retrain ? { retrain } : {}) } satisfies DspamCall)}\n`);
  const sigs = `${config.log}.sigs`;

  if (users.length === 0) {
    record(null);
    process.stderr.write(`dspam: Unable to determine the destination user\n${SYNTAX}\n`);
    process.exit(1);
  }
  if (config.mode === 'hang') {
    record(null);
    setInterval(() => {}, 1 << 30);
    return;
  }
  if (config.mode === 'fail') {
    record(null);
    process.stderr.write('dspam: Unable to initialize storage driver\n');
    process.exit(1);
  }
  const option = (name: string) => argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const cls = option('class');
  const source = option('source');
  if (cls !== undefined || source !== undefined) {
    if (users.length !== 1 || (cls !== 'spam' && cls !== 'innocent') || !['error', 'corpus', 'inoculation'].includes(source ?? '')) {
      record(null);
      process.stderr.write(`dspam stand-in: unexpected arguments ${JSON.stringify(argv)}\n`);
      process.exit(64);
    }
    let signature: string | null = null;
    if (source === 'error') {
      const text = message.toString('latin1');
      const head = text.slice(0, Math.max(0, text.indexOf('\n\n')));
      signature = option('signature') ?? /^X-DSPAM-Signature:[ \t]*(\S+)/im.exec(head)?.[1] ?? null;
      const issued = existsSync(sigs)
        ? readFileSync(sigs, 'utf8')
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l) as { user: string; signature: string })
        : [];
      if (signature === null || !issued.some((i) => i.user === users[0] && i.signature === signature)) {
        record(null, { class: cls, source: source!, signature });
        process.stderr.write('dspam: Unable to find a valid signature. Aborting.\n');
        process.exit(1);
      }
    }
    record(null, { class: cls, source: source!, signature });
    return;
  }
  if (users.length !== 1 || !argv.includes('--stdout') || !argv.some((a) => /^--deliver=(.*,)?innocent(,|$)/.test(a) && /^--deliver=(.*,)?spam(,|$)/.test(a))) {
    // Not how NQqueue calls it: make the test fail loudly rather than guess what dspam would do.
    record(null);
    process.stderr.write(`dspam stand-in: unexpected arguments ${JSON.stringify(argv)}\n`);
    process.exit(64);
  }

  const text = message.toString('latin1');
  const split = text.startsWith('\n') ? 0 : text.indexOf('\n\n');
  const headEnd = split < 0 ? text.length : split + 1;
  const body = text.slice(headEnd);
  const spam = body.includes(SPAM_MARKER);
  const result = spam ? 'Spam' : 'Innocent';
  const signature = createHash('sha256').update(users[0]!).update(message).digest('hex').slice(0, 24);
  const fields =
    config.mode === 'noresult'
      ? ''
      : `X-DSPAM-Result: ${result}\nX-DSPAM-Processed: ${ctime(new Date())}\nX-DSPAM-Confidence: ${spam ? '0.9899' : '0.9997'}\n` +
        `X-DSPAM-Probability: ${spam ? '1.0000' : '0.0000'}\nX-DSPAM-Signature: ${signature}\n`;
  const head = text.slice(0, headEnd);
  const sep = head === '' || head.endsWith('\n') ? '' : '\n';
  record(config.mode === 'noresult' ? null : result);
  appendFileSync(sigs, `${JSON.stringify({ user: users[0], signature, result })}\n`);
  process.stdout.write(Buffer.from(head + sep + fields + body, 'latin1'));
}
