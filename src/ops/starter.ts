// The starter configuration `nqqueue init` writes: general.cfb (clamav for every message), nqqueue.cfb
// (SpamAssassin per recipient, spam kept in the quarantine) and nqqueue.conf (the backends found running;
// the others commented out, saying so). Pure text from what was found, so etc/examples/ is made from the
// same function (scripts/examples.js) and a test keeps the two equal.

import { visible } from '../text/visible.js';

/** One backend as `nqqueue init` found it. */
export interface Found {
  /** The address to write: the one that answered, else the usual one. */
  readonly address: string;
  readonly answered: boolean;
  /** Why it did not answer (when it did not). */
  readonly why?: string;
  /** Where the address came from, when not the usual place (e.g. `LocalSocket in /etc/clamav/clamd.conf`). */
  readonly source?: string;
}

export interface Backends {
  readonly clamd: Found;
  readonly spamd: Found;
  readonly rspamd: Found;
}

/** The usual addresses (the plugins' own defaults, README "Settings"). */
export const USUAL = { clamd: '/run/clamav/clamd.ctl', spamd: '127.0.0.1:783', rspamd: 'http://127.0.0.1:11333' } as const;

/** The files, in the order they are written. */
export const STARTER_FILES = ['general.cfb', 'nqqueue.cfb', 'nqqueue.conf'] as const;
export type StarterFile = (typeof STARTER_FILES)[number];

const GENERAL = `# general.cfb: the general chain, run once per message before anything per recipient
# (README, "Routing files"). Written by \`nqqueue init\`; check every change with \`nqqueue check-config\`.
#
# Each line: PATTERN:PLUGIN[=PARAMS][;PLUGIN[=PARAMS]]... The line is chosen by the sender only when the
# sender is local and the submission trusted (RELAYCLIENT, SMTP AUTH, local injection); any other message
# gets the fallback line, the one with an empty pattern.
#
# More to put on the fallback line, for instance (one line only: edit the one below):
#   :black=spammer@bad.example,@spam.example;attach=.exe:.vbs:.scr:.pif;clamav
#
# The fallback line: clamd scans every message ([clamav] in nqqueue.conf says where it listens).
# A virus refuses the message; clamd down or too slow defers it: mail is never delivered unscanned.
:clamav
`;

const PER_USER = `# nqqueue.cfb: the per-user chains, run for every local recipient (rcpthosts, morercpthosts.cdb), all
# recipients at the same time (README, "Routing files"). Written by \`nqqueue init\`; check every change
# with \`nqqueue check-config\`. A file <domain>.cfb, when there is one, is used for that domain instead.
#
# The line is chosen by the recipient: the exact address, else the first /regex/ matching it, else the
# address it extends (alice-lists@ -> alice@), else its domain, else the fallback line (empty pattern).
# For instance:
#   postmaster@example.com:
#   example.com:spamassassin=pass,hits=4;quarantine=spamassassin
#
# With rspamd instead of SpamAssassin ([rspamd] in nqqueue.conf), the fallback line would be:
#   :rspamd=pass;quarantine=rspamd
#
# The fallback line: spamd scores each copy with its recipient's own preferences (User: the recipient)
# and tags it with its X-Spam-* fields; spam is kept in the quarantine instead of being delivered
# ($NQQUEUE_HOME/quarantine: \`nqqueue quarantine list\`, \`nqqueue quarantine release ID\`).
# spamd down defers the message: it is never delivered unscanned.
:spamassassin=pass;quarantine=spamassassin
`;

function settings(b: Backends): string {
  const out = [
    '# nqqueue.conf: NQqueue\'s settings (README, "Settings"). Written by `nqqueue init`; check every change',
    '# with `nqqueue check-config`, and the backends with `nqqueue check-config --probe`.',
    '#',
    '# `key = value` lines; `[plugin]` starts that plugin\'s section; `#` starts a comment line. Every key',
    '# has a default: the global ones below are shown at theirs (they must come before any section).',
    '#',
    '# deadline = 240s',
    '# timeout = 60s',
    '# onerror = tempfail',
    '# concurrency = auto',
    '# quarantine_expire = 30d',
    '# flush_interval = 5m',
    '',
  ];
  const section = (name: string, key: string, found: Found, uses: string, other: string) => {
    // What came from outside (a clamd.conf, an error text) stays on its comment line.
    const f = { ...found, address: visible(found.address), why: found.why && visible(found.why), source: found.source && visible(found.source) };
    out.push(`# ${uses}`);
    if (f.answered) {
      out.push(`# It answered at ${f.address}${f.source ? ` (${f.source})` : ''} when \`nqqueue init\` ran.`);
      out.push(`[${name}]`, `${key} = ${f.address}`, '');
      return;
    }
    out.push(`# It did not answer at ${f.address}${f.source ? ` (${f.source})` : ''} when \`nqqueue init\` ran`);
    if (f.why) out.push(`# (${f.why}).`);
    out.push(`# ${other} Start it, then uncomment these lines with its address:`);
    out.push(`# [${name}]`, `# ${key} = ${f.address}`, '');
  };
  section(
    'clamav',
    b.clamd.address.startsWith('/') ? 'socket' : 'host',
    b.clamd,
    'clamd (its LocalSocket, or TCPAddr:TCPSocket as host = ...): general.cfb scans every message with it.',
    'Until it answers, every message is deferred.',
  );
  section('spamassassin', b.spamd.address.startsWith('/') ? 'socket' : 'host', b.spamd, 'spamd (its --listen address): nqqueue.cfb asks it for every local recipient.', 'Until it answers, mail for local recipients is deferred.');
  section('rspamd', 'url', b.rspamd, 'rspamd (its normal worker): not used by nqqueue.cfb as written (see the rspamd line there).', 'Nothing needs it yet.');
  return `${out.join('\n').trimEnd()}\n`;
}

/** The text of each starter file for what was found. */
export function starterFiles(b: Backends): Record<StarterFile, string> {
  return { 'general.cfb': GENERAL, 'nqqueue.cfb': PER_USER, 'nqqueue.conf': settings(b) };
}

/**
 * What etc/examples/ holds: the files `nqqueue init` writes on a host where clamd and spamd answer at
 * their usual places and rspamd is not running.
 */
export const EXAMPLE_BACKENDS: Backends = {
  clamd: { address: USUAL.clamd, answered: true },
  spamd: { address: USUAL.spamd, answered: true },
  rspamd: { address: USUAL.rspamd, answered: false, why: 'connection refused' },
};
