// The rspamd reference of `npm run bench`: rspamd alone with the 10 requests of a message to 10 recipients
// with their own settings, all sent at once, timed right after each message of the "rspamd, 10 different
// users" rows (side by side, as the spamd one is); and the target that compares the two.
//
// The requests are the plugin's: From, one Rcpt and Deliver-To, IP, Helo, Hostname, Queue-Id, the same
// fresh 10 KB message for the 10. Each recipient has its own client (as each routing line has its own),
// kept alive from one batch to the next, as the daemon keeps its lines' clients: the reference pays no
// connection, and nothing is queued anywhere but in rspamd.

export const RSPAMD10_REF = 'rspamd 10 at once';
export const NO_PLUGINS_REF = '10 recipients, no plugins';
/** Local recipients no routing line names: the same program and mode, with nothing to run for them. */
export const BARE_RCPTS = Array.from({ length: 10 }, (_, i) => `n${String(i + 1).padStart(2, '0')}@example.com`);

/**
 * A reference for timeRow: the same message's way through the same program (and daemon) to 10 local
 * recipients that have no per-user line — what NQqueue and the qmail-queue stand-in cost without rspamd.
 * `deliver(rcpts)` delivers a fresh message and resolves with its time.
 */
export function refNoPlugins(deliver) {
  return { name: NO_PLUGINS_REF, floorRecipients: BARE_RCPTS.length, run: () => deliver(BARE_RCPTS) };
}
export const RSPAMD_DIFF_RATIO = 1.1;

/**
 * A reference for timeRow. `h`: { RspamdClient, MemoryMessage, textMessage, url, rcpts, sender }.
 * `close()` ends its kept-alive connections (call it once the rows are done).
 */
export function refRspamd10(h) {
  let clients;
  let n = 0;
  return {
    name: RSPAMD10_REF,
    run: async () => {
      clients ??= h.rcpts.map(() => new h.RspamdClient({ urls: [h.url] }));
      const m = new h.MemoryMessage(h.textMessage('ref-rspamd10').buf);
      const queueId = `benchref${(n++).toString(36)}`;
      const t = performance.now();
      await Promise.all(
        h.rcpts.map((rcpt, i) =>
          clients[i].check(m, {
            signal: AbortSignal.timeout(60_000),
            from: h.sender,
            rcpt: [rcpt],
            deliverTo: rcpt,
            ip: '192.0.2.7',
            helo: 'helo.client.example',
            hostname: 'client.example',
            queueId,
          }),
        ),
      );
      return performance.now() - t;
    },
    close: () => {
      for (const c of clients ?? []) c.close();
      clients = undefined;
    },
  };
}

/**
 * The target: what the 10 recipients' rspamd chains add to a message, against rspamd's own time for the
 * same 10 requests at once beside it — 1 + the median of (message − no-plugin run − rspamd alone, all
 * three side by side) ÷ rspamd's median. The whole message's time ÷ rspamd's is given too: it also holds
 * the program's own cost and the stand-in's two fsyncs, which no backend could make up for. `row` is the mode's "rspamd, 10 different users" row (undefined when not run);
 * `add(name, met, figure)` records it.
 */
export function rspamdTarget(mode, row, add, fmt) {
  const signed = (x) => `${x >= 0 ? '+' : ''}${fmt(x)}`;
  const name = `${mode}: 10 recipients, different rspamd settings, at most ${RSPAMD_DIFF_RATIO}× rspamd's own 10 at once`;
  const ref = row?.refs?.[RSPAMD10_REF];
  if (!row || row.n === 0 || !ref) {
    add(name, undefined, `not measured: ${row ? `${mode} rspamd 10 different failed (${row.firstError ?? 'no answer'})` : `no ${mode} rspamd 10 different row`}`);
    return;
  }
  const bare = row.refs[NO_PLUGINS_REF];
  const ratio = bare ? 1 + row.overRefsMedian / ref.median : row.median / ref.median;
  add(
    name,
    ratio <= RSPAMD_DIFF_RATIO,
    `${fmt(ratio, 3)}× (${fmt(row.median)} ms per message; beside it rspamd alone, the 10 requests at once: ${fmt(ref.median)} ms` +
      (bare ? `, and the same program to 10 recipients without plugins: ${fmt(bare.median)} ms; the message over both: ${signed(row.overRefsMedian)} ms` : '') +
      `; the whole message ÷ rspamd alone: ${fmt(row.median / ref.median, 2)}×)`,
  );
}
