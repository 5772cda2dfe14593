// The headers every answer carries. The pages have no script at all and one stylesheet of our own, so
// the policy allows nothing else: no script, no frame of us anywhere (frame-ancestors), forms only to
// us. A route that needs another policy (the preview frame) sets its own Content-Security-Policy and
// X-Frame-Options first; everything else here is always set.

import type { FastifyReply, FastifyRequest } from 'fastify';

export const PAGE_CSP = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

export function securityHeaders(req: FastifyRequest, reply: FastifyReply, https: boolean): void {
  if (!reply.hasHeader('content-security-policy')) reply.header('content-security-policy', PAGE_CSP);
  reply.header('x-content-type-options', 'nosniff');
  // The preview frame's document may be framed by the console itself (it says SAMEORIGIN); nothing else.
  if (!reply.hasHeader('x-frame-options')) reply.header('x-frame-options', 'DENY');
  // Digest links carry their token in the path: never to another site in a Referer.
  reply.header('referrer-policy', 'no-referrer');
  reply.header('cross-origin-opener-policy', 'same-origin');
  reply.header('cross-origin-resource-policy', 'same-origin');
  reply.header('permissions-policy', 'camera=(), microphone=(), geolocation=(), interest-cohort=()');
  if (https) reply.header('strict-transport-security', 'max-age=31536000');
  // Only the stylesheet may be kept; every page is private (someone's mail) or depends on the login.
  if (!(req.method === 'GET' && req.url === '/style.css' && reply.statusCode === 200)) reply.header('cache-control', 'no-store');
}
