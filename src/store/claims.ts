// What every engine decides the same way about claims on quarantined items.

import type { ClaimHolder } from './types.js';

/** Whether a claim found on an item is a dead process's: old, or known dead by a claimer on its host. */
export function deadClaim(r: { claim_at?: unknown; claim_host?: unknown; claim_pid?: unknown }, staleBefore: string, holder: ClaimHolder | undefined): boolean {
  if (r.claim_at !== null && r.claim_at !== undefined && String(r.claim_at) <= staleBefore) return true;
  if (!holder?.deadLocal) return false;
  const local = r.claim_host === null || r.claim_host === undefined || String(r.claim_host) === holder.host;
  if (!local) return false;
  const pid = r.claim_pid === null || r.claim_pid === undefined ? undefined : Number(r.claim_pid);
  // `any` is for claims that name no process: one that does is dead only when that pid is known gone
  // (a process releasing from a shared store's bytes holds no files, so holding them proves nothing).
  return holder.deadLocal === 'any' ? pid === undefined : pid === holder.deadLocal;
}
