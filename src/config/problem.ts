// A configuration problem at a file and line, and the order they are reported in.

export interface ConfigProblem {
  readonly file: string;
  /** 1-based; 0 when the problem is with the file as a whole. */
  readonly line: number;
  readonly message: string;
}

export function formatProblem(p: ConfigProblem): string {
  return `${p.file}:${p.line}: ${p.message}`;
}

/** File and line order (stable: problems of one line keep the order they were found in). */
export function sortProblems<T extends ConfigProblem>(problems: readonly T[]): T[] {
  return problems
    .map((p, i) => ({ p, i }))
    .sort((a, b) => (a.p.file < b.p.file ? -1 : a.p.file > b.p.file ? 1 : a.p.line - b.p.line || a.i - b.i))
    .map(({ p }) => p);
}
