// Waiting for work that may never finish (a plugin's hook): its value, or word that the time ran out.
// The work itself is not stopped (it holds no AbortSignal); the caller goes on without it.

/** `{ value }` once `work` settles with a value within `ms`, or undefined when the time ran out first. */
export async function within<T>(work: Promise<T>, ms: number): Promise<{ value: T } | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), Math.max(0, ms));
  });
  try {
    return await Promise.race([work.then((value) => ({ value })), late]);
  } finally {
    clearTimeout(timer);
  }
}
