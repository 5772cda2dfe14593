// What every engine checks and reads the same way about list entries.

import type { ListEntry, NewListEntry } from './types.js';

/** A row as an engine reads it: column name to value. */
type Row = Record<string, unknown>;

const SCOPES = new Set(['global', 'domain', 'user']);
const ACTIONS = new Set(['allow', 'block']);
const KINDS = new Set(['address', 'domain', 'subdomains', 'network']);
const PLUGIN = /^[a-z][a-z0-9_-]{0,63}$/;

export function checkEntry(e: NewListEntry): void {
  if (!SCOPES.has(e.scope)) throw new TypeError(`list entry: unknown scope ${JSON.stringify(e.scope)}`);
  if (!ACTIONS.has(e.action)) throw new TypeError(`list entry: unknown action ${JSON.stringify(e.action)}`);
  if (!KINDS.has(e.kind)) throw new TypeError(`list entry: unknown kind ${JSON.stringify(e.kind)}`);
  if (typeof e.value !== 'string' || e.value === '') throw new TypeError('list entry: no value');
  if ((e.scope === 'global') !== (e.owner === '')) throw new TypeError('list entry: the global list has no owner, the others have one');
  if (e.skip !== undefined && !(Array.isArray(e.skip) && e.skip.every((p) => typeof p === 'string' && PLUGIN.test(p)))) throw new TypeError('list entry: skip must list plugin names');
}

export function toEntry(r: Row): ListEntry {
  return {
    id: String(r.id),
    scope: String(r.scope) as ListEntry['scope'],
    owner: String(r.owner),
    action: String(r.action) as ListEntry['action'],
    kind: String(r.kind) as ListEntry['kind'],
    value: String(r.value),
    ...(r.skip === null ? {} : { skip: JSON.parse(String(r.skip)) as string[] }),
    ...(r.note === null ? {} : { note: String(r.note) }),
    by: String(r.added_by),
    added: String(r.added),
  };
}

