// Allow and block list entries as people write them and as the store keys them: a sender address, a
// sender domain (that domain only, or with every domain under it), a client network (IPv4/IPv6 CIDR).
// Parsing, the normal form kept in the store, the lookup keys of one message, and the precedence that
// picks the one entry that decides. Pure functions: the store engines, the plugin, `nqqueue lists`,
// `explain` and the console all use the same ones, so they cannot disagree.

import { isIPv4, isIPv6 } from 'node:net';

import type { ListAction, ListEntry, ListHolder, ListKind, ListScope } from '../store/types.js';

export class ListValueError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ListValueError';
  }
}

export const SCOPES: readonly ListScope[] = ['user', 'domain', 'global'];
export const ACTIONS: readonly ListAction[] = ['allow', 'block'];

const DOMAIN = /^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,62})(?:\.[a-z0-9_](?:[a-z0-9_-]{0,62}))*$/;
// The local part as it can appear in an envelope: no spaces, no control bytes, no '<>' (quoted local
// parts with spaces are vanishingly rare in MAIL FROM and are refused rather than half-handled).
const LOCAL = /^[^\s\x00-\x1f\x7f<>@]{1,64}$/;

/** A domain as written, lower case, without a trailing dot; throws for anything that is not one. */
export function normalDomain(text: string): string {
  const d = text.trim().toLowerCase().replace(/\.$/, '');
  if (!DOMAIN.test(d)) throw new ListValueError(`${JSON.stringify(text.slice(0, 80))} is not a domain`);
  return d;
}

/** An address as written, lower case; throws for anything that is not local@domain. */
export function normalAddress(text: string): string {
  const t = text.trim();
  const at = t.lastIndexOf('@');
  if (at <= 0) throw new ListValueError(`${JSON.stringify(t.slice(0, 80))} is not an address (local@domain)`);
  const local = t.slice(0, at);
  if (!LOCAL.test(local)) throw new ListValueError(`${JSON.stringify(t.slice(0, 80))} is not an address (local@domain)`);
  return `${local.toLowerCase()}@${normalDomain(t.slice(at + 1))}`;
}

/**
 * An IPv4 or IPv6 address as a family and its bits; an IPv4-mapped IPv6 address (::ffff:0:0/96, however
 * it is written: ::ffff:192.0.2.1, ::ffff:c000:201, 0:0:0:0:0:ffff:192.0.2.1) is the IPv4 one.
 */
export function ipBits(ip: string): { family: 4 | 6; bits: bigint } | undefined {
  let text = ip.trim();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(text);
  if (mapped) text = mapped[1]!;
  if (isIPv4(text)) {
    const bits = text.split('.').reduce((n, part) => (n << 8n) | BigInt(Number(part)), 0n);
    return { family: 4, bits };
  }
  if (!isIPv6(text)) return undefined;
  text = text.replace(/%.*$/, '');
  // An embedded IPv4 tail (::1.2.3.4) becomes two groups.
  const tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (tail) {
    const b = tail[1]!.split('.').map(Number);
    text = `${text.slice(0, tail.index)}${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const [head, rest] = text.includes('::') ? text.split('::') : [text, undefined];
  const left = head ? head.split(':') : [];
  const right = rest === undefined ? [] : rest ? rest.split(':') : [];
  const groups = rest === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  if (groups.length !== 8) return undefined;
  const bits = groups.reduce((n, g) => (n << 16n) | BigInt(parseInt(g, 16)), 0n);
  if (bits >> 32n === 0xffffn) return { family: 4, bits: bits & 0xffffffffn };
  return { family: 6, bits };
}

function width(family: 4 | 6): number {
  return family === 4 ? 32 : 128;
}

function maskOf(family: 4 | 6, prefix: number): bigint {
  const w = BigInt(width(family));
  return prefix === 0 ? 0n : ((1n << BigInt(prefix)) - 1n) << (w - BigInt(prefix));
}

function hexOf(family: 4 | 6, bits: bigint): string {
  return bits.toString(16).padStart(family === 4 ? 8 : 32, '0');
}

function ipText(family: 4 | 6, bits: bigint): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((s) => Number((bits >> s) & 255n)).join('.');
  const groups = Array.from({ length: 8 }, (_, i) => Number((bits >> BigInt(112 - 16 * i)) & 0xffffn).toString(16));
  // The longest run of zero groups becomes '::' (RFC 5952).
  let best = -1;
  let len = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > len && j - i > 1) {
      best = i;
      len = j - i;
    }
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + len).join(':')}`;
}

/** A network `192.0.2.0/24`, `2001:db8::/32` or a single address; host bits set are refused. */
export function normalNetwork(text: string): { value: string; family: 4 | 6; prefix: number; bits: bigint } {
  const t = text.trim();
  const slash = t.indexOf('/');
  const ip = ipBits(slash < 0 ? t : t.slice(0, slash));
  if (!ip) throw new ListValueError(`${JSON.stringify(t.slice(0, 80))} is not an IP address or network`);
  const w = width(ip.family);
  // Written as an IPv4-mapped IPv6 network: ::ffff:192.0.2.0/120 is 192.0.2.0/24.
  const mapped = ip.family === 4 && t.includes(':');
  let prefix = w;
  if (slash >= 0) {
    const p = t.slice(slash + 1);
    const least = mapped ? 96 : 0;
    const most = mapped ? 128 : w;
    if (!/^\d{1,3}$/.test(p) || Number(p) > most || Number(p) < least) throw new ListValueError(`${JSON.stringify(t.slice(0, 80))}: the prefix length must be ${least} to ${most}`);
    prefix = Number(p) - least;
  }
  const net = ip.bits & maskOf(ip.family, prefix);
  if (net !== ip.bits) throw new ListValueError(`${JSON.stringify(t.slice(0, 80))} has host bits set: did you mean ${ipText(ip.family, net)}/${prefix}?`);
  return { value: `${ipText(ip.family, net)}/${prefix}`, family: ip.family, prefix, bits: net };
}

/**
 * What a person writes for a sender: `alice@example.com` (that address), `example.com` or `@example.com`
 * (that domain only), `.example.com` (example.com and every domain under it), `192.0.2.0/24`,
 * `2001:db8::/32` or one IP address (the client's network).
 */
export function parseListValue(text: string): { kind: ListKind; value: string } {
  const t = text.trim();
  if (t === '') throw new ListValueError('an empty value: write an address, a domain, .domain for its subdomains too, or a network');
  if (/[\x00-\x1f\x7f]/.test(t)) throw new ListValueError('a value with control characters');
  if (t.length > 320) throw new ListValueError('a value over 320 characters');
  if (ipBits(t.split('/')[0]!) !== undefined) return { kind: 'network', ...pick(normalNetwork(t)) };
  if (t.startsWith('.')) return { kind: 'subdomains', value: normalDomain(t.slice(1)) };
  if (t.startsWith('@')) return { kind: 'domain', value: normalDomain(t.slice(1)) };
  if (t.includes('@')) return { kind: 'address', value: normalAddress(t) };
  return { kind: 'domain', value: normalDomain(t) };
}

function pick(n: { value: string }): { value: string } {
  return { value: n.value };
}

/** How an entry's value is written back (the inverse of parseListValue). */
export function valueText(kind: ListKind, value: string): string {
  return kind === 'subdomains' ? `.${value}` : value;
}

/** The one lookup key of an entry (unique per holder). */
export function entryKey(kind: ListKind, value: string): string {
  if (kind === 'address') return `a:${value}`;
  if (kind === 'domain') return `d:${value}`;
  if (kind === 'subdomains') return `s:${value}`;
  const n = normalNetwork(value);
  return networkKey(n.family, n.prefix, n.bits);
}

export function networkKey(family: 4 | 6, prefix: number, bits: bigint): string {
  return `n${family}/${prefix}/${hexOf(family, bits)}`;
}

/**
 * The network shape of a stored entry, from the lookup key it was stored under (the key the prefix
 * table was counted by, even for a value an older release normalised otherwise); else from its value.
 */
export function storedShape(matchKey: string, value: string): { family: 4 | 6; prefix: number } {
  const m = /^n([46])\/(\d{1,3})\//.exec(matchKey);
  return m ? { family: Number(m[1]) as 4 | 6, prefix: Number(m[2]) } : networkShape(value);
}

/** The network of an entry: its family and prefix length (kept by the store to know what to look for). */
export function networkShape(value: string): { family: 4 | 6; prefix: number } {
  const n = normalNetwork(value);
  return { family: n.family, prefix: n.prefix };
}

/**
 * The keys one message can match: its sender's address, its domain exactly, the domain and each parent
 * for entries with subdomains, and the client's address under each prefix length some entry uses.
 * A bounce (empty sender) matches networks only.
 */
export function probeKeys(sender: string, ip: string | undefined, prefixes: readonly { family: 4 | 6; prefix: number }[]): string[] {
  const keys: string[] = [];
  const s = sender.trim().toLowerCase();
  const at = s.lastIndexOf('@');
  if (s !== '' && at > 0) {
    // A domain with a trailing dot (alice@example.com.) is the same domain, for its address too.
    const domain = s.slice(at + 1).replace(/\.+$/, '');
    keys.push(`a:${s.slice(0, at)}@${domain}`);
    if (domain !== '') {
      keys.push(`d:${domain}`);
      const labels = domain.split('.');
      for (let i = 0; i < labels.length; i++) keys.push(`s:${labels.slice(i).join('.')}`);
    }
  }
  const client = ip === undefined || ip === '' ? undefined : ipBits(ip);
  if (client) {
    for (const p of prefixes) {
      if (p.family !== client.family) continue;
      keys.push(networkKey(p.family, p.prefix, client.bits & maskOf(p.family, p.prefix)));
    }
  }
  return keys;
}

/** The holder key of a list: `g:`, `d:example.com`, `u:bob@example.com`. */
export function holderKey(h: ListHolder): string {
  return `${h.scope === 'global' ? 'g' : h.scope === 'domain' ? 'd' : 'u'}:${h.owner}`;
}

/** Whose list a scope and an owner name: global has none; a domain or an address, normalised. */
export function holderOf(scope: ListScope, owner: string | undefined): ListHolder {
  if (scope === 'global') {
    if (owner !== undefined && owner !== '') throw new ListValueError('the global list has no owner');
    return { scope, owner: '' };
  }
  if (owner === undefined || owner === '') throw new ListValueError(scope === 'domain' ? 'which domain?' : 'whose list (an address)?');
  return { scope, owner: scope === 'domain' ? normalDomain(owner.replace(/^@/, '')) : normalAddress(owner) };
}

/** The lists that apply to a recipient, most binding first: theirs, their domain's, the global one. */
export function holdersFor(recipient: string | undefined): ListHolder[] {
  const out: ListHolder[] = [];
  if (recipient !== undefined && recipient !== '') {
    const r = recipient.toLowerCase();
    out.push({ scope: 'user', owner: r });
    const at = r.lastIndexOf('@');
    if (at > 0) out.push({ scope: 'domain', owner: r.slice(at + 1) });
  }
  out.push({ scope: 'global', owner: '' });
  return out;
}

const SCOPE_RANK: Record<ListScope, number> = { user: 0, domain: 1, global: 2 };

/**
 * The precedence, as a sort: the first entry decides.
 *  1. scope: the recipient's own list, then their domain's, then the global one — the first list with
 *     any matching entry decides alone;
 *  2. within one list, the most specific entry: an address, then a domain (the longer the more specific;
 *     a domain-only entry before a with-subdomains entry of the same domain), then a network (the longer
 *     the prefix the more specific);
 *  3. two entries are never equally specific: a list holds one entry per value, and adding an allow
 *     for a value that is blocked replaces the block (and the other way round). The sort still puts a
 *     block first on a tie, for an engine that ever let one through.
 */
export function precedence(a: ListEntry, b: ListEntry): number {
  return rankOf(a).reduce((d, v, i) => d || v - rankOf(b)[i]!, 0);
}

function rankOf(e: ListEntry): number[] {
  const scope = SCOPE_RANK[e.scope];
  const action = e.action === 'block' ? 0 : 1;
  if (e.kind === 'address') return [scope, 0, 0, 0, action];
  if (e.kind === 'domain' || e.kind === 'subdomains') return [scope, 1, -e.value.split('.').length, e.kind === 'domain' ? 0 : 1, action];
  return [scope, 2, -Number(e.value.slice(e.value.lastIndexOf('/') + 1)), 0, action];
}

export const PRECEDENCE_TEXT =
  "precedence: the recipient's own list, then their domain's, then the global list (the first with a matching entry decides); " +
  'within a list the most specific entry (address, then domain — longest first, exact before with-subdomains —, then network — longest prefix first); ' +
  'one entry per value in a list (an allow added for a blocked value replaces the block), so never a tie';

export interface ListDecision {
  /** none: no entry matched. */
  readonly action: ListAction | 'none';
  /** The entry that decided. */
  readonly entry?: ListEntry;
  /** Every matching entry, in precedence order. */
  readonly matches: readonly ListEntry[];
}

export function decide(matches: readonly ListEntry[]): ListDecision {
  const sorted = [...matches].sort(precedence);
  const first = sorted[0];
  return first ? { action: first.action, entry: first, matches: sorted } : { action: 'none', matches: sorted };
}

/** One line for an entry: `user bob@example.com: allow address alice@example.org (skips spamassassin)`. */
export function entryText(e: ListEntry, defaultSkip?: readonly string[]): string {
  const whose = e.scope === 'global' ? 'global' : `${e.scope} ${e.owner}`;
  const names = (l: readonly string[]) => (l.length === 0 ? 'nothing' : l.join(', '));
  const policy = e.skip !== undefined ? names(e.skip) : defaultSkip !== undefined ? `${names(defaultSkip)}, the default policy` : 'the default policy';
  const skip = e.action === 'allow' ? ` (skips ${policy})` : '';
  return `${whose}: ${e.action} ${e.kind === 'subdomains' ? 'domain with subdomains' : e.kind} ${valueText(e.kind, e.value)}${skip}`;
}
