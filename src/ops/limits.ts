// The memory limits Node.js needs, as measured (README "Limits"): qmail run scripts
// wrap qmail-smtpd in `softlimit -m`, and the QMAILQUEUE program inherits the limits. Node reserves far
// more address space than it uses, each of its threads reserves a stack of `ulimit -s` bytes, and under
// a limit it cannot meet it aborts, or hangs, before NQqueue's first line runs.
//
// bin/nqqueue refuses to start node below the START figures (it must say why: node cannot); the probe
// warns below the RECOMMENDED ones (room for a message being processed). Keep START in step with the
// table in bin/nqqueue (a test checks that they agree).

import { readFileSync } from 'node:fs';

export interface Need {
  /** RLIMIT_DATA (softlimit -d, ulimit -d), bytes. */
  readonly data: number;
  /** RLIMIT_AS (softlimit -a, ulimit -v) with no stack, bytes; each thread adds a stack on top. */
  readonly addressBase: number;
  /** How many stacks of RLIMIT_STACK size count in the address space (the main thread's and node's workers'). */
  readonly stacks: number;
}

const MB = 1024 * 1024;

/**
 * Below these node does not start at all (measured minimum with a 200-byte message, rounded down), per
 * supported Node.js line (22.13 and newer: bin/nqqueue refuses an older node before these apply).
 */
export const START: Readonly<Record<number, Need>> = {
  22: { data: 50 * MB, addressBase: 680 * MB, stacks: 5 },
  24: { data: 550 * MB, addressBase: 1000 * MB, stacks: 12 },
};

/** What to configure at least: the measured need with a 1.2 MB message, plus half again as room. */
export const RECOMMENDED: Readonly<Record<number, Need>> = {
  22: { data: 150 * MB, addressBase: 1200 * MB, stacks: 6 },
  24: { data: 1000 * MB, addressBase: 1800 * MB, stacks: 14 },
};

/** The soft limits of this process in bytes (undefined: unlimited), from /proc/self/limits. */
export interface Limits {
  readonly data: number | undefined;
  readonly address: number | undefined;
  readonly stack: number | undefined;
}

export function readLimits(text?: string): Limits {
  let t = text;
  if (t === undefined) {
    try {
      t = readFileSync('/proc/self/limits', 'utf8');
    } catch {
      return { data: undefined, address: undefined, stack: undefined };
    }
  }
  const soft = (label: string): number | undefined => {
    const m = new RegExp(`^${label}\\s+(\\S+)`, 'm').exec(t!);
    return m && /^\d+$/.test(m[1]!) ? Number(m[1]) : undefined;
  };
  return { data: soft('Max data size'), address: soft('Max address space'), stack: soft('Max stack size') };
}

function table(major: number, t: Readonly<Record<number, Need>>): Need {
  // A newer line than measured: assume the newest measured (needs have only grown).
  const known = Object.keys(t).map(Number).sort((a, b) => a - b);
  const pick = known.filter((k) => k <= major).pop() ?? known[0]!;
  return t[pick]!;
}

/** The address space needed with this stack limit (an unlimited stack gives threads 8 MiB stacks). */
export function addressNeed(need: Need, stack: number | undefined): number {
  return need.addressBase + need.stacks * (stack ?? 8 * MB);
}

const mb = (n: number) => `${Math.round(n / MB)} MB`;

/** Problems with the limits of this process for this node version, one line each with its fix. */
export function checkLimits(limits: Limits, nodeVersion: string): string[] {
  const major = Number(nodeVersion.split('.')[0]);
  const need = table(major, RECOMMENDED);
  const out: string[] = [];
  const fix = `raise it in the run script of qmail-smtpd (softlimit -d ${need.data}, not -m: see the README's limits) or use daemon mode (bin/nqqueue-qq needs little)`;
  if (limits.data !== undefined && limits.data < need.data) {
    out.push(`limits: data size (ulimit -d, softlimit -d or -m) is ${mb(limits.data)}; Node.js ${major} needs ${mb(need.data)} to handle mail; fix: ${fix}`);
  }
  if (limits.address !== undefined) {
    const want = addressNeed(need, limits.stack);
    if (limits.address < want) {
      const stack = limits.stack === undefined ? 'an unlimited' : `a ${mb(limits.stack)}`;
      out.push(
        `limits: address space (ulimit -v, softlimit -a or -m) is ${mb(limits.address)}; Node.js ${major} needs ${mb(want)} with ${stack} stack limit ` +
          `(each of its threads reserves one); fix: drop the address-space limit and use softlimit -d ${need.data} instead, or use daemon mode`,
      );
    }
  }
  return out;
}
