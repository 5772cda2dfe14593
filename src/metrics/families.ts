// The metric families of `nqqueue serve`'s /metrics, and how a journal record counts into them. Label
// values are bounded: results, fates, verdicts and events are fixed words; plugins and backend
// addresses come from the configuration; a sender, a subject, a virus name or a refusal text never
// becomes a label (they go to the rollups only, with the store's own bounds).

import { FALLBACK_REASONS } from '../queue/origin.js';
import { VERSION } from '../version.js';
import { bucketOf, LATENCY_BUCKETS_MS } from './buckets.js';
import type { MessageRecord } from './record.js';
import { Registry } from './registry.js';

export function nqqueueFamilies(registry: Registry) {
  const r = registry;
  const f = {
    messages: r.counter('nqqueue_messages_total', 'Messages answered, by result (accept, reject, defer, error, bug) and the way they came (daemon, standalone, fallback).', ['result', 'via']),
    recipients: r.counter('nqqueue_recipients_total', 'Recipients of answered messages, by fate (deliver, reject, drop, quarantine, tempfail).', ['fate']),
    verdicts: r.counter('nqqueue_plugin_verdicts_total', 'Plugin runs, by plugin and verdict.', ['plugin', 'verdict']),
    pluginTime: r.histogram('nqqueue_plugin_duration_seconds', 'Time of one plugin run.', ['plugin']),
    viruses: r.counter('nqqueue_virus_messages_total', 'Messages in which a virus was found (the names are in the console, not in labels).'),
    backendCalls: r.counter('nqqueue_backend_calls_total', 'Backend calls that got an answer, per backend address.', ['backend', 'address']),
    backendErrors: r.counter('nqqueue_backend_errors_total', 'Backend calls that failed (connection refused, reset, unusable reply), per backend address.', ['backend', 'address']),
    backendTimeouts: r.counter('nqqueue_backend_timeouts_total', 'Backend calls that timed out, per backend address.', ['backend', 'address']),
    backendFailovers: r.counter('nqqueue_backend_failovers_total', 'Times the next address was tried because this one could not be reached.', ['backend', 'address']),
    queueTime: r.histogram('nqqueue_qmail_queue_duration_seconds', 'Time of one qmail-queue call.'),
    queueFailures: r.counter('nqqueue_qmail_queue_failures_total', 'qmail-queue calls that did not take the copy.'),
    fallbacks: r.counter('nqqueue_client_fallbacks_total', 'Messages nqqueue-qq ran through the standalone program because the daemon could not take them, by reason.', ['reason']),
    reloads: r.counter('nqqueue_config_reloads_total', 'Configuration reloads, by result (success: usable; failure: messages are deferred).', ['result']),
    reloadOk: r.gauge('nqqueue_config_last_reload_successful', '1 when the configuration in use loaded without a problem, else 0.'),
    reloadAt: r.gauge('nqqueue_config_last_reload_success_timestamp_seconds', 'When the configuration was last loaded without a problem.'),
    spoolItems: r.gauge('nqqueue_spool_items', 'Copies waiting in the retry spool.'),
    spoolOldest: r.gauge('nqqueue_spool_oldest_age_seconds', 'Age of the oldest copy in the retry spool (0 when empty).'),
    quarantineItems: r.gauge('nqqueue_quarantine_items', 'Quarantined items held.'),
    inFlight: r.gauge('nqqueue_messages_in_flight', 'Messages the daemon is handling now.'),
    skipped: r.counter('nqqueue_journal_lines_skipped_total', 'Journal lines that were not records (cut short by a crash, or not written by NQqueue).'),
    info: r.gauge('nqqueue_build_info', 'The running version (always 1).', ['version']),
  };
  f.info.set([VERSION], 1);
  for (const reason of FALLBACK_REASONS) f.fallbacks.inc([reason], 0);
  for (const result of ['success', 'failure']) f.reloads.inc([result], 0);
  return f;
}

export type Families = ReturnType<typeof nqqueueFamilies>;

const EVENT_FAMILY = { ok: 'backendCalls', error: 'backendErrors', timeout: 'backendTimeouts', failover: 'backendFailovers' } as const;

/** `service address event` (record.backend's keys) split. */
export function backendKey(key: string): { service: string; address: string; event: keyof typeof EVENT_FAMILY } | undefined {
  const a = key.indexOf(' ');
  const b = key.lastIndexOf(' ');
  if (a <= 0 || b <= a) return undefined;
  const event = key.slice(b + 1);
  if (!(event in EVENT_FAMILY)) return undefined;
  return { service: key.slice(0, a), address: key.slice(a + 1, b), event: event as keyof typeof EVENT_FAMILY };
}

export function applyRecord(f: Families, rec: MessageRecord): void {
  if (rec.result !== undefined) {
    f.messages.inc([rec.result, rec.via]);
    if (rec.via === 'fallback') f.fallbacks.inc([rec.why ?? 'other']);
    for (const [fate, n] of Object.entries(rec.fates ?? {})) f.recipients.inc([fate], n);
    if (rec.viruses?.length) f.viruses.inc();
  }
  for (const p of rec.plugins ?? []) {
    f.verdicts.inc([p.plugin, p.verdict], p.n);
    f.pluginTime.observe([p.plugin], p.buckets, p.sumMs);
  }
  for (const q of rec.queue ?? []) {
    f.queueTime.observe([], bucketsOf(q.ms), q.ms);
    if (!q.ok) f.queueFailures.inc();
  }
  for (const [key, n] of Object.entries(rec.backend ?? {})) {
    const k = backendKey(key);
    if (k) f[EVENT_FAMILY[k.event]].inc([k.service, k.address], n);
  }
}

function bucketsOf(ms: number): number[] {
  const b = new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0);
  b[bucketOf(ms)] = 1;
  return b;
}
