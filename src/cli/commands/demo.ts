// `nqqueue demo`: sample messages through the real pipeline on an embedded default configuration, with a
// local queue sink in place of qmail-queue. No daemons needed. Prints what happened to each message.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { DirectorySink } from '../../delivery/qmail-queue.js';
import { MemoryMessage } from '../../intake/message.js';
import { makeLogger, parseDebugLevel } from '../../log.js';
import { toEnvelope } from '../../qmail/envelope.js';
import { processJob } from '../../queue/process.js';
import { clientFrom, heloFrom, makeServices, readSettings } from '../../queue/services.js';
import { parseCommand } from '../args.js';
import { smtpReply } from '../report.js';

export const USAGE = `usage: nqqueue demo [--keep]
  Runs sample messages through the real pipeline on an embedded configuration (a local queue sink in
  place of qmail-queue; no daemons needed) and prints what happened to each. Touches nothing of the
  installation.
  --keep            keep the queue sink's files and print where they are
  -h, --help        this text
`;

const GENERAL = `# general.cfb: run once per message, line chosen by the (local) sender, else the fallback
:black=spammer@bad.example,@spam.example;attach=.exe:.vbs:.scr;header=Subject:/lottery|winner/i
`;

const PER_USER = (tagger: string) => `# nqqueue.cfb: per-user chains, line chosen by the recipient
bob@example.org:black=@partner.example
carol@example.com:exec=${tagger}
/.*-noscan@example\\.com/:
example.com:header=X-Priority:/^1/
`;

const TAGGER = `#!/bin/sh
# An exec plugin: reads the message on stdin, answers with headers to add.
cat >/dev/null
printf 'X-Demo-Filter: checked for %s\\n' "$NQQ_RECIPIENT"
exit 0
`;

interface Sample {
  title: string;
  from: string;
  to: string[];
  message: string;
}

function mail(headers: string, body: string): string {
  return `Received: from client.example (HELO client.example) (192.0.2.10)\n  by mx.example.com with SMTP; 26 Nov 2026 12:00:00 -0000\n${headers}\n\n${body}\n`;
}

const ATTACHMENT = `MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

--outer
Content-Type: text/plain

See the invoice.
--outer
Content-Type: application/octet-stream
Content-Disposition: attachment; filename*=utf-8''invoice%20%E2%82%AC.exe
Content-Transfer-Encoding: base64

TVqQAAMAAAAEAAAA//8AALgAAAAAAAAAQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
--outer--`;

const SAMPLES: Sample[] = [
  {
    title: 'a clean message to two local recipients and one remote',
    from: 'dave@client.example',
    to: ['alice@example.com', 'carol@example.com', 'erin@elsewhere.example'],
    message: mail('From: dave@client.example\nTo: alice@example.com, carol@example.com\nSubject: lunch', 'Lunch at noon?'),
  },
  {
    title: 'a message from a blacklisted sender',
    from: 'spammer@bad.example',
    to: ['alice@example.com'],
    message: mail('From: spammer@bad.example\nSubject: hello', 'Buy now.'),
  },
  {
    title: 'an .exe attachment with an RFC 2231 encoded name',
    from: 'dave@client.example',
    to: ['alice@example.com'],
    message: mail(`From: dave@client.example\nSubject: invoice\n${ATTACHMENT.split('\n\n')[0]}`, ATTACHMENT.split('\n\n').slice(1).join('\n\n')),
  },
  {
    title: 'a subject the header rule refuses',
    from: 'dave@client.example',
    to: ['alice@example.com'],
    message: mail('From: dave@client.example\nSubject: You are a lottery WINNER', 'Claim now.'),
  },
  {
    title: 'per-user verdicts: bob refuses the partner domain, carol tags, alice accepts',
    from: 'news@partner.example',
    to: ['bob@example.org', 'carol@example.com', 'alice@example.com'],
    message: mail('From: news@partner.example\nSubject: newsletter', 'News.'),
  },
  {
    title: 'every recipient refuses: the sender learns why',
    from: 'news@partner.example',
    to: ['bob@example.org'],
    message: mail('From: news@partner.example\nSubject: newsletter', 'News.'),
  },
  {
    title: 'a bounce (empty sender) is accepted',
    from: '',
    to: ['alice@example.com'],
    message: mail('From: MAILER-DAEMON@elsewhere.example\nSubject: failure notice', 'Your message could not be delivered.'),
  },
];

export async function run(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const parsed = parseCommand('demo', USAGE, args, { keep: { type: 'boolean' } });
  if (typeof parsed === 'number') return parsed;
  const keep = parsed.values.keep === true;
  const root = mkdtempSync(join(tmpdir(), 'nqqueue-demo-'));
  const control = join(root, 'control');
  const out: string[] = [];
  try {
    mkdirSync(control, { mode: 0o700 });
    const tagger = join(root, 'tagger');
    writeFileSync(tagger, TAGGER, { mode: 0o755 });
    writeFileSync(join(control, 'rcpthosts'), 'example.com\nexample.org\n');
    writeFileSync(join(control, 'me'), 'mx.example.com\n');
    writeFileSync(join(control, 'general.cfb'), GENERAL);
    writeFileSync(join(control, 'nqqueue.cfb'), PER_USER(tagger));
    const paths = { controlDir: control, home: join(root, 'home'), qmailQueue: '/nonexistent' };
    const sink = new DirectorySink(join(root, 'queue'));
    const services = makeServices(paths, readSettings(paths), undefined, sink);
    const logLines: string[] = [];
    const logger = makeLogger(parseDebugLevel(env.NQQUEUE_DEBUG), 'nqqueue:', (t) => logLines.push(t.trimEnd()));

    out.push(`NQqueue demo: ${SAMPLES.length} messages through the real pipeline`);
    out.push(`configuration in ${control}:`);
    for (const [name, text] of [['general.cfb', GENERAL], ['nqqueue.cfb', PER_USER(tagger)]] as const) {
      for (const l of text.trimEnd().split('\n')) out.push(`  ${name}: ${l}`);
    }
    out.push('');
    for (const [i, s] of SAMPLES.entries()) {
      const before = sink.deliveries.length;
      const message = new MemoryMessage(Buffer.from(s.message));
      const envelope = toEnvelope({ sender: Buffer.from(s.from), recipients: s.to.map((t) => Buffer.from(t)) });
      const client = clientFrom({ TCPREMOTEIP: '192.0.2.10', PROTO: 'TCP' }, heloFrom(await message.head()));
      const result = await processJob({ message, envelope, client, services, logger });
      out.push(`${i + 1}. ${s.title}`);
      out.push(`   from <${s.from}> to ${s.to.map((t) => `<${t}>`).join(' ')}`);
      out.push(`   SMTP answer: ${smtpReply(result.exit, result.refusal)}`);
      const fresh = sink.deliveries.slice(before);
      for (const d of fresh) {
        const rcpts = d.envelope
          .toString('utf8')
          .split('\0')
          .filter((x) => x.startsWith('T'))
          .map((x) => `<${x.slice(1)}>`);
        out.push(`   queued ${d.message.length} bytes for ${rcpts.join(' ')}:`);
        const head = d.message.toString('utf8').split('\n\n', 1)[0]!.split('\n');
        for (const h of head.filter((l) => /^(Received: by|X-Demo|\s)/.test(l) && !/^\s+by mx/.test(l))) out.push(`     | ${h}`);
      }
      if (fresh.length === 0 && result.exit === 0) out.push('   nothing queued');
      logger.line({ ...result.fields, exit: result.exit });
      for (const l of logLines.splice(0)) out.push(`   log: ${l}`);
      out.push('');
    }
    out.push(keep ? `queue sink kept in ${join(root, 'queue')}` : 'done (run with --keep to keep the queued files)');
    process.stdout.write(`${out.join('\n')}\n`);
    return 0;
  } finally {
    if (!keep) rmSync(root, { recursive: true, force: true });
  }
}
