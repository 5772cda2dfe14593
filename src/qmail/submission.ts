// Is this submission trusted to choose its own general line by its sender? Anyone on the internet can
// write a local address in MAIL FROM, so a local sender chooses only when qmail itself vouches for the
// client: RELAYCLIENT set (even empty: qmail-smtpd relays for it), an authenticated user
// (SMTPAUTHUSER / AUTHUSER, set by the SMTP AUTH patches), or no TCPREMOTEIP at all (local injection:
// qmail-inject, sendmail).

/** Whether the submission is trusted, and the rule that said so (for explain and the log). */
export interface SubmissionTrust {
  readonly trusted: boolean;
  readonly rule: string;
}

export function submissionTrust(env: Readonly<Record<string, string | undefined>>): SubmissionTrust {
  if (env.RELAYCLIENT !== undefined) return { trusted: true, rule: 'RELAYCLIENT is set (a relay client)' };
  for (const name of ['SMTPAUTHUSER', 'AUTHUSER'] as const) {
    const user = env[name];
    if (user !== undefined && user !== '') return { trusted: true, rule: `${name} is set (an authenticated client)` };
  }
  if (env.TCPREMOTEIP === undefined) return { trusted: true, rule: 'TCPREMOTEIP is unset (local injection)' };
  return { trusted: false, rule: `TCPREMOTEIP=${env.TCPREMOTEIP} without RELAYCLIENT, SMTPAUTHUSER or AUTHUSER (not a trusted submission)` };
}
