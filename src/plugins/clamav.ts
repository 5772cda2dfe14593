// `clamav`: scan the message with clamd over its Unix or TCP socket (INSTREAM: the message is streamed,
// no clamdscan process; a spilled message is handed to a local clamd as its open file, FILDES). A virus
// refuses the message naming it; `pass` only records the result.

import { ClamdClient } from '../clients/clamd.js';
import type { Timeouts } from '../clients/socket.js';
import { BackendError, definePlugin, PluginConfigError } from '../plugin-api/define.js';
import { parseDuration } from '../config/settings.js';
import { VERSION } from '../version.js';
import { backendAddresses, backendPool, backendTimeouts, makeClient, POOL_KEYS, socketOrHost } from './backend.js';

export interface ClamavConfig {
  readonly client: ClamdClient;
  readonly timeouts: Partial<Timeouts>;
  /** Record the verdict for later plugins (quarantine), do not refuse. */
  readonly pass: boolean;
}

/** Debian's clamd LocalSocket. */
export const DEFAULT_SOCKET = '/run/clamav/clamd.ctl';

function yesNo(key: string, v: string): boolean {
  if (v !== 'yes' && v !== 'no') throw new PluginConfigError(`${key}=${v}: must be yes or no`);
  return v === 'yes';
}

/** The refusal text for a virus (SPEC §6). */
export function virusText(name: string): string {
  return `Message rejected because it contains a virus: ${name} (#5.7.1)`;
}

export default definePlugin<ClamavConfig>({
  name: 'clamav',
  version: VERSION,
  stages: ['general'],
  // A virus check runs whatever an allow list says.
  skippable: false,
  params: {
    words: ['pass'],
    keys: {
      socket: { list: true, check: (v) => void socketOrHost([{ key: 'socket', value: v }]) },
      host: { list: true, check: (v) => void socketOrHost([{ key: 'host', value: v }]) },
      connect_timeout: { check: (v: string) => void parseDuration(v) },
      read_timeout: { check: (v: string) => void parseDuration(v) },
      fildes: { check: (v: string) => void yesNo('fildes', v) },
      ...POOL_KEYS,
    },
  },
  configure({ params, settings }) {
    const items = backendAddresses(params, settings.section('clamav'), ['socket', 'host'], [{ key: 'socket', value: DEFAULT_SOCKET }]);
    const addresses = socketOrHost(items);
    const timeouts = backendTimeouts(params);
    const fildes = yesNo('fildes', params.get('fildes') ?? 'yes');
    return {
      client: makeClient(() => new ClamdClient({ addresses, ...timeouts, ...backendPool(params), sessions: true, fildes })),
      timeouts,
      pass: params.has('pass'),
    };
  },
  // The daemon's idle IDSESSION connections of a replaced configuration, ended at once.
  teardown(config) {
    config.client.close();
  },
  async run(ctx) {
    const { config } = ctx;
    let scan;
    try {
      scan = await config.client.scan(ctx.message, { signal: ctx.signal, ...config.timeouts });
    } catch (err) {
      if (err instanceof BackendError && /size limit|StreamMaxLength/i.test(err.message)) {
        throw new BackendError(`${err.message}; set maxsize= for clamav below clamd's StreamMaxLength`, { cause: err });
      }
      throw err;
    }
    const ms = Math.round(scan.ms * 10) / 10;
    if (scan.status === 'clean') return { verdict: 'accept', details: { virus: null, backend: scan.address, ms, via: scan.via } };
    const details = { virus: scan.name, backend: scan.address, ms, via: scan.via };
    if (config.pass) return { verdict: 'accept', flagged: true, details };
    return { verdict: 'reject', text: virusText(scan.name), flagged: true, details };
  },
});
