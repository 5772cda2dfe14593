// What every backend plugin (clamav, spamassassin, rspamd) reads the same way: its addresses (a pool:
// tried in turn or in rotation, one that fails taken out for a while), and its connect and read timeouts.

import { DEFAULT_BACKOFF_MS, DEFAULT_BALANCE, parseBalance } from '../clients/pool.js';
import type { PoolSettings, Timeouts } from '../clients/socket.js';
import { formatDuration, parseDuration, type SettingsSection } from '../config/settings.js';
import { PluginConfigError, type Params } from '../plugin-api/define.js';

export interface AddressItem {
  readonly key: string;
  readonly value: string;
}

/**
 * The backend addresses of a routing line: the `keys` items of its PARAMS in the order written when it
 * has any (they replace the settings file's), else the settings section's (each key's values, keys in
 * the order given), else `fallback`.
 */
export function backendAddresses(params: Params, section: SettingsSection, keys: readonly string[], fallback: readonly AddressItem[]): AddressItem[] {
  const own = params.items.filter((i) => i.key !== undefined && keys.includes(i.key)).map((i) => ({ key: i.key!, value: i.value }));
  if (own.length > 0) return own;
  const configured = keys.flatMap((key) => section.all(key).map((value) => ({ key, value })));
  return configured.length > 0 ? configured : [...fallback];
}

/** `socket=` must be an absolute path; `host=` must be HOST:PORT. Returns the addresses for the client. */
export function socketOrHost(items: readonly AddressItem[]): string[] {
  return items.map(({ key, value }) => {
    const v = value.trim();
    if (key === 'socket') {
      const path = v.startsWith('unix:') ? v.slice(5) : v;
      if (!path.startsWith('/')) throw new PluginConfigError(`socket=${v}: must be an absolute path`);
      return path;
    }
    if (v.startsWith('/') || v.startsWith('unix:')) throw new PluginConfigError(`host=${v}: must be HOST:PORT (use socket= for a Unix socket)`);
    return v;
  });
}

/** `connect_timeout=` and `read_timeout=` (durations), when given. */
export function backendTimeouts(params: Params): Partial<Timeouts> {
  const out: { connectTimeoutMs?: number; readTimeoutMs?: number } = {};
  for (const [key, field] of [
    ['connect_timeout', 'connectTimeoutMs'],
    ['read_timeout', 'readTimeoutMs'],
  ] as const) {
    const v = params.get(key);
    if (v === undefined) continue;
    try {
      out[field] = parseDuration(v);
    } catch (err) {
      throw new PluginConfigError(`${key}: ${(err as Error).message}`);
    }
  }
  return out;
}

/** Build a client, turning its address errors into configuration errors. */
export function makeClient<T>(make: () => T): T {
  try {
    return make();
  } catch (err) {
    if (err instanceof PluginConfigError) throw err;
    throw new PluginConfigError((err as Error).message);
  }
}

/** Back-offs shorter than this would probe a dead address all the time; longer, keep a recovered one out. */
const BACKOFF_RANGE_MS = [100, 3_600_000] as const;

function parseBackoff(v: string): number {
  const ms = parseDuration(v);
  if (ms < BACKOFF_RANGE_MS[0] || ms > BACKOFF_RANGE_MS[1]) throw new Error(`backoff must be between 100ms and 1h, not ${v}`);
  return ms;
}

/** The PARAMS keys of a backend pool, for a plugin's `params.keys`. */
export const POOL_KEYS = {
  balance: {
    check: (v: string) => void parseBalance(v),
    doc: 'several addresses are a pool: failover tries them in the order written, round-robin starts each call at the next one (the daemon turns the pool message by message; each one-shot process starts at a random one)',
    default: DEFAULT_BALANCE,
  },
  backoff: {
    check: (v: string) => void parseBackoff(v),
    doc: 'an address that cannot be reached (refused, no socket, connect timeout) is taken out for this long (100ms to 1h): calls go to the others instead of each paying a connect timeout on it; `nqqueue serve` probes it when the back-off is over and puts it back when it answers. Every process of the host knows what is out (one small file per address under $NQQUEUE_HOME/backends/); when every address is out, they are all tried anyway',
    default: formatDuration(DEFAULT_BACKOFF_MS),
  },
} as const;

/** `connect_timeout=` and `read_timeout=` as a plugin declares them, documented with its client's defaults. */
export function timeoutKeys(defaults: Timeouts) {
  return {
    connect_timeout: {
      check: (v: string) => void parseDuration(v),
      doc: 'how long to wait for a connection to one address; past it the next address is tried',
      default: formatDuration(defaults.connectTimeoutMs),
    },
    read_timeout: { check: (v: string) => void parseDuration(v), doc: 'how long to wait for progress once connected; past it the call fails', default: formatDuration(defaults.readTimeoutMs) },
  } as const;
}

/** `balance=` (failover or round-robin) and `backoff=` (how long an address that failed stays out). */
export function backendPool(params: Params): PoolSettings {
  const out: { balance?: PoolSettings['balance']; backoffMs?: number } = {};
  const balance = params.get('balance');
  const backoff = params.get('backoff');
  try {
    if (balance !== undefined) out.balance = parseBalance(balance);
    if (backoff !== undefined) out.backoffMs = parseBackoff(backoff);
  } catch (err) {
    throw new PluginConfigError((err as Error).message);
  }
  return out;
}
