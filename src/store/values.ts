// What every store engine reads and checks the same way: dates, item statuses, digest cadences and
// preferences as kept in a row, the default claim age.

import type { DigestCadence, ItemStatus, Preferences } from './types.js';

/** A claim older than this is taken to be a dead process's (the interface's default). */
export const DEFAULT_STALE_MS = 3600_000;

export const CADENCES: readonly DigestCadence[] = ['never', 'daily', 'hourly'];
export const STATUSES: readonly ItemStatus[] = ['held', 'releasing', 'released', 'deleted', 'expired'];
export const DEFAULT_PREFERENCES: Preferences = Object.freeze({ language: 'en' });
/** The digest column's value for "not chosen" (the column is NOT NULL). */
export const SITE_CADENCE = 'default';
export const LANGUAGE = /^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8}){0,7}$/;

/** A stored cadence, or undefined when the user never chose one. */
export function storedCadence(v: unknown): DigestCadence | undefined {
  return v === null || v === undefined || v === SITE_CADENCE ? undefined : (String(v) as DigestCadence);
}

/** Preferences as read from a row: a cadence only when one was chosen. */
export function preferencesOf(digest: unknown, language: unknown): Preferences {
  const cadence = storedCadence(digest);
  return cadence === undefined ? { language: String(language) } : { digest: cadence, language: String(language) };
}

/** A date given to the store, as ISO 8601 UTC; a TypeError for what is not a date. */
export function iso(value: string, what: string): string {
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) throw new TypeError(`${what}: not a date: ${JSON.stringify(String(value).slice(0, 60))}`);
  return d.toISOString();
}
