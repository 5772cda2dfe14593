// `clamav`: scan the message with clamd over its Unix or TCP socket (INSTREAM: the message is streamed,
// no clamdscan process; a spilled message is handed to a local clamd as its open file, FILDES). A virus
// refuses the message naming it; `pass` only records the result.

import { ClamdClient, DEFAULT_TIMEOUTS } from '../clients/clamd.js';
import type { Timeouts } from '../clients/socket.js';
import { BackendError, definePlugin, PluginConfigError } from '../plugin-api/define.js';
import { VERSION } from '../version.js';
import { backendAddresses, backendPool, backendTimeouts, makeClient, POOL_KEYS, timeoutKeys, socketOrHost } from './backend.js';

export interface ClamavConfig {
  readonly client: ClamdClient;
  readonly timeouts: Partial<Timeouts>;
  /** Record the verdict for later plugins (quarantine), do not refuse. */
  readonly pass: boolean;
}

/** Debian's clamd LocalSocket. */
export const DEFAULT_SOCKET = '/run/clamav/clamd.ctl';
export const DEFAULT_FILDES = 'yes';

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
  description:
    'Scan with clamd over its Unix or TCP socket (INSTREAM: the message is streamed, no clamdscan process; a spilled message is handed to a local clamd as its open file, FILDES: see fildes). A virus refuses the message with "Message rejected because it contains a virus: NAME (#5.7.1)". The virus name, the clamd address and the scan time are in the result later plugins and the log line see. A message over clamd\'s StreamMaxLength is a failure (set maxsize below it).',
  // A virus check runs whatever an allow list says.
  skippable: false,
  params: {
    words: ['pass'],
    wordsDoc: { pass: 'record the verdict, do not act on it: a virus does not refuse the message' },
    keys: {
      socket: {
        list: true,
        check: (v) => void socketOrHost([{ key: 'socket', value: v }]),
        doc: "clamd's Unix socket (an absolute path); repeat for fail-over, tried in turn (on a line in the order written; in the section the sockets before the hosts)",
        default: DEFAULT_SOCKET,
      },
      host: { list: true, check: (v) => void socketOrHost([{ key: 'host', value: v }]), doc: "clamd's TCP address, HOST:PORT; repeat for fail-over, tried in turn" },
      ...timeoutKeys(DEFAULT_TIMEOUTS),
      fildes: {
        check: (v: string) => void yesNo('fildes', v),
        doc: "yes: a message spilled to a file (over spill) is handed to a clamd on a Unix socket as its open file (clamd's FILDES: clamd reads the file itself, nothing is copied and clamd needs no access to $NQQUEUE_HOME); TCP addresses and messages in memory are streamed (INSTREAM), as is every message to a clamd that refuses FILDES. clamd's MaxFileSize and MaxScanSize bound a file handed over, StreamMaxLength a streamed message. no: always stream",
        default: DEFAULT_FILDES,
      },
      ...POOL_KEYS,
    },
  },
  configure({ params, settings }) {
    const items = backendAddresses(params, settings.section('clamav'), ['socket', 'host'], [{ key: 'socket', value: DEFAULT_SOCKET }]);
    const addresses = socketOrHost(items);
    const timeouts = backendTimeouts(params);
    const fildes = yesNo('fildes', params.get('fildes') ?? DEFAULT_FILDES);
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
