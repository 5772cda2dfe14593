// `nqqueue web`: the quarantine console, a long-lived HTTP server of its own (under daemontools or
// systemd, like serve). It listens on a loopback address or a Unix socket only: TLS, and so the
// passwords' safety on the wire, comes from the site's reverse proxy in front of it.

import { accessSync, chmodSync, constants, unlinkSync } from 'node:fs';
import { connect } from 'node:net';

import { serviceSectionProblems, serviceSettings } from '../../config/service-sections.js';
import { formatProblem } from '../../config/problem.js';
import { describeError } from '../../errors.js';
import { makeLogger } from '../../log.js';
import { prepareHome } from '../../ops/owner.js';
import { pathsFrom, readSettings } from '../../queue/services.js';
import { closeInheritedFds } from '../../web/inherited-fds.js';
import { parseCommand } from '../args.js';

export const USAGE = `usage: nqqueue web
  The quarantine console: a web server on [web] listen of nqqueue.conf (HOST:PORT on a loopback address,
  default 127.0.0.1:8025, or a Unix socket path), for a TLS reverse proxy in front of it. Users log in
  with their mail address and mailbox password ([web] checkpassword, e.g. vpopmail's vchkpw) and see,
  release and delete their own held mail; [web] admins see and act on everything. Runs in the
  foreground (daemontools, systemd); run as root, it switches to the owner of $NQQUEUE_HOME. Logins
  are kept in memory: a restart logs everyone out. Rolls the metrics journal ($NQQUEUE_HOME/metrics/)
  up into the store every 10 seconds, as nqqueue serve does (metrics_journal). SIGTERM stops it.
  Settings ([web]): listen, checkpassword, checkpassword_timeout, admins, url, trust_proxy, session.
  Exit 111 when it cannot start (no checkpassword, a listen address that is not loopback, the store).
  -h, --help        this text
`;

/** Failed logins allowed per address and per client within FAILURE_WINDOW_MS. */
const MAX_FAILURES = 5;
const FAILURE_WINDOW_MS = 15 * 60_000;
/** Every login answer takes at least this long. */
const LOGIN_FLOOR_MS = 600;

function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** A socket left by a console that died is removed; a live one on it is an error. */
async function takeOverSocket(path: string): Promise<void> {
  const alive = await new Promise<boolean>((resolve) => {
    const c = connect(path);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
  if (alive) throw new Error(`something is listening on ${path} already (another nqqueue web?)`);
  try {
    unlinkSync(path);
  } catch {
    // there was none
  }
}

export async function run(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const parsed = parseCommand('web', USAGE, args, {});
  if (typeof parsed === 'number') return parsed;
  // Before any program is run: checkpassword and qmail-queue get only the descriptors given them.
  const inherited = closeInheritedFds(env);
  const logger = makeLogger(0);
  const log = (line: string) => logger.write(line);
  if (inherited.length > 0) log(`nqqueue web: closed the descriptors it was started with beyond 0-2 (${inherited.join(', ')}): the programs it runs must not inherit them`);
  const refuse = (why: string) => {
    // 111: daemontools and systemd try again later; the line says what to fix.
    log(`nqqueue web: cannot start: ${why}`);
    return 111;
  };
  let paths, settings, web;
  try {
    paths = pathsFrom(env);
    settings = readSettings(paths);
    const problems = serviceSectionProblems(settings.section('web'), settings.file ?? 'nqqueue.conf');
    if (problems.length > 0) return refuse(problems.map(formatProblem).join('; '));
    web = serviceSettings(settings, 'web');
  } catch (err) {
    return refuse(describeError(err));
  }
  const file = settings.file ?? `${paths.controlDir}/nqqueue.conf`;
  if (!web.checkpassword) {
    return refuse(`no checkpassword program: set it in the [web] section of ${file}, e.g. "checkpassword = /home/vpopmail/bin/vchkpw" (users log in with their mailbox password through it)`);
  }
  const listen = web.listen!;
  if ('host' in listen && !isLoopbackHost(listen.host)) {
    return refuse(
      `[web] listen = ${listen.host}:${listen.port} is not a loopback address: the console speaks plain HTTP and takes passwords, so it listens on 127.0.0.1, ::1 or a Unix socket, behind a TLS reverse proxy (README, The console)`,
    );
  }
  try {
    const user = prepareHome(paths.home, 'web');
    if (user !== undefined) log(`nqqueue web: running as ${user}, the owner of ${paths.home}`);
  } catch (err) {
    return refuse(describeError(err));
  }
  try {
    accessSync(web.checkpassword[0]!, constants.X_OK);
  } catch (err) {
    return refuse(`[web] checkpassword ${web.checkpassword[0]} cannot be run: ${describeError(err)}`);
  }
  // Loaded only now: --help and the refusals above load neither fastify nor the store.
  const [{ linkKey: siteLinkKey }, { openQuarantine }, { buildServer }] = await Promise.all([import('../../links/site-key.js'), import('../../quarantine/actions.js'), import('../../web/server.js')]);
  let quarantine;
  let linkKey: Buffer;
  try {
    quarantine = await openQuarantine(paths, settings);
    linkKey = await siteLinkKey(quarantine.store, paths.home);
  } catch (err) {
    return refuse(describeError(err));
  }
  const { app, ctx } = await buildServer({
    quarantine,
    log,
    config: {
      checkpassword: web.checkpassword,
      admins: web.admins ?? [],
      httpsUrl: web.url?.startsWith('https:') ?? false,
      trustProxy: web.trust_proxy ?? false,
      sessionMs: web.session!,
      linkKey,
      loginFloorMs: LOGIN_FLOOR_MS,
      checkTimeoutMs: web.checkpassword_timeout!,
      maxFailures: MAX_FAILURES,
      failureWindowMs: FAILURE_WINDOW_MS,
    },
  });
  const sweeper = setInterval(() => ctx.sessions.sweep(), 60_000);
  sweeper.unref();
  let where: string;
  try {
    if ('path' in listen) {
      await takeOverSocket(listen.path);
      // 0660 from its first moment: the proxy reaches it through the group (README, The console).
      const oldMask = process.umask(0o117);
      try {
        await app.listen({ path: listen.path });
      } finally {
        process.umask(oldMask);
      }
      chmodSync(listen.path, 0o660);
      where = listen.path;
    } else {
      await app.listen({ host: listen.host, port: listen.port });
      const addr = app.server.address();
      const port = typeof addr === 'object' && addr ? addr.port : listen.port;
      where = `http://${listen.host.includes(':') ? `[${listen.host}]` : listen.host}:${port}/`;
    }
  } catch (err) {
    await quarantine.store.close().catch(() => {});
    return refuse(`cannot listen on ${'path' in listen ? listen.path : `${listen.host}:${listen.port}`}: ${describeError(err)}`);
  }
  log(`nqqueue web: listening on ${where} (pid ${process.pid})`);
  // The journal of a site that runs the standalone program without `nqqueue serve` is rolled up here.
  const { RollupSchedule } = await import('../../metrics/rollup-schedule.js');
  const rollups = settings.metricsJournal
    ? new RollupSchedule({ home: paths.home, settings, store: async () => quarantine.store, log: (l) => log(`nqqueue web: metrics: ${l}`) })
    : undefined;
  rollups?.start();
  if (web.url !== undefined && new URL(web.url).pathname !== '/') {
    log(`nqqueue web: warning: [web] url ${web.url} has a path: the console's pages are at the root of their host (/login, /item/...), so the proxy must serve it at the root`);
  }
  if (web.url === undefined) log('nqqueue web: note: [web] url is not set: digest links cannot point here, and cookies are Secure only when trust_proxy sees X-Forwarded-Proto: https');
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      log(`nqqueue web: stopping (${signal})`);
      clearInterval(sweeper);
      void app
        .close()
        .then(() => rollups?.stop())
        .catch((err) => log(`nqqueue web: closing: ${describeError(err)}`))
        .then(() => quarantine.store.close())
        .catch((err) => log(`nqqueue web: closing the store: ${describeError(err)}`))
        .then(() => resolve(0));
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    // daemontools' svc -h: nothing to reload (settings are read at start); say so rather than die.
    process.on('SIGHUP', () => log('nqqueue web: SIGHUP: settings are read at start only; restart it (svc -t, systemctl restart) to read them again'));
  });
}
