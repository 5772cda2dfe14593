// The frame of every page: title, the bar with the user's name and the logout button (a POST with the
// session's CSRF token: logging out is a change too), the content.

import { html, type Html } from '../html.js';

export interface Viewer {
  readonly user: string;
  readonly admin: boolean;
  readonly csrf: string;
}

export function page(title: string, body: Html, viewer?: Viewer): string {
  const bar = viewer
    ? html`<nav><a href="/">Held mail</a><a href="/preferences">Preferences</a><a href="/lists">Lists</a>${viewer.admin ? html`<a href="/dashboard">Dashboard</a>` : ''}</nav>
<span class="muted">${viewer.user}${viewer.admin ? ' (administrator)' : ''}</span>
<form method="post" action="/logout"><input type="hidden" name="csrf" value="${viewer.csrf}"><button type="submit">Log out</button></form>`
    : html`<nav></nav>`;
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${title} · NQqueue quarantine</title>
<link rel="stylesheet" href="/style.css">
</head>
<body>
<header class="top"><span class="brand">NQqueue quarantine</span>${bar}</header>
<main>
${body}
</main>
</body>
</html>
`.text;
}

/** A page that only says something: a result, a refusal, an error. */
export function notice(title: string, text: string, o: { viewer?: Viewer; kind?: 'ok' | 'bad'; back?: { href: string; label: string } } = {}): string {
  return page(
    title,
    html`<h1>${title}</h1>
<p class="notice ${o.kind ?? ''}">${text}</p>
${o.back ? html`<p><a href="${o.back.href}">${o.back.label}</a></p>` : ''}`,
    o.viewer,
  );
}
