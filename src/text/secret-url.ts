// A database URL as it may be shown in a message, a log line or check-config: without its password.

/**
 * `url` with any password in it replaced by `***`: the one after `user:` (up to the last `@`, since a
 * typed password may hold `@` or `/`), and libpq's `password=` and `sslpassword=` parameters. Works on
 * text that is not a valid URL too (a typo in the port): that is when it is echoed back.
 */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@?#]*):.*@/i, '$1:***@').replace(/([?&][^=&#]*password=)[^&#]*/gi, '$1***');
}
