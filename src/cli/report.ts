// Human-readable accounts of what the pipeline decided: shared by `test` and `demo`. Every text that came
// from outside (addresses, plugin texts, header lines) is shown terminal-safe.

import { PrefixedMessage } from '../intake/message.js';
import type { PipelineOutcome } from '../pipeline/run.js';
import type { Result } from '../pipeline/types.js';
import { visible } from '../text/visible.js';

/** What qmail-smtpd answers for an exit code and refusal (QMAIL.md). */
export function smtpReply(exit: number, refusal?: { kind: 'permanent' | 'temporary'; text: string }): string {
  if (refusal && (exit === 31 || exit === 71)) return `${refusal.kind === 'permanent' ? '554' : '451'} ${visible(refusal.text)}`;
  switch (exit) {
    case 0:
      return '250 ok';
    case 11:
      return '554 envelope address too long for qq (#5.1.3)';
    case 31:
      return '554 mail server permanently rejected message (#5.3.0)';
    case 54:
      return '451 qq read error (#4.3.0)';
    case 71:
      return '451 mail server temporarily rejected message (#4.3.0)';
    case 81:
    case 91:
      return '451 qq internal bug (#4.3.0)';
    default:
      return exit >= 11 && exit <= 40 ? '554 qq permanent problem (#5.3.0)' : '451 qq temporary problem (#4.3.0)';
  }
}

function resultLine(r: Result): string {
  // A plugin an allow list entry spared did not run; one that may not be spared ran, and says so.
  let s = `${r.plugin}${r.params ? `=${visible(r.params)}` : ''} -> ${r.details.skipped === 'allowed' ? 'skipped' : r.verdict}`;
  if (r.score !== undefined) s += ` score ${r.score}`;
  if (r.flagged) s += ' (flagged)';
  if (r.text) s += `: ${visible(r.text)}`;
  if (r.error) s += ` [failed: ${visible(r.error)}; failure policy applied]`;
  if (typeof r.details.skip_refused === 'string') s += ` [not skipped: ${visible(r.details.skip_refused)}]`;
  if (r.headers.length) s += ` +${r.headers.length} header${r.headers.length > 1 ? 's' : ''}`;
  return `${s} (${r.ms} ms)`;
}

export function describeOutcome(o: PipelineOutcome, indent = '  '): string[] {
  const out: string[] = [];
  out.push(`${indent}general stage${o.generalLine ? ` (${visible(o.generalLine.file)}:${o.generalLine.line})` : ' (no line)'}:`);
  if (o.general.length === 0) out.push(`${indent}  (no plugins)`);
  for (const r of o.general) out.push(`${indent}  ${resultLine(r)}`);
  for (const r of o.recipients) {
    const where = r.line ? ` (${visible(r.line.file)}:${r.line.line})` : r.local ? ' (no per-user line)' : ' (remote)';
    out.push(`${indent}<${visible(r.address.address)}>${where}: ${r.fate}${r.text && r.fate !== 'deliver' ? ` - ${visible(r.text)}` : ''}`);
    for (const res of r.results) out.push(`${indent}  ${resultLine(res)}`);
  }
  return out;
}

export function describeGroups(o: PipelineOutcome, indent = '  '): string[] {
  const out: string[] = [];
  o.groups.forEach((g, i) => {
    const to = g.recipients.map((r) => `<${visible(r.address)}>`).join(' ') || '(no recipients)';
    out.push(`${indent}qmail-queue call ${i + 1}: ${g.message.size} bytes to ${to}`);
    const prefix = g.message instanceof PrefixedMessage ? g.message.prefix.toString('utf8') : '';
    for (const line of prefix.split('\n')) if (line !== '') out.push(`${indent}  | ${visible(line, { tabs: true })}`);
  });
  return out;
}
