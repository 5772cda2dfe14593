// Per-recipient fan-out: run many chains at once, never more than the concurrency bound.

import type { Settings } from '../config/settings.js';
import { DEFAULT_CONCURRENCY } from '../plugin-api/define.js';
import type { ConfiguredPlugin } from '../plugin-api/load.js';

/**
 * The fan-out bound of a message's per-user runs: the setting when it is a number; for `auto`, the
 * smallest `concurrency` the plugins of those runs declare (what their backends take at once), so a
 * slow backend is never sent more than it can take while rspamd gets a message's requests all at once.
 */
export function fanOutLimit(setting: Settings['concurrency'], chains: readonly (readonly ConfiguredPlugin[])[]): number {
  if (setting !== 'auto') return setting;
  let limit = Infinity;
  for (const plugins of chains) for (const cp of plugins) limit = Math.min(limit, cp.def.concurrency ?? DEFAULT_CONCURRENCY);
  return Number.isFinite(limit) ? limit : DEFAULT_CONCURRENCY;
}

/** Run `work` over `items`, at most `limit` at a time; rejects with the first error after all settle. */
export async function runLimited<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let firstError: unknown;
  let failed = false;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++]!;
      try {
        await work(item);
      } catch (err) {
        if (!failed) {
          failed = true;
          firstError = err;
        }
      }
    }
  };
  const n = Math.max(1, Math.min(limit, items.length));
  await Promise.all(Array.from({ length: n }, worker));
  if (failed) throw firstError;
}
