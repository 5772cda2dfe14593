// A user's preferences (digest cadence, language), kept in the store under their address.

import type { FastifyInstance } from 'fastify';

import { serviceSettings } from '../../config/service-sections.js';
import type { DigestCadence } from '../../store/types.js';
import { field, pageSession, postSession, sendPage, viewerOf, type WebContext } from '../context.js';
import { notice } from '../pages/layout.js';
import { LANGUAGES, preferencesPage } from '../pages/preferences.js';

const CADENCES: readonly DigestCadence[] = ['never', 'daily', 'hourly'];

/** The cadence of users who have not chosen one ([digest] cadence). */
function siteCadence(ctx: WebContext): DigestCadence {
  return serviceSettings(ctx.quarantine.settings, 'digest').cadence ?? 'daily';
}

export function preferenceRoutes(app: FastifyInstance, ctx: WebContext): void {
  app.get('/preferences', async (req, reply) => {
    const s = pageSession(req, reply);
    if (!s) return reply;
    const prefs = await ctx.quarantine.store.getPreferences(s.user);
    return sendPage(reply, 200, preferencesPage({ viewer: viewerOf(s), prefs, siteCadence: siteCadence(ctx) }));
  });

  app.post('/preferences', async (req, reply) => {
    const s = postSession(req, reply);
    if (!s) return reply;
    const digest = field(req.body, 'digest');
    const language = field(req.body, 'language');
    if (!CADENCES.includes(digest as DigestCadence) || language === undefined || !Object.hasOwn(LANGUAGES, language)) {
      return sendPage(reply, 400, notice('Refused', 'Choose a digest cadence and a language from the lists. Nothing was changed.', { viewer: viewerOf(s), kind: 'bad', back: { href: '/preferences', label: 'Back to the preferences' } }));
    }
    await ctx.quarantine.store.setPreferences(s.user, { digest: digest as DigestCadence, language });
    await ctx.quarantine.store.audit({ at: new Date().toISOString(), who: s.user, from: req.client.ip, action: 'preferences', detail: `digest=${digest} language=${language}` });
    ctx.log(`nqqueue web: preferences user=${JSON.stringify(s.user)} digest=${digest} language=${language}`);
    const prefs = await ctx.quarantine.store.getPreferences(s.user);
    return sendPage(reply, 200, preferencesPage({ viewer: viewerOf(s), prefs, siteCadence: siteCadence(ctx), message: 'Saved.' }));
  });
}
