// The documented defaults of the built-in plugins' keys (`default` in params.keys, printed in
// nqqueue-plugins(7)) against what each plugin really does when the key is left out: configured
// without the key, and with `key=DEFAULT` written on the routing line and in the plugin's section, it
// must come out the same. What `configure` hides in a backend client (its timeouts, its pool) is read
// back from the client; a default described in words is listed below with why, and checked another way
// where it can be.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ClamdClient } from '../../src/clients/clamd.js';
import { RspamdClient } from '../../src/clients/rspamd.js';
import { resolveTimeouts, type Timeouts } from '../../src/clients/socket.js';
import { SpamdClient } from '../../src/clients/spamd.js';
import { parseParams } from '../../src/config/cfb.js';
import { defaultSettings, parseSettings, type Settings } from '../../src/config/settings.js';
import type { PluginDefinition } from '../../src/plugin-api/define.js';
import { BUILTINS, configureLoaded, hostPlugin, IN_MEMORY } from '../../src/plugin-api/load.js';
import { runPlugin } from '../../src/testing.js';

/** What each plugin needs on its line to configure at all (the senders, rules, program it acts on). */
const BASE: Readonly<Record<string, string>> = {
  black: 'spammer@example.com',
  header: 'Subject:/lottery/i',
  attach: '.exe',
  exec: process.execPath,
  quarantine: 'all',
};

/**
 * Defaults that are not a value one could write: `key=DEFAULT` would mean something else. Each is
 * checked below in its own way, or says why it cannot be.
 */
const IN_WORDS: Readonly<Record<string, string>> = {
  'spamassassin.hits': "spamd's required score is spamd's own setting: without hits the line decides with the threshold spamd answers (decide() in test/plugins/spamassassin.test.ts)",
  'header.text': 'the default names the field that matched (NAME): checked by a run that matches a Subject rule',
};

const pluginDefs = async (): Promise<PluginDefinition<unknown>[]> =>
  Promise.all(Object.values(BUILTINS).map(async (load) => (await load()).default as PluginDefinition<unknown>));

/** The timeouts a client uses when a call sets none (a private field: there is no other way to see them). */
function clientTimeouts(client: object): Timeouts {
  return (client as unknown as { timeouts: Timeouts }).timeouts;
}

function poolOf(client: ClamdClient | SpamdClient | RspamdClient) {
  return { balance: client.pool.options.balance, backoffMs: client.pool.options.backoffMs };
}

/**
 * A configured value as plain data, for comparison: backend clients by the settings they run with,
 * and a config's per-call `timeouts` merged over its client's, as every call does. Anything else that
 * is not plain data is refused, so that a new kind of value is looked at rather than compared wrongly.
 */
function effective(value: unknown, path = 'config'): unknown {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'function') throw new Error(`${path}: a function in a configured value: teach effective() what it stands for`);
    return value;
  }
  if (value instanceof ClamdClient) {
    const c = value as unknown as { fildes: boolean; sessions: unknown; chunkBytes: number };
    return { clamd: value.endpoints, timeouts: clientTimeouts(value), pool: poolOf(value), fildes: c.fildes, sessions: c.sessions, chunkBytes: c.chunkBytes };
  }
  if (value instanceof SpamdClient) {
    return { spamd: value.endpoints, timeouts: clientTimeouts(value), pool: poolOf(value), maxReplyBytes: (value as unknown as { maxReplyBytes: number }).maxReplyBytes };
  }
  if (value instanceof RspamdClient) {
    const c = value as unknown as { password: unknown; maxReplyBytes: number };
    return { rspamd: value.urls, timeouts: clientTimeouts(value), pool: poolOf(value), password: c.password, maxReplyBytes: c.maxReplyBytes };
  }
  if (value instanceof RegExp) return String(value);
  if (value instanceof Set) return { set: [...value].map((v, i) => effective(v, `${path}[${i}]`)) };
  if (value instanceof Map) return { map: [...value].map(([k, v]) => [k, effective(v, `${path}.${String(k)}`)]) };
  if (Array.isArray(value)) return value.map((v, i) => effective(v, `${path}[${i}]`));
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) throw new Error(`${path}: a ${proto?.constructor?.name ?? 'class'} instance: teach effective() what it stands for`);
  const o = value as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) {
    if (k === 'timeouts' && o.client && typeof o.client === 'object') {
      out.callTimeouts = resolveTimeouts(clientTimeouts(o.client), v as Partial<Timeouts>);
    } else out[k] = effective(v, `${path}.${k}`);
  }
  return out;
}

/** Configure `def` as the host does for one routing line; what it runs with, or the error it gives. */
async function configured(def: PluginDefinition<unknown>, params: string, settings: Settings): Promise<unknown> {
  const stage = def.stages[0]!;
  try {
    const cp = await configureLoaded(hostPlugin(def, IN_MEMORY), { name: def.name, params, items: parseParams(params) }, stage, settings);
    const config = cp.config as { client?: { close?: () => void } } | undefined;
    const out = { config: effective(cp.config), timeoutMs: cp.timeoutMs, onerror: cp.onerror, maxsize: cp.maxsize };
    config?.client?.close?.();
    return out;
  } catch (err) {
    // A default that cannot be used here (dspam's program is not installed) must fail the same way
    // written out as left out.
    return { error: (err as Error).message };
  }
}

const join = (...items: string[]) => items.filter(Boolean).join(',');

test('every documented default of a built-in plugin key is what the plugin does when the key is left out', async () => {
  const checked: string[] = [];
  for (const def of await pluginDefs()) {
    const base = BASE[def.name] ?? '';
    const without = await configured(def, base, defaultSettings('localhost'));
    assert.ok(!('error' in (without as object)) || def.name === 'dspam', `${def.name} does not configure with "${base}": ${JSON.stringify(without)}`);
    for (const [key, spec] of Object.entries(def.params?.keys ?? {})) {
      if (spec.default === undefined) continue;
      const name = `${def.name}.${key}`;
      if (IN_WORDS[name] !== undefined) continue;
      // Written on the routing line (when the value can be: PARAMS are comma-separated) ...
      if (!spec.default.includes(',')) {
        assert.deepEqual(await configured(def, join(base, `${key}=${spec.default}`), defaultSettings('localhost')), without, `${name}: "${key}=${spec.default}" on the line is not the default`);
      }
      // ... and in the plugin's section of the settings file.
      const section = parseSettings(`[${def.name}]\n${key} = ${spec.default}\n`, 'nqqueue.conf', 'localhost');
      assert.deepEqual(await configured(def, base, section), without, `${name}: "${key} = ${spec.default}" in [${def.name}] is not the default`);
      checked.push(name);
    }
  }
  // The keys this covers: a key that loses its default, or a plugin that stops configuring, shows here.
  assert.deepEqual(checked.sort(), [
    'clamav.backoff',
    'clamav.balance',
    'clamav.connect_timeout',
    'clamav.fildes',
    'clamav.read_timeout',
    'clamav.socket',
    'dspam.bin',
    'exec.recipient',
    'header.onlimit',
    'lists.skip',
    'lists.text',
    'quarantine.q',
    'rspamd.backoff',
    'rspamd.balance',
    'rspamd.connect_timeout',
    'rspamd.read_timeout',
    'rspamd.url',
    'spamassassin.backoff',
    'spamassassin.balance',
    'spamassassin.connect_timeout',
    'spamassassin.host',
    'spamassassin.read_timeout',
    'spamassassin.user',
    'attach.onlimit',
    'black.text',
  ].sort());
});

test('the defaults described in words are keys that have them', async () => {
  const defs = new Map((await pluginDefs()).map((d) => [d.name, d]));
  for (const name of Object.keys(IN_WORDS)) {
    const [plugin, key] = name.split('.') as [string, string];
    assert.equal(typeof defs.get(plugin)?.params?.keys?.[key]?.default, 'string', `${name} is listed as a default in words but has no default`);
  }
});

test("header: the default text is the documented one, NAME being the field that matched", async () => {
  const def = (await BUILTINS.header!()).default as PluginDefinition<unknown>;
  const documented = def.params!.keys!.text!.default!;
  assert.match(documented, /\bNAME\b/);
  const { result } = await runPlugin(def, { message: 'Subject: you won the lottery\n\nbody\n', params: 'Subject:/lottery/i' });
  assert.equal(result.verdict, 'reject');
  assert.equal(result.text, documented.replace('NAME', 'subject'));
});

test('the comparison sees what a backend client keeps to itself', async () => {
  const defs = new Map((await pluginDefs()).map((d) => [d.name, d]));
  const settings = defaultSettings('localhost');
  for (const [plugin, other] of [
    ['clamav', 'read_timeout=31s'],
    ['clamav', 'connect_timeout=3s'],
    ['clamav', 'fildes=no'],
    ['spamassassin', 'backoff=31s'],
    ['rspamd', 'balance=round-robin'],
  ] as const) {
    const def = defs.get(plugin)!;
    assert.notDeepEqual(await configured(def, other, settings), await configured(def, '', settings), `${plugin}: ${other} looks like the default`);
  }
});
