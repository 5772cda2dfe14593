// "Did you mean": the known name closest to a misspelt one, by a small edit distance.

/** Optimal string alignment distance (Levenshtein plus adjacent transpositions). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * The candidates closest to `word` (case-insensitively), when close enough to be a likely typo: at most
 * 1 edit for short names, 2 from 5 characters on. Several when they are equally close.
 */
export function closest(word: string, candidates: Iterable<string>): string[] {
  const w = word.toLowerCase();
  const limit = w.length >= 5 ? 2 : 1;
  let best: string[] = [];
  let bestD = limit;
  for (const c of new Set(candidates)) {
    const dist = editDistance(w, c.toLowerCase());
    if (dist < bestD) {
      best = [c];
      bestD = dist;
    } else if (dist === bestD) best.push(c);
  }
  return best;
}

/** ` (did you mean "x"?)`, or '' when nothing is close; says so when only the case differs. */
export function didYouMean(word: string, candidates: Iterable<string>, show: (c: string) => string = (c) => `"${c}"`): string {
  const found = closest(word, candidates);
  if (found.length === 0) return '';
  const c = found[0]!;
  if (found.length === 1 && c !== word && c.toLowerCase() === word.toLowerCase()) return ` (did you mean ${show(c)}? names are lower-case)`;
  return ` (did you mean ${found.map(show).join(' or ')}?)`;
}
