// From simscan's simcontrol to NQqueue routing: the general.cfb and nqqueue.cfb lines that do what each
// simcontrol line did, and a report of every option met — how it was mapped, or why it cannot be and
// what to do. Pure: a parsed simcontrol in, file contents and report lines out.
//
// How simscan (1.4, simscan.c set_per_domain) chose its settings, which is what the mapping has to
// reproduce line by line: one set for the whole message, built by looking up the default line, then
// the sender (its domain, then the address and each extension prefix: test@, test-list@ ...), then
// each recipient the same way, in envelope order; each line found overrides the keys it sets (attach
// replaces the list, regex adds to it). NQqueue chooses a line per recipient and applies it to that
// recipient only; virus scanning (clamav) runs once per message, before any recipient.

import { compileAdminRegex } from '../config/admin-regex.js';
import { parseCfb } from '../config/cfb.js';
import type { Simcontrol, SimcontrolLine } from '../config/simcontrol.js';

/** What one simcontrol line sets, as simscan understands it. */
interface Sim {
  clam?: boolean;
  spam?: boolean;
  hits?: number;
  passthru?: boolean;
  attach?: string[];
  regex?: string[];
  spamuser?: string;
  size?: number;
}

export interface ImportFile {
  readonly name: string;
  readonly content: string;
}

export interface ImportPlan {
  /** Files to write (only those with something in them). */
  readonly files: ImportFile[];
  /** The report: one entry per simcontrol line and option, then what applies to the whole site. */
  readonly report: string[];
  /** Input problems, by line: exit 1. */
  readonly problems: { line: number; message: string }[];
}

const YESNO = new Set(['yes', 'no']);
const EXTENSION = /^\.?[a-z0-9_~$#-]+$/;

function overlay(into: Sim, from: Sim): Sim {
  const out: Sim = { ...into, ...from };
  // simscan's init_regex adds each line's patterns to those already read; attach= replaces.
  if (into.regex || from.regex) out.regex = [...(into.regex ?? []), ...(from.regex ?? [])];
  return out;
}

/** A simscan regex as a header rule: only `^Name.*REST` (simscan matched it against the line `Name: value`). */
function headerRule(re: string): { rule?: string; why?: string } {
  const m = /^\^([A-Za-z][A-Za-z0-9-]*)\.[*+](.*)$/.exec(re);
  if (!m) {
    return {
      why: 'simscan matched it against every line of the message, headers and body alike; NQqueue\'s header plugin matches one named header field: add header=NAME:/REGEX/ by hand for the header it was meant for, or use a SpamAssassin body rule or an exec plugin for the body',
    };
  }
  const rest = m[2] === '' ? '.' : m[2]!;
  if (/[;,]/.test(rest)) return { why: 'it contains ";" or ",", which end a plugin or an item on a routing line' };
  try {
    compileAdminRegex(rest, '');
  } catch (err) {
    return { why: `NQqueue's regular expressions cannot say it: ${(err as Error).message}` };
  }
  return { rule: `${m[1]}:/${rest}/` };
}

export function planImport(sc: Simcontrol, source: string): ImportPlan {
  const problems: { line: number; message: string }[] = sc.problems.map((p) => ({ ...p }));
  const report: string[] = [];
  const unit = sc.unit;
  const where = (n: number) => `${unit} ${n}`;

  // First occurrence wins: simscan's cdb_seek finds the first record of a key.
  const byPattern = new Map<string, { line: SimcontrolLine; own: Sim }>();
  const order: string[] = [];
  for (const line of sc.lines) {
    const prev = byPattern.get(line.pattern);
    if (prev) {
      problems.push({ line: line.line, message: `${line.pattern === '' ? 'a second default line' : JSON.stringify(line.pattern)}: already on ${where(prev.line.line)}, and simscan uses only that one (the first in its cdb); this one is left out` });
      continue;
    }
    const own: Sim = {};
    const bad = (message: string) => problems.push({ line: line.line, message });
    for (const { key, value: written } of line.items) {
      const value = written.toLowerCase();
      const item = `${key}=${written}`;
      switch (key) {
        case 'clam':
        case 'spam':
        case 'spam_passthru':
          if (!YESNO.has(value)) {
            bad(`${item}: simscan knows only yes and no here, and ignores anything else`);
            break;
          }
          if (key === 'clam') own.clam = value === 'yes';
          else if (key === 'spam') own.spam = value === 'yes';
          else own.passthru = value === 'yes';
          break;
        case 'spam_hits':
          if (!/^-?\d+(?:\.\d+)?$/.test(value)) bad(`${item}: not a number (simscan's atof() reads it as ${Number.parseFloat(value) || 0}, so every scanned message scoring that much was refused)`);
          else own.hits = Number(value);
          break;
        case 'attach': {
          const exts = value.split(':').filter((e) => e !== '');
          const wrong = exts.filter((e) => !EXTENSION.test(e));
          if (exts.length === 0) bad(`${item}: an empty list (simscan then refuses every message with a MIME part, as an empty name ends every file name)`);
          else if (wrong.length) bad(`${item}: ${wrong.map((w) => JSON.stringify(w)).join(', ')} cannot be an attach extension (letters, digits and _~$#- after the dot)`);
          else own.attach = exts.map((e) => (e.startsWith('.') ? e : `.${e}`));
          break;
        }
        case 'regex':
          own.regex = written.split(':').filter((r) => r !== '');
          break;
        case 'spamuser':
          if (value === '' || /\s/.test(value)) bad(`${item}: not a user name`);
          else own.spamuser = value;
          break;
        case 'size_limit':
          if (!/^[1-9]\d*$/.test(value)) bad(`${item}: not a size in bytes`);
          else own.size = Number(value);
          break;
        case 'trophie':
        case 'avira':
        case 'qmailqueue':
          break; // reported below: known to simscan, nothing in NQqueue
        default:
          bad(`${item}: not a simscan option (simscan ignores it in silence: a typo?)`);
      }
    }
    byPattern.set(line.pattern, { line, own });
    order.push(line.pattern);
  }

  const def = byPattern.get('')?.own ?? {};
  const others = order.filter((p) => p !== '');
  const attachPerUser = others.some((p) => byPattern.get(p)!.own.attach);
  const regexPerUser = others.some((p) => byPattern.get(p)!.own.regex);
  const anyClam = [...byPattern.values()].some((e) => e.own.clam === true);

  /** What simscan applied to a message from an unlisted sender to this one recipient. */
  const effective = (pattern: string): Sim => {
    let s: Sim = overlay({}, def);
    if (pattern === '') return s;
    const at = pattern.lastIndexOf('@');
    if (at < 0) return overlay(s, byPattern.get(pattern)!.own);
    const domain = pattern.slice(at + 1);
    const d = byPattern.get(domain);
    if (d) s = overlay(s, d.own);
    const local = pattern.slice(0, at).split('-');
    for (let i = 1; i <= local.length; i++) {
      const e = byPattern.get(`${local.slice(0, i).join('-')}@${domain}`);
      if (e) s = overlay(s, e.own);
    }
    return s;
  };

  const headerRules = (regexes: readonly string[] | undefined): string[] => (regexes ?? []).map((r) => headerRule(r).rule).filter((r): r is string => r !== undefined);

  const perUserChain = (s: Sim): string => {
    const chain: string[] = [];
    if (s.spam) {
      const p: string[] = [];
      if (s.hits !== undefined) p.push(`hits=${s.hits}`);
      else if (s.passthru) p.push('pass');
      if (s.spamuser) p.push(`user=${s.spamuser}`);
      if (s.size) p.push(`maxsize=${s.size}`);
      chain.push(`spamassassin${p.length ? `=${p.join(',')}` : ''}`);
    }
    if (attachPerUser && s.attach) chain.push(`attach=${s.attach.join(':')}`);
    if (regexPerUser) for (const r of headerRules(s.regex)) chain.push(`header=${r}`);
    return chain.join(';');
  };

  // nqqueue.cfb: one line per simcontrol line, the default last (the fallback).
  const cfbLines: { text: string; from: SimcontrolLine }[] = [];
  for (const p of [...others, ...(byPattern.has('') ? [''] : [])]) {
    const e = byPattern.get(p)!;
    cfbLines.push({ text: `${p}:${perUserChain(effective(p))}`, from: e.line });
  }
  // A pattern NQqueue cannot match is reported at its simcontrol line and left out.
  const checkText = cfbLines.map((l) => l.text).join('\n');
  const checked = parseCfb(checkText, 'nqqueue.cfb');
  const rejected = new Set<number>();
  for (const p of checked.problems) {
    const l = cfbLines[p.line - 1]!;
    rejected.add(p.line - 1);
    problems.push({ line: l.from.line, message: `${JSON.stringify(l.from.pattern)}: ${p.message}; this line is left out` });
  }
  const header = (what: string) => `# ${what}, written by nqqueue import-simscan from ${source}\n# (each line follows the simcontrol ${unit} it comes from; see the report)\n`;
  let perUser = header('per-recipient plugins (nqqueue.cfb)');
  cfbLines.forEach((l, i) => {
    if (rejected.has(i)) return;
    perUser += `# simcontrol ${where(l.from.line)}: ${l.from.pattern}:${l.from.items.map((it) => `${it.key}=${it.value}`).join(',')}\n${l.text}\n`;
  });

  // general.cfb: the fallback line only (simscan's sender lookups are not carried over, see below).
  const general: string[] = [];
  if (anyClam) general.push(def.size ? `clamav=maxsize=${def.size}` : 'clamav');
  if (!attachPerUser && def.attach) general.push(`attach=${def.attach.join(':')}`);
  if (!regexPerUser) for (const r of headerRules(def.regex)) general.push(`header=${r}`);

  const files: ImportFile[] = [];
  if (general.length > 0) files.push({ name: 'general.cfb', content: `${header('general plugins (general.cfb), once per message')}:${general.join(';')}\n` });
  if (cfbLines.length > rejected.size) files.push({ name: 'nqqueue.cfb', content: perUser });

  // The report, line by line and option by option.
  for (const p of order) {
    const { line, own } = byPattern.get(p)!;
    const isDefault = p === '';
    const who = isDefault ? 'the default line' : p;
    report.push(`${where(line.line)}: ${isDefault ? '(default line)' : p}`);
    const say = (item: string, text: string) => report.push(`  ${item}: ${text}`);
    for (const { key, value: written } of line.items) {
      const item = `${key}=${written}`;
      const value = written.toLowerCase();
      switch (key) {
        case 'clam':
          if (own.clam === undefined) say(item, 'not mapped (see the problem above)');
          else if (own.clam) say(item, `mapped: clamav on the fallback line of general.cfb: every message is scanned once, before any recipient${isDefault ? '' : ` (not only mail for ${p})`}`);
          else if (isDefault && anyClam) say(item, 'not mapped: another line enables clam, and NQqueue scans for viruses once per message, not per recipient: every message is scanned now');
          else if (isDefault) say(item, 'mapped: no line enables clam, so no clamav: no virus scanning, as before. To scan, add clamav to the fallback line of general.cfb');
          else say(item, `not mapped: NQqueue never skips the virus scan for a recipient (clamav is a general plugin, once per message): mail for ${p} is scanned now`);
          break;
        case 'spam':
          if (own.spam === undefined) say(item, 'not mapped (see the problem above)');
          else if (own.spam) say(item, `mapped: spamassassin on the ${isDefault ? 'fallback line' : `${p} line`} of nqqueue.cfb, asking spamd as each recipient (User: the recipient)`);
          else say(item, `mapped: no spamassassin on the ${isDefault ? 'fallback line' : `${p} line`} of nqqueue.cfb${isDefault ? '' : ` (or keep spamassassin there and run nqqueue lists import --format simscan, which allows every sender for ${p} instead)`}`);
          break;
        case 'spam_hits':
          if (own.hits === undefined) say(item, 'not mapped (see the problem above)');
          else say(item, `mapped: hits=${own.hits} on spamassassin (refused at a score of ${own.hits} or more, passed below it even when spamd calls it spam, as simscan built with --enable-spam-hits did)`);
          break;
        case 'spam_passthru':
          if (own.passthru === undefined) say(item, 'not mapped (see the problem above)');
          else if (!own.passthru) say(item, 'mapped: spam is refused (spamassassin without pass)');
          else if (effective(p).hits !== undefined) say(item, 'not mapped: spam_hits applies to this line too, and simscan built with --enable-spam-hits ignores spam_passthru (built without it, it ignores spam_hits): mapped as hits=. If your simscan passed spam through, replace hits=N by pass');
          else say(item, 'mapped: spamassassin=pass (the X-Spam-* headers are added, nothing is refused; this needs simscan built with --enable-spam-passthru and without --enable-spam-hits, else simscan refused spam: then remove pass)');
          break;
        case 'attach':
          if (!own.attach) say(item, 'not mapped (see the problem above)');
          else if (attachPerUser) say(item, `mapped: attach=${own.attach.join(':')} on the ${isDefault ? 'fallback line' : `${p} line`} of nqqueue.cfb (per recipient, because some line has its own list; mail relayed to remote recipients is no longer checked for attachments: to check it, add attach=... to the fallback line of general.cfb, which then applies to every recipient)`);
          else say(item, `mapped: attach=${own.attach.join(':')} on the fallback line of general.cfb (every message)`);
          break;
        case 'regex':
          for (const r of written.split(':').filter((x) => x !== '')) {
            const h = headerRule(r);
            const lowered = !isDefault && /[a-z]/.test(r) ? ' (simscanmk lower-cased this line and simscan matched case-sensitively, so a capital in a header name never matched there: NQqueue matches header names in any case, so this rule may start refusing mail)' : '';
            if (h.rule) say(`regex=${r}`, `mapped: header=${h.rule} on the ${regexPerUser ? `${isDefault ? 'fallback' : p} line of nqqueue.cfb` : 'fallback line of general.cfb'}${lowered}; doubtful: ^${r.slice(1).split('.')[0]} also matched longer header names that begin the same way`);
            else say(`regex=${r}`, `not mapped: ${h.why}`);
          }
          break;
        case 'spamuser':
          if (own.spamuser) say(item, `mapped: user=${own.spamuser} on spamassassin (simscan used it only for mail with one recipient; NQqueue uses it for every recipient of ${isDefault ? 'the fallback line' : p})`);
          else say(item, 'not mapped (see the problem above)');
          break;
        case 'size_limit':
          if (own.size) say(item, `mapped: maxsize=${own.size} on spamassassin${isDefault ? ' and clamav' : ` (for ${p}; clamav runs once per message, so only the default line's size_limit reaches it)`}: larger messages are not scanned, and the log says so. size_limit is not an option of simscan 1.4 itself (some packaged builds read it; simscan 1.4 ignores it)`);
          else say(item, 'not mapped (see the problem above)');
          break;
        case 'trophie':
        case 'avira':
          say(item, value === 'yes' ? `not mapped: NQqueue has no ${key} plugin; clamav does the virus scan, or run the scanner from an exec plugin (exec=/path/to/program) in general.cfb` : 'nothing to map (off)');
          break;
        case 'qmailqueue':
          say(item, `not mapped: NQqueue hands every message to one qmail-queue (NQQUEUE_QMAILQUEUE); a different program for ${who} cannot be said. To chain another qmail-queue filter, set NQQUEUE_QMAILQUEUE=${written} (for all mail)`);
          break;
        default:
          say(item, 'not mapped (see the problem above)');
      }
    }
    if (line.items.length === 0) say('(no options)', isDefault ? 'the default line sets nothing: without other lines, simscan scanned nothing' : `nothing: ${p} gets the default line's settings`);
    if (!isDefault && line.items.some((i) => ['spam', 'spam_hits', 'spam_passthru', 'attach', 'regex', 'spamuser', 'size_limit'].includes(i.key))) {
      report.push(`  several recipients: simscan applied one set of settings to the whole message, each recipient's line overriding the one before, so ${p}'s line decided for every recipient when ${p} came last in the envelope, and was overridden when it came earlier; NQqueue applies it to ${p}'s copy only, and every other recipient gets its own line`);
    }
  }
  if (!byPattern.has('')) report.push('no default line: simscan scanned nothing for senders and recipients without a line of their own; nqqueue.cfb has no fallback line either (no per-recipient plugins for them)');

  report.push('for the whole site:');
  const site = (s: string) => report.push(`  ${s}`);
  site('sender lines: simscan also applied a line when its address or domain was the sender (mail from postmaster@example.com got that line\'s settings, for every recipient). NQqueue chooses general.cfb lines by a trusted local sender only, and nqqueue.cfb lines by recipient only: no sender line is carried over');
  site('extension addresses: simscan looked up test@, test-list@ and test-list-owner@ for test-list-owner@, each overriding the one before; NQqueue takes the most specific line that exists (extension_separator, - by default), and a user line no longer inherits what it leaves out from its domain\'s line: the lines above were written with the inherited options spelled out');
  site('spamd user: simscan (--enable-spamc-user) asked spamd as the recipient only for mail with one recipient, else as its own user; NQqueue asks as each recipient, so users\' SpamAssassin preferences now apply to every copy');
  site('--enable-per-domain: a simcontrol means simscan was built with it; NQqueue has no such switch');
  site('--enable-spam-hits=N / --enable-spam-passthru: not visible in simcontrol. Lines without spam_hits were judged against the compiled-in threshold (10 by default) when simscan was built with --enable-spam-hits: NQqueue uses spamd\'s required score instead; to keep the old threshold, add hits=N to those spamassassin entries');
  site('--enable-spam-auth-user: simscan built without it skipped SpamAssassin for relay clients (RELAYCLIENT); NQqueue checks every local recipient\'s copy');
  site('--enable-received: NQqueue adds its own trace header (Received: by nqqueue ... scanners:) to every copy: nothing to configure');
  site('--enable-dropmsg / --enable-quarantinedir: not visible in simcontrol; to keep refused mail instead of refusing it, add quarantine=spamassassin (or clamav) after spamassassin=pass on the lines concerned');
  site('--enable-custom-smtp-reject: NQqueue sends its refusal text on fd 6 or fd 4 when qmail-smtpd has the patch (NQQUEUE_REJECT=auto)');
  site('ssattach: with --enable-per-domain simscan ignored control/ssattach; without it (no simcontrol) that file was the attach list: give it as attach=.a:.b on general.cfb');
  return { files, report, problems };
}
