// Shared pieces of the end-to-end suites (test/e2e): setups removed after the file, qmail-smtpd's own
// Received line in front of a message, third-party plugin directories.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after } from 'node:test';

import { setup, type Setup } from './nqq.js';

/** No test may hang the suite. */
export const LIMIT = { timeout: 120_000 };

const all: Setup[] = [];
after(() => all.forEach((s) => s.cleanup()));

export function make(...a: Parameters<typeof setup>): Setup {
  const s = setup(...a);
  all.push(s);
  return s;
}

/** The line qmail-smtpd puts in front of every message (the only place the HELO name is seen). */
export const SMTPD_RECEIVED =
  'Received: from client.example (HELO helo.client.example) (192.0.2.7)\n  by mx.example.com with SMTP; 26 Nov 2026 10:00:00 -0000\n';

export function viaSmtpd(message: Buffer): Buffer {
  return Buffer.concat([Buffer.from(SMTPD_RECEIVED), message]);
}

/** A third-party plugin directory holding the given modules (name → source); returns its path. */
export function pluginDir(s: Setup, mods: Record<string, string>): string {
  const dir = join(s.dir, 'plugins');
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  for (const [name, src] of Object.entries(mods)) writeFileSync(join(dir, `${name}.js`), src, { mode: 0o644 });
  return dir;
}

/** A plugin that adds `X-Results: <JSON of the results before it>` (what later plugins see). */
export const RESULTS_PLUGIN =
  "export default { name: 'results', version: '1', stages: ['general', 'per-user'], configure() { return {}; }, scope() { return undefined; }, " +
  "async run(ctx) { return { verdict: 'accept', headers: [{ name: 'X-Results', value: JSON.stringify(ctx.results.map((r) => ({ plugin: r.plugin, verdict: r.verdict, flagged: r.flagged, score: r.score, details: r.details }))) }] }; } };\n";
