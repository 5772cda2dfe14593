// A real browser for the tests: Debian's headless Chromium (/usr/bin/chromium, installed by .ci/run)
// driven by playwright-core over the DevTools protocol — no browser is downloaded. Each browser has a
// fresh profile in a temporary directory; each page records every network request (of the page and of
// every frame in it), every console message, every dialog (dismissed) and every uncaught error, so a
// test can say that nothing ran and nothing left.
//
// Where Chromium is missing a browser test is skipped, saying why — except under CI=true, where it
// fails: CI installs it, so a missing browser there is a broken setup, not a reason to pass.

import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';

import { chromium, type BrowserContext, type Dialog, type Frame, type Page } from 'playwright-core';

/** The browser binary (NQQ_CHROMIUM overrides it, for the harness's own test). */
export const CHROMIUM = process.env.NQQ_CHROMIUM ?? '/usr/bin/chromium';

/** Flags for a browser that talks to nothing but the pages it is sent to. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox', // root in CI: Chromium's own sandbox needs an unprivileged user
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-default-apps',
  '--disable-extensions',
  '--no-default-browser-check',
  '--disable-features=Translate,OptimizationHints,MediaRouter,InterestFeedContentSuggestions',
  '--metrics-recording-only',
  '--password-store=basic',
];

/** Why browser tests cannot run here ('' when they can). */
export function browserMissing(): string {
  return existsSync(CHROMIUM) ? '' : `${CHROMIUM} is not installed (Debian: apt-get install -y chromium; .ci/run does it)`;
}

/**
 * A test that needs the browser: skipped with the reason when Chromium is missing, failed instead when
 * CI=true (where .ci/run has installed it).
 */
export function browserTest(name: string, fn: (t: TestContext) => Promise<void>, options: { timeout?: number } = {}): void {
  const missing = browserMissing();
  if (missing !== '' && process.env.CI !== 'true') {
    test(name, { skip: `browser test skipped: ${missing}` }, () => {});
    return;
  }
  test(name, { timeout: options.timeout ?? 120_000 }, async (t) => {
    if (missing !== '') throw new Error(`CI=true but ${missing}: the browser tests cannot run`);
    await fn(t);
  });
}

export interface RecordedRequest {
  readonly url: string;
  readonly method: string;
  readonly resourceType: string;
  /** The URL of the frame that made it (the page's own or a frame's). */
  readonly frameUrl: string;
  /** Made by a frame inside the page, not the page itself. */
  readonly fromSubframe: boolean;
  readonly navigation: boolean;
}

export interface RecordedPage {
  readonly page: Page;
  readonly requests: RecordedRequest[];
  readonly console: { type: string; text: string }[];
  readonly dialogs: { type: string; message: string }[];
  readonly errors: string[];
  /** Requests to anywhere but `origin` (e.g. the console's own). */
  requestsOutside(origin: string): RecordedRequest[];
  /** Requests made by frames inside the page (the preview's). */
  subframeRequests(): RecordedRequest[];
}

export interface TestBrowser {
  readonly context: BrowserContext;
  readonly profile: string;
  /** A new page, recording. Requests to anywhere but `allowOrigin` are recorded and then aborted: nothing reaches the internet. */
  newPage(allowOrigin?: string): Promise<RecordedPage>;
  stop(): Promise<void>;
}

function frameUrl(frame: Frame | null): string {
  try {
    return frame?.url() ?? '';
  } catch {
    return '';
  }
}

export async function startBrowser(): Promise<TestBrowser> {
  const profile = mkdtempSync(join(tmpdir(), 'nqq-chromium-'));
  let context: BrowserContext;
  try {
    // playwright-core refuses --user-data-dir in args: a persistent context is how a fresh profile is given.
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      timeout: 60_000,
      viewport: { width: 1100, height: 800 },
      serviceWorkers: 'block',
      acceptDownloads: false,
    });
  } catch (err) {
    rmSync(profile, { recursive: true, force: true });
    throw err;
  }
  return {
    context,
    profile,
    async newPage(allowOrigin) {
      const page = await context.newPage();
      const requests: RecordedRequest[] = [];
      const consoleMessages: { type: string; text: string }[] = [];
      const dialogs: { type: string; message: string }[] = [];
      const errors: string[] = [];
      page.on('request', (r) => {
        let frame: Frame | null = null;
        try {
          frame = r.frame();
        } catch {
          // A request of a service worker has no frame.
        }
        requests.push({
          url: r.url(),
          method: r.method(),
          resourceType: r.resourceType(),
          frameUrl: frameUrl(frame),
          fromSubframe: frame !== null && frame !== page.mainFrame(),
          navigation: r.isNavigationRequest(),
        });
      });
      page.on('console', (m) => consoleMessages.push({ type: m.type(), text: m.text() }));
      page.on('dialog', (d: Dialog) => {
        dialogs.push({ type: d.type(), message: d.message() });
        void d.dismiss().catch(() => {});
      });
      page.on('pageerror', (e) => errors.push(String(e)));
      page.on('websocket', (w) => requests.push({ url: w.url(), method: 'WEBSOCKET', resourceType: 'websocket', frameUrl: '', fromSubframe: false, navigation: false }));
      await page.route('**/*', (route) => {
        const url = route.request().url();
        if (allowOrigin !== undefined && (url === allowOrigin || url.startsWith(`${allowOrigin}/`))) return route.continue();
        // data: and about: never reach the network; anything else is recorded above and stopped here.
        if (/^(?:data|about|blob):/.test(url)) return route.continue();
        return route.abort('blockedbyclient');
      });
      return {
        page,
        requests,
        console: consoleMessages,
        dialogs,
        errors,
        requestsOutside: (origin) => requests.filter((r) => !(r.url === origin || r.url.startsWith(`${origin}/`)) && !/^(?:data|about):/.test(r.url)),
        subframeRequests: () => requests.filter((r) => r.fromSubframe),
      };
    },
    async stop() {
      try {
        await context.close();
      } finally {
        rmSync(profile, { recursive: true, force: true });
      }
    },
  };
}
