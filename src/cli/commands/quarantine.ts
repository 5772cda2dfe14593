// `nqqueue quarantine list | show ID | release ID | delete ID`: the global quarantine store.
// `release` hands the message to qmail-queue for its original recipient only, then removes the item;
// when qmail-queue fails the item stays and the exit is 1. What a message carries is hostile text: it is
// shown terminal-safe, and its raw bytes are written only on request and never to a terminal.

import { isatty } from 'node:tty';

import { describeError } from '../../errors.js';
import { QmailQueue } from '../../delivery/qmail-queue.js';
import { prepareHome } from '../../ops/owner.js';
import { encodeEnvelope } from '../../qmail/envelope.js';
import { checkId, QuarantineError, QuarantineStore, whyText, type QuarantineMeta } from '../../quarantine/store.js';
import { pathsFrom, readSettings } from '../../queue/services.js';
import { visible, visibleJson } from '../../text/visible.js';
import { parseCommand, usageFailure, type OptionSpecs } from '../args.js';

export const USAGE = `usage: nqqueue quarantine list | show [--raw] ID | release ID | delete ID
  The global quarantine ($NQQUEUE_HOME/quarantine).
  list              one item a line: id, date, <sender>, <recipient>, why (tab-separated)
  show ID           the item's envelope, date, the results that caught it and the message's header
                    block; control characters are shown as escapes (\\x1b, \\u009b)
  show --raw ID     the stored message exactly as received, for a program (> file, | formail); refused
                    when stdout is a terminal
  release ID        hand the message to qmail-queue for its original recipient only, then remove it;
                    exit 1 and the item stays when qmail-queue fails
  delete ID         remove the item
  -h, --help        this text
`;

/** Each subcommand's options and how many operands it takes. */
const SUBCOMMANDS: Record<string, { options: OptionSpecs; operands: number }> = {
  list: { options: {}, operands: 0 },
  show: { options: { raw: { type: 'boolean' } }, operands: 1 },
  release: { options: {}, operands: 1 },
  delete: { options: {}, operands: 1 },
};

function out(text: string): void {
  process.stdout.write(`${text}\n`);
}

function writeOut(chunk: Buffer): Promise<void> {
  return new Promise((resolve, reject) => process.stdout.write(chunk, (e) => (e ? reject(e) : resolve())));
}

function err(text: string): void {
  process.stderr.write(`nqqueue quarantine: ${visible(text)}\n`);
}

function describeMeta(meta: QuarantineMeta): string[] {
  const lines = [
    `id: ${meta.id}`,
    `date: ${meta.date}`,
    `message id: ${visible(meta.messageId)}`,
    `size: ${meta.size}`,
    `sender: <${visible(meta.sender.text)}>`,
    `recipient: <${visible(meta.recipient.text)}>`,
    `why: ${visible(whyText(meta.caughtBy))}`,
  ];
  for (const c of meta.caughtBy) {
    const score = c.score === undefined ? '' : ` score ${c.score}`;
    lines.push(`caught by: ${visible(c.plugin)}${c.params ? `=${visible(c.params)}` : ''} -> ${visible(c.verdict)}${score} ${visibleJson(c.details)}`);
  }
  if (meta.note) lines.push(`note: ${visible(meta.note)}`);
  return lines;
}

export async function run(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === '--help' || sub === '-h') {
    process.stdout.write(USAGE);
    return 0;
  }
  if (sub === undefined) return usageFailure('quarantine', USAGE, 'which one: list, show, release or delete?');
  const spec = Object.hasOwn(SUBCOMMANDS, sub) ? SUBCOMMANDS[sub]! : undefined;
  if (!spec) return usageFailure('quarantine', USAGE, `unknown subcommand ${JSON.stringify(sub)}`);
  const parsed = parseCommand(`quarantine ${sub}`, USAGE, rest, spec.options, { min: spec.operands, max: spec.operands });
  if (typeof parsed === 'number') return parsed;
  const id = parsed.positionals[0];
  const raw = parsed.values.raw === true;
  if (raw && isatty(1)) {
    // Raw bytes are for programs; a terminal would act on whatever control sequences the sender put in.
    err('show --raw writes the message exactly as received: redirect stdout (> file, | formail), it is a terminal');
    return 2;
  }
  if (sub !== 'list') {
    try {
      checkId(id!);
    } catch (e) {
      err((e as Error).message);
      return 2;
    }
  }
  let paths;
  try {
    paths = pathsFrom(env);
  } catch (e) {
    err(describeError(e));
    return 1;
  }
  if (sub === 'release' || sub === 'delete') {
    // They write under the home: as its owner (root switches to it), never leaving root-owned files.
    try {
      prepareHome(paths.home, `quarantine ${sub}`, { createAsRoot: false });
    } catch (e) {
      err(describeError(e));
      return 1;
    }
  }
  const store = new QuarantineStore(paths.home);
  try {
    if (sub === 'list') {
      for (const meta of store.list((bad, why) => err(`${bad}: ${why}`))) {
        out([meta.id, visible(meta.date), `<${visible(meta.sender.text)}>`, `<${visible(meta.recipient.text)}>`, visible(whyText(meta.caughtBy))].join('\t'));
      }
      return 0;
    }
    if (sub === 'show') {
      const item = store.get(id!);
      if (raw) {
        for await (const chunk of item.message.stream()) await writeOut(chunk as Buffer);
        return 0;
      }
      const lines = describeMeta(item.meta);
      const head = (await item.message.head()).toString('utf8').replace(/\n+$/, '');
      lines.push('', ...head.split('\n').map((l) => visible(l, { tabs: true })));
      out(lines.join('\n'));
      return 0;
    }
    if (sub === 'delete') {
      store.claim(id!).remove();
      out(`deleted ${id}`);
      return 0;
    }
    // release
    const settings = readSettings(paths);
    const item = store.claim(id!);
    const envelope = encodeEnvelope(Buffer.from(item.meta.sender.base64, 'base64'), [Buffer.from(item.meta.recipient.base64, 'base64')]);
    const r = await new QmailQueue(paths.qmailQueue, settings.queueTimeoutMs).deliver(item.message, envelope);
    if (!r.ok) {
      item.restore();
      err(`${id}: ${r.reason}; the message stays in the quarantine`);
      return 1;
    }
    item.remove();
    out(`released ${id} to <${visible(item.meta.recipient.text)}>`);
    return 0;
  } catch (e) {
    err(e instanceof QuarantineError ? e.message : describeError(e));
    return 1;
  }
}
