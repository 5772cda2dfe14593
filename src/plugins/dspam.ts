// `dspam`: run `dspam --stdout --deliver=innocent,spam --user <recipient>` (no shell), the message on
// stdin; take the X-DSPAM-* fields dspam added to the header block of its output and add them to the
// message (the message itself is not replaced). `X-DSPAM-Result: Spam` is refused unless `pass`.

import { spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

import { editHeader, headerEditRefusal, headerEnd, writeMessage } from '../intake/message.js';
import { headerFields, removeFields } from '../mime/header-block.js';
import { BackendError, definePlugin, PluginConfigError } from '../plugin-api/define.js';
import { messageKey } from '../plugin-api/message-key.js';
import type { HeaderField, MessageView, Outcome } from '../pipeline/types.js';
import { plainAddress } from '../qmail/plain-address.js';
import { VERSION } from '../version.js';

export interface DspamConfig {
  readonly bin: string;
  readonly pass: boolean;
}

export const DEFAULT_BIN = '/usr/bin/dspam';
/** The header block of dspam's output may not be longer than this. */
const MAX_HEAD = 1024 * 1024;

/** dspam's classes (X-DSPAM-Result) and whether each means spam. */
const CLASSES: Readonly<Record<string, boolean>> = {
  innocent: false,
  whitelisted: false,
  spam: true,
  virus: true,
  blacklisted: true,
  blocklisted: true,
};

const X_DSPAM = (name: string): boolean => /^x-dspam-/i.test(name);

/** The X-DSPAM-* fields of a header block, folds kept as "\n\t". */
export function dspamFields(head: Buffer): HeaderField[] {
  return headerFields(head)
    .filter((f) => X_DSPAM(f.name))
    .map((f) => {
      const raw = head.subarray(f.start, f.end).toString('utf8');
      const value = raw
        .slice(f.name.length + 1)
        .replace(/\r?\n$/, '')
        .replace(/\r?\n[ \t]+/g, '\n\t')
        .replace(/^[ \t]+/, '')
        .trimEnd();
      return { name: f.name, value };
    });
}

/** What dspam added: the output's X-DSPAM-* fields less those the message already had. */
export function addedFields(input: readonly HeaderField[], output: readonly HeaderField[]): HeaderField[] {
  const had = input.map((f) => `${f.name.toLowerCase()}:${f.value}`);
  return output.filter((f) => {
    const i = had.indexOf(`${f.name.toLowerCase()}:${f.value}`);
    if (i < 0) return true;
    had.splice(i, 1);
    return false;
  });
}

/** The verdict in dspam's fields. */
export function dspamVerdict(fields: readonly HeaderField[]): { result: string; spam: boolean } {
  const result = [...fields].reverse().find((f) => f.name.toLowerCase() === 'x-dspam-result')?.value.trim();
  if (result === undefined) throw new BackendError('dspam output has no X-DSPAM-Result field');
  const spam = CLASSES[result.toLowerCase()];
  if (spam === undefined) throw new BackendError(`dspam answered an unknown result ${JSON.stringify(result.slice(0, 40))}`);
  return { result, spam };
}

function field(fields: readonly HeaderField[], name: string): string | undefined {
  return fields.find((f) => f.name.toLowerCase() === name)?.value.trim();
}

/** Run dspam; resolves with the header block of its output. */
function runDspam(bin: string, user: string, ctx: { message: MessageView; signal: AbortSignal }): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const child = spawn(bin, ['--stdout', '--deliver=innocent,spam', '--user', user], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { PATH: '/usr/local/bin:/usr/bin:/bin' },
      cwd: '/',
      signal: ctx.signal,
      killSignal: 'SIGKILL',
    });
    let head: Buffer = Buffer.alloc(0);
    let headDone = false;
    let tooLong = false;
    let stderr = '';
    child.stdout!.on('data', (c: Buffer) => {
      if (headDone) return; // the body is not needed; it is read only so dspam can finish
      head = Buffer.concat([head, c]);
      const end = headerEnd(head);
      if (end >= 0) {
        head = head.subarray(0, end);
        headDone = true;
      } else if (head.length > MAX_HEAD) {
        tooLong = true;
        headDone = true;
      }
    });
    child.stderr!.on('data', (c: Buffer) => {
      if (stderr.length < 1000) stderr += c.toString('utf8');
    });
    child.stdin!.on('error', () => {}); // dspam may exit without reading: its exit status says why
    child.stdout!.on('error', () => {});
    // Chunk by chunk from one reused buffer: a large message makes no garbage on its way to dspam.
    writeMessage(ctx.message, child.stdin!).catch(() => {});
    child.on('error', (err) => reject(new BackendError(`${bin}: ${err.message}`, { cause: err })));
    child.on('close', (code, sig) => {
      const why = stderr.trim().split('\n', 1)[0]?.slice(0, 200);
      if (sig) return reject(new BackendError(`${bin} killed by ${sig}`));
      if (code !== 0) return reject(new BackendError(`${bin} exited ${code}${why ? `: ${why}` : ''}`));
      if (tooLong) return reject(new BackendError(`${bin}: header block of its output is over ${MAX_HEAD} bytes`));
      resolve(head);
    });
  });
}

export default definePlugin<DspamConfig>({
  name: 'dspam',
  version: VERSION,
  stages: ['per-user'],
  description:
    'Run dspam --stdout --deliver=innocent,spam --user RECIPIENT (no shell; the recipient lower-cased, and only when it is a plain address: dspam makes a path of it). The X-DSPAM-* fields it added are added to the copy; X-DSPAM-Result: Spam (or Virus, Blacklisted, Blocklisted) is refused unless pass is given; dspam exiting non-zero is a failure.',
  // A spam check: an allow list entry may spare a recipient it.
  skippable: true,
  params: {
    words: ['pass'],
    wordsDoc: { pass: 'record the verdict, do not act on it: spam is neither refused nor deferred' },
    keys: {
      bin: {
        check: (v) => {
          if (!v.startsWith('/')) throw new PluginConfigError('must be an absolute path');
        },
        doc: 'the dspam program (an absolute path)',
        default: DEFAULT_BIN,
      },
    },
  },
  configure({ params, settings }) {
    const bin = params.get('bin') ?? settings.section('dspam').get('bin') ?? DEFAULT_BIN;
    if (!bin.startsWith('/')) throw new PluginConfigError(`bin=${bin}: must be an absolute path`);
    let st;
    try {
      st = statSync(bin);
    } catch (err) {
      throw new PluginConfigError(`${bin}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message} (is dspam installed? set bin=)`);
    }
    if (!st.isFile() || (st.mode & 0o111) === 0) throw new PluginConfigError(`${bin} is not an executable file`);
    return { bin, pass: params.has('pass') };
  },
  scope: (_config, recipient) => recipient,
  async run(ctx) {
    const { config } = ctx;
    const plain = plainAddress(ctx.recipient!);
    // dspam makes a directory path of the user name: only plain addresses are given to it.
    if (!plain) throw new BackendError(`recipient ${JSON.stringify(ctx.recipient)} is not a plain address: not given to dspam as a user name`);
    const user = `${plain.local}@${plain.domain}`;
    const started = performance.now();
    const output = await runDspam(config.bin, user, ctx);
    const inputHead = await ctx.message.head();
    const fields = addedFields(dspamFields(inputHead), dspamFields(output));
    const { result, spam } = dspamVerdict(fields);
    const num = (name: string) => {
      const v = Number(field(fields, name));
      return Number.isFinite(v) ? v : null;
    };
    const details = {
      result,
      confidence: num('x-dspam-confidence'),
      probability: num('x-dspam-probability'),
      signature: field(fields, 'x-dspam-signature') ?? null,
      user,
      ms: Math.round((performance.now() - started) * 10) / 10,
    };
    if (spam && !config.pass) return { verdict: 'reject', text: 'message rejected as spam by dspam (#5.7.1)', flagged: true, details };
    const outcome: Outcome = { verdict: 'accept', headers: fields, flagged: spam, details };
    // X-DSPAM-* fields the message came with (forged, or from elsewhere) do not go on with dspam's.
    // Header block only: the body is not copied.
    let stripped;
    try {
      stripped = await ctx.shared(`strip-x-dspam:${messageKey(ctx.message)}`, () => editHeader(ctx.message, (block) => removeFields(block, X_DSPAM)));
    } catch (err) {
      return headerEditRefusal(err);
    }
    if (stripped) outcome.replace = stripped;
    return outcome;
  },
});
