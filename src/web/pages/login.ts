// The login form: mail address and mailbox password, checked by the site's checkpassword program.

import { html } from '../html.js';
import { page } from './layout.js';

export function loginPage(o: { csrf: string; login?: string; message?: string; kind?: 'bad' | 'ok' }): string {
  return page(
    'Log in',
    html`<div class="login">
<h1>Log in</h1>
<p class="muted">With your mail address and the password of your mailbox.</p>
${o.message ? html`<p class="notice ${o.kind ?? 'bad'}">${o.message}</p>` : ''}
<form method="post" action="/login">
<input type="hidden" name="csrf" value="${o.csrf}">
<label for="login">Mail address</label>
<input type="email" id="login" name="login" autocomplete="username" required maxlength="254" value="${o.login ?? ''}">
<label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="current-password" required maxlength="250">
<button type="submit" class="primary">Log in</button>
</form>
</div>`,
  );
}
