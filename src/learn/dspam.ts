// The dspam learner, as dspam(1) and its README say to retrain: `dspam --user USER --class=spam|innocent
// --source=error` for a message dspam classified wrongly, found by its signature (given with
// --signature=, the X-DSPAM-Signature dspam wrote on the copy); `--source=corpus` for a message dspam
// never classified (no signature): trained as a new message. A copy whose dspam result was already
// the class being taught is not an error of dspam's: there is nothing to retrain (`known`).

import { spawn } from 'node:child_process';

import type { LearnClass } from '../store/types.js';
import { LearnError, type Learner, type TeachHints, type TeachOutcome } from './learner.js';

const SPAMMY = new Set(['spam', 'virus', 'blacklisted', 'blocklisted']);

/** dspam's arguments for one teaching (no shell: an argument vector). */
export function dspamArgs(learnClass: LearnClass, user: string, hints: TeachHints): string[] | undefined {
  const cls = learnClass === 'spam' ? 'spam' : 'innocent';
  if (hints.dspamSignature !== undefined) {
    if (hints.dspamResult !== undefined && SPAMMY.has(hints.dspamResult.toLowerCase()) === (learnClass === 'spam')) return undefined;
    return ['--user', user, `--class=${cls}`, '--source=error', `--signature=${hints.dspamSignature}`];
  }
  return ['--user', user, `--class=${cls}`, '--source=corpus'];
}

export function dspamLearner(bin: string, timeoutMs: number): Learner {
  return {
    name: 'dspam',
    where: `dspam ${bin}`,
    async teach(message: Buffer, learnClass: LearnClass, user: string, hints: TeachHints): Promise<TeachOutcome> {
      // dspam makes a directory path of the user name.
      if (!/^[^\s/\\]+@[^\s/\\]+$/.test(user) || user.includes('..')) throw new LearnError(`dspam: ${JSON.stringify(user)} is not a plain address: not given to dspam as a user name`);
      const args = dspamArgs(learnClass, user, hints);
      if (!args) return 'known';
      await new Promise<void>((resolve, reject) => {
        const child = spawn(bin, args, {
          stdio: ['pipe', 'ignore', 'pipe'],
          env: { PATH: '/usr/local/bin:/usr/bin:/bin' },
          cwd: '/',
          timeout: timeoutMs,
          killSignal: 'SIGKILL',
        });
        let stderr = '';
        child.stderr!.on('data', (c: Buffer) => {
          if (stderr.length < 1000) stderr += c.toString('utf8');
        });
        child.stdin!.on('error', () => {});
        child.stdin!.end(message);
        child.on('error', (err) => reject(new LearnError(`${bin}: ${err.message}`, { cause: err })));
        child.on('close', (code, sig) => {
          const why = stderr.trim().split('\n', 1)[0]?.slice(0, 200);
          if (sig) return reject(new LearnError(`${bin} killed by ${sig}${sig === 'SIGKILL' ? ` (over ${timeoutMs} ms)` : ''}`));
          if (code !== 0) return reject(new LearnError(`${bin} exited ${code}${why ? `: ${why}` : ''}`));
          resolve();
        });
      });
      return 'learned';
    },
  };
}
