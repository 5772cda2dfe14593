// The dashboard (administrators only): GET /dashboard?range=hour|day|week|month&host=NAME. Anyone else
// logged in is answered as for a page that does not exist, and is never shown the link.

import type { FastifyInstance } from 'fastify';

import { pageSession, sendPage, viewerOf, type WebContext } from '../context.js';
import { dashboardData, RANGES, type RangeName } from '../dashboard-data.js';
import { dashboardPage } from '../pages/dashboard.js';
import { notice } from '../pages/layout.js';

/** A host name as the rollups carry it (os.hostname()): anything longer is no host of ours. */
const MAX_HOST = 255;

export function dashboardRoutes(app: FastifyInstance, ctx: WebContext): void {
  app.get('/dashboard', async (req, reply) => {
    const s = pageSession(req, reply);
    if (!s) return reply;
    const viewer = viewerOf(s);
    if (!s.admin) return sendPage(reply, 404, notice('Not found', 'There is no such page.', { viewer, kind: 'bad', back: { href: '/', label: 'Back to the list' } }));
    const q = (req.query ?? {}) as Record<string, unknown>;
    const range: RangeName = typeof q.range === 'string' && Object.hasOwn(RANGES, q.range) ? (q.range as RangeName) : 'day';
    const host = typeof q.host === 'string' && q.host !== '' && q.host.length <= MAX_HOST ? q.host : undefined;
    const data = await dashboardData(ctx.quarantine.store, { range, ...(host === undefined ? {} : { host }) });
    return sendPage(reply, 200, dashboardPage({ viewer, data }));
  });
}
