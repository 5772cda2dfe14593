// The key that signs digest links, where the site keeps it: in a store shared by several hosts (so a
// link sent by one host's digest run is good on every host's console), else in $NQQUEUE_HOME.

import { randomBytes } from 'node:crypto';

import type { Store } from '../store/types.js';
import { KEY_BYTES, signingKey } from './links.js';

export async function linkKey(store: Store, home: string): Promise<Buffer> {
  if (!store.shared) return signingKey(home);
  return store.siteSecret('link-signing-key', randomBytes(KEY_BYTES));
}
