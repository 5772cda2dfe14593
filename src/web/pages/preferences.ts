// A user's preferences: how often the digest of new held mail comes, and its language.

import type { DigestCadence, Preferences } from '../../store/types.js';
import { html } from '../html.js';
import { page, type Viewer } from './layout.js';

export const LANGUAGES: Readonly<Record<string, string>> = {
  en: 'English',
  de: 'Deutsch',
  fr: 'Français',
  es: 'Español',
  it: 'Italiano',
  nl: 'Nederlands',
  pt: 'Português',
  sv: 'Svenska',
};

const CADENCES = [
  ['never', 'Never'],
  ['daily', 'Once a day'],
  ['hourly', 'Once an hour'],
] as const;

/**
 * `siteCadence`: the site's `[digest] cadence`, which applies until the user chooses: the page shows it
 * chosen, and says so.
 */
export function preferencesPage(o: { viewer: Viewer; prefs: Preferences; siteCadence: DigestCadence; message?: string }): string {
  const { viewer, prefs } = o;
  const cadence = prefs.digest ?? o.siteCadence;
  const body = html`<h1>Preferences</h1>
${o.message ? html`<p class="notice ok">${o.message}</p>` : ''}
<form method="post" action="/preferences">
<input type="hidden" name="csrf" value="${viewer.csrf}">
<fieldset><legend>A digest of new held mail</legend>
${CADENCES.map(
  ([v, label]) => html`<label><input type="radio" name="digest" value="${v}"${cadence === v ? html` checked` : ''}> ${label}</label><br>`,
)}
${prefs.digest === undefined ? html`<p class="muted">You have not chosen yet: this is the site's default.</p>` : ''}
</fieldset>
<fieldset><legend>Language of the digest</legend>
<p class="muted">Digests are written in English for now; your choice is kept for when other languages are available.</p>
<select name="language">${Object.entries(LANGUAGES).map(
  ([tag, name]) => html`<option value="${tag}"${prefs.language === tag ? html` selected` : ''}>${name}</option>`,
)}</select>
</fieldset>
<button type="submit" class="primary">Save</button>
</form>`;
  return page('Preferences', body, viewer);
}
