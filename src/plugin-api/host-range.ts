// The NQqueue versions a plugin says it works with (`host: '>=0.1 <1'`): a small semver range matcher,
// so a plugin written for another NQqueue fails at load time with a clear text, not in the middle of
// a message. Ranges as npm writes them: comparators (>=, >, <=, <, =), ^ and ~, x and * wildcards,
// partial versions, space for "and", || for "or".

type Triple = readonly [number, number, number];

/** One bound: the version must be >= (or <) this triple. */
interface Bound {
  readonly op: '>=' | '<';
  readonly v: Triple;
}

const PART = '(\\d+|[xX*])';
const COMPARATOR = new RegExp(`^(>=|<=|>|<|=|\\^|~)?v?${PART}(?:\\.${PART})?(?:\\.${PART})?$`);

export class HostRangeError extends Error {}

function cmp(a: Triple, b: Triple): number {
  return a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
}

function parseVersion(version: string): Triple {
  const m = /^v?(\d+)\.(\d+)\.(\d+)/.exec(version);
  if (!m) throw new HostRangeError(`not a version: ${JSON.stringify(version)}`);
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}

/** The bounds one comparator stands for. */
function bounds(text: string): Bound[] {
  const m = COMPARATOR.exec(text);
  if (!m) throw new HostRangeError(`cannot read ${JSON.stringify(text)} (write e.g. ">=0.1 <1" or "^0.1")`);
  const op = m[1] ?? '=';
  // The given parts up to the first wildcard: "1.x" and "1" both say 1.anything.
  const given: number[] = [];
  for (const p of [m[2], m[3], m[4]]) {
    if (p === undefined || /^[xX*]$/.test(p)) break;
    given.push(Number(p));
  }
  const n = given.length;
  const low: Triple = [given[0] ?? 0, given[1] ?? 0, given[2] ?? 0];
  // The first version past everything the given parts cover: 1.2 → 1.3.0, 1 → 2.0.0.
  const past = (digits: number): Triple => {
    const t = [...low] as [number, number, number];
    t[digits - 1]! += 1;
    for (let i = digits; i < 3; i++) t[i] = 0;
    return t;
  };
  if (n === 0) return op === '<' || op === '>' ? [{ op: '<', v: [0, 0, 0] }] : [];
  switch (op) {
    case '>=':
      return [{ op: '>=', v: low }];
    case '<':
      return [{ op: '<', v: low }];
    case '>':
      return [{ op: '>=', v: n === 3 ? past(3) : past(n) }];
    case '<=':
      return [{ op: '<', v: n === 3 ? past(3) : past(n) }];
    case '^': {
      // Up to the next change of the first non-zero part given (npm's caret).
      const first = low.findIndex((x, i) => x !== 0 && i < n);
      const digits = first < 0 ? n : first + 1;
      return [{ op: '>=', v: low }, { op: '<', v: past(digits) }];
    }
    case '~':
      return [{ op: '>=', v: low }, { op: '<', v: past(n >= 2 ? 2 : 1) }];
    default:
      return [{ op: '>=', v: low }, { op: '<', v: past(n) }];
  }
}

/** Check a range's syntax; throws HostRangeError with what is wrong. */
export function parseHostRange(range: string): Bound[][] {
  if (typeof range !== 'string') throw new HostRangeError('host must be a version range string, e.g. ">=0.1 <1"');
  return range.split('||').map((alt) => {
    // ">= 0.1" is how people write it too: join an operator to the version that follows it.
    const words = alt.trim().replace(/(>=|<=|>|<|=|\^|~)\s+/g, '$1').split(/\s+/).filter((w) => w !== '');
    if (words.includes('-')) throw new HostRangeError('hyphen ranges are not supported: write ">=A <=B"');
    return words.flatMap(bounds);
  });
}

/** Whether `version` (e.g. NQqueue's own) is inside `range`. */
export function satisfies(version: string, range: string): boolean {
  const v = parseVersion(version);
  return parseHostRange(range).some((alt) => alt.every((b) => (b.op === '>=' ? cmp(v, b.v) >= 0 : cmp(v, b.v) < 0)));
}
