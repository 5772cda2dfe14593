// `nqqueue quarantine list | show ID | release ID | delete ID`: the global quarantine store.
// `release` hands the message to qmail-queue for its original recipient only, then removes the item;
// when qmail-queue fails the item stays and the exit is 1.

import { describeError, oneLine } from '../../errors.js';
import { QmailQueue } from '../../delivery/qmail-queue.js';
import { prepareHome } from '../../ops/owner.js';
import { encodeEnvelope } from '../../qmail/envelope.js';
import { checkId, QuarantineError, QuarantineStore, whyText, type QuarantineMeta } from '../../quarantine/store.js';
import { pathsFrom, readSettings } from '../../queue/services.js';

const USAGE = 'usage: nqqueue quarantine list | show ID | release ID | delete ID';

function out(text: string): void {
  process.stdout.write(`${text}\n`);
}

function err(text: string): void {
  process.stderr.write(`nqqueue quarantine: ${text}\n`);
}

function describeMeta(meta: QuarantineMeta): string[] {
  const lines = [
    `id: ${meta.id}`,
    `date: ${meta.date}`,
    `message id: ${oneLine(meta.messageId)}`,
    `size: ${meta.size}`,
    `sender: <${oneLine(meta.sender.text)}>`,
    `recipient: <${oneLine(meta.recipient.text)}>`,
    `why: ${oneLine(whyText(meta.caughtBy))}`,
  ];
  for (const c of meta.caughtBy) {
    const score = c.score === undefined ? '' : ` score ${c.score}`;
    lines.push(`caught by: ${c.plugin}${c.params ? `=${c.params}` : ''} -> ${c.verdict}${score} ${oneLine(JSON.stringify(c.details))}`);
  }
  if (meta.note) lines.push(`note: ${oneLine(meta.note)}`);
  return lines;
}

export async function run(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const [sub, id, ...extra] = args;
  const wantsId = sub === 'show' || sub === 'release' || sub === 'delete';
  if (sub === undefined || !(sub === 'list' || wantsId) || (wantsId ? id === undefined || extra.length > 0 : id !== undefined)) {
    err(USAGE);
    return 2;
  }
  if (wantsId) {
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
        out([meta.id, meta.date, `<${oneLine(meta.sender.text)}>`, `<${oneLine(meta.recipient.text)}>`, oneLine(whyText(meta.caughtBy))].join('\t'));
      }
      return 0;
    }
    if (sub === 'show') {
      const item = store.get(id!);
      const lines = describeMeta(item.meta);
      lines.push('', (await item.message.head()).toString('utf8').replace(/\n+$/, ''));
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
    out(`released ${id} to <${oneLine(item.meta.recipient.text)}>`);
    return 0;
  } catch (e) {
    err(e instanceof QuarantineError ? e.message : describeError(e));
    return 1;
  }
}
