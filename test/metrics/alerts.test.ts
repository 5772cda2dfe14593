// The example alert rules and Grafana dashboard under etc/: promtool accepts the rules, its rule unit
// tests show each alert fires when it should and stays quiet on a healthy site, and every metric they
// name is one `nqqueue serve` exposes.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import { processGauges } from '../../src/metrics/daemon.js';
import { nqqueueFamilies } from '../../src/metrics/families.js';
import { Registry } from '../../src/metrics/registry.js';
import { PROMTOOL, promtoolCheck } from '../helpers/metrics.js';
import { REPO } from '../helpers/nqq.js';

const RULES = join(REPO, 'etc', 'prometheus', 'nqqueue-alerts.yml');
const DASHBOARD = join(REPO, 'etc', 'grafana', 'nqqueue-dashboard.json');

function promtool(args: string[]): { code: number | null; output: string } {
  assert.ok(PROMTOOL, 'promtool is not installed (apt-get install prometheus)');
  const r = spawnSync(PROMTOOL, args, { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, output: `${r.stdout}${r.stderr}` };
}

/** The metric names an exposition of a fresh daemon's registry has (histograms by their family name). */
async function exposed(): Promise<Set<string>> {
  const r = new Registry();
  nqqueueFamilies(r);
  processGauges(r, Date.now());
  const text = await r.exposition();
  assert.equal(promtoolCheck(text).code, 0, promtoolCheck(text).output);
  return new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!));
}

/** Metric names in a PromQL expression (a histogram's _bucket / _sum / _count as its family). */
function namesIn(expr: string): string[] {
  const regex = /__name__=~"([^"]+)"/.exec(expr)?.[1];
  const fromRegex = regex ? ['errors', 'timeouts'].map((k) => `nqqueue_backend_${k}_total`).filter((n) => new RegExp(`^${regex}$`).test(n)) : [];
  const plain = [...expr.replace(/__name__=~"[^"]+"/g, '').matchAll(/\b((?:nqqueue|process)_[a-z_]+)\b/g)].map((m) => {
    const family = m[1]!.replace(/_(bucket|sum|count)$/, '');
    return family.endsWith('_seconds') && family !== m[1] ? family : m[1]!;
  });
  return [...fromRegex, ...plain];
}

test('promtool check rules: the example alert rules are valid', () => {
  const r = promtool(['check', 'rules', RULES]);
  assert.equal(r.code, 0, r.output);
  assert.match(r.output, /SUCCESS: 7 rules found/);
});

test('promtool test rules: backend down, spool growing, deferral rate high and reload failed fire on their series, not on a healthy site', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nqq-rules-'));
  try {
    const file = join(dir, 'alerts.test.yml');
    writeFileSync(file, readFileSync(join(REPO, 'test', 'fixtures', 'prometheus', 'nqqueue-alerts.test.yml'), 'utf8').replace('  - RULES', `  - ${RULES}`));
    const r = promtool(['test', 'rules', file]);
    assert.equal(r.code, 0, r.output);
    assert.match(r.output, /SUCCESS/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('every metric the alert rules and the Grafana dashboard name is one nqqueue serve exposes', async () => {
  const names = await exposed();
  const rules = readFileSync(RULES, 'utf8');
  const exprs = [...rules.matchAll(/expr: (?:\|\n((?:\s{10,}.*\n)+)|(.*)\n)/g)].map((m) => m[1] ?? m[2]!);
  const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: { targets: { expr: string }[] }[] };
  const panelExprs = dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr));
  assert.ok(exprs.length >= 7 && panelExprs.length >= 20);
  for (const e of [...exprs, ...panelExprs]) {
    for (const n of namesIn(e)) assert.ok(names.has(n), `${n} (in ${e.trim()}) is not exposed`);
  }
  // Histograms are read by their buckets.
  assert.ok(panelExprs.some((e) => e.includes('nqqueue_plugin_duration_seconds_bucket')));
});
