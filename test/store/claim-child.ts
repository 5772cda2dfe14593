// A separate process claiming one item at an agreed instant (the store suite starts several at once):
// prints {"got": true|false, "pid": N}; the winner finishes the claim as released.

import type { Store } from '../../src/store/types.js';

const spec = JSON.parse(process.argv[2]!) as { module: string; exportName: string; args: unknown[]; id: string; at: number; openAt?: number };
const mod = (await import(spec.module)) as Record<string, (...a: unknown[]) => Promise<Store>>;
// openAt: the openings race instead (a new store's first use by several processes at the same moment);
// a busy wait, so that the moment is the same to the millisecond.
while (spec.openAt !== undefined && Date.now() < spec.openAt);
const store = await mod[spec.exportName]!(...spec.args);
// Then the claims, all at the same moment (without openAt only they race, not the openings).
await new Promise((r) => setTimeout(r, Math.max(0, spec.at - Date.now())));
const claim = await store.claimItem(spec.id, { who: `pid ${process.pid}`, from: 'test' }, 'release');
if (claim) await claim.finish('released', `pid ${process.pid}`);
await store.close();
process.stdout.write(JSON.stringify({ got: claim !== undefined, pid: process.pid }));
