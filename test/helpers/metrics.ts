// Reading /metrics in tests: fetch the exposition, check it with promtool (Debian's prometheus
// package), and look series up by their exact text (`nqqueue_messages_total{result="accept",via="daemon"}`).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';

export const PROMTOOL = ['/usr/bin/promtool', '/usr/local/bin/promtool'].find((p) => existsSync(p));

/** `promtool check metrics` on the text: exit code and what it said. */
export function promtoolCheck(text: string): { code: number | null; output: string } {
  assert.ok(PROMTOOL, 'promtool is not installed (apt-get install prometheus)');
  const r = spawnSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, output: `${r.stdout}${r.stderr}` };
}

/** Every sample line as `name{labels}` → value. */
export function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const sp = line.lastIndexOf(' ');
    out.set(line.slice(0, sp), Number(line.slice(sp + 1)));
  }
  return out;
}

/** The metrics URL a `nqqueue serve` logged ("metrics on http://127.0.0.1:PORT/metrics"), waiting for it. */
export async function metricsUrl(logFile: string, withinMs = 20_000): Promise<string> {
  const until = Date.now() + withinMs;
  for (;;) {
    const text = existsSync(logFile) ? readFileSync(logFile, 'utf8') : '';
    const m = /metrics on (http:\/\/\S+\/metrics)/.exec(text);
    if (m) return m[1]!;
    if (Date.now() > until) throw new Error(`no metrics URL in ${logFile}: ${text}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export async function scrape(url: string): Promise<string> {
  const res = await fetch(url);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return res.text();
}
