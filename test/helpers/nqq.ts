// A NQqueue installation for one test: control directory, home, the qmail-queue stand-in, and a runner
// that starts bin/nqqueue the way qmail-smtpd does (see smtpd.ts).

import { chmodSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { after } from 'node:test';
import { fileURLToPath } from 'node:url';

import { makeStandIn, type Delivery, type StandIn, type StandInOptions } from './stand-in.js';
import { envelopeOf, NQQUEUE_BIN, runSmtpd, type RunOptions, type RunResult } from './smtpd.js';

export { envelopeOf };

/**
 * The program under test. The process-level suites run against `bin/nqqueue` by default; another
 * program with the same contract (the daemon-mode client) can be put in its place with NQQ_TEST_BIN.
 * scripts/run-tests.js runs them against the installed package's programs: NQQ_TEST_BIN is then its
 * nqqueue or nqqueue-qq, and NQQ_TEST_NQQUEUE (NQQUEUE_BIN) its nqqueue, which runs `serve`.
 */
export const PROGRAM = process.env.NQQ_TEST_BIN || NQQUEUE_BIN;
/** Daemon mode: each setup runs its own `nqqueue serve` for the client under test to talk to. */
export const DAEMON_MODE = PROGRAM.endsWith('nqqueue-qq');

export interface SetupOptions {
  rcpthosts?: string[];
  /** Files in the control directory: name → content (general.cfb, nqqueue.cfb, nqqueue.conf ...). */
  files?: Record<string, string>;
  standIn?: StandInOptions;
}

export interface Setup {
  readonly dir: string;
  readonly control: string;
  readonly home: string;
  readonly standIn: StandIn;
  /** The environment qmail-smtpd would pass, plus where NQqueue's files are. No PATH. */
  readonly env: Record<string, string>;
  write(name: string, content: string): void;
  /** An executable script in the test directory (for exec plugins); returns its absolute path. */
  script(name: string, content: string): string;
  run(o: RunInput): Promise<Outcome>;
  /** Run a subcommand (`nqqueue explain ...`) with this setup's environment. */
  command(args: string[], input?: Buffer | string, extraEnv?: Record<string, string>): { code: number | null; stdout: string; stderr: string };
  /** The same, without waiting: for commands that must run at the same moment as others. */
  commandAsync(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }>;
  /** Daemon mode: the PID of this setup's `nqqueue serve` (undefined before the first run, or standalone). */
  daemonPid(): number | undefined;
  cleanup(): void;
}

export interface RunInput extends Partial<Omit<RunOptions, 'envelope' | 'message'>> {
  from?: string | Buffer;
  to?: (string | Buffer)[];
  envelope?: Buffer;
  message?: Buffer | string;
  /** Extra environment on top of the setup's (TCPREMOTEIP, RELAYCLIENT, NQQUEUE_REJECT ...). */
  extraEnv?: Record<string, string>;
}

export interface Outcome extends RunResult {
  deliveries: Delivery[];
  /** Log lines NQqueue wrote on stderr. */
  logLines: string[];
}

export const SAMPLE = [
  'Received: from client.example (HELO helo.client.example) (192.0.2.7)',
  '  by mx.example.com with SMTP; 26 Nov 2026 10:00:00 -0000',
  'From: Sender <sender@client.example>',
  'To: rcpt@example.com',
  'Subject: test message',
  'Message-ID: <t1@client.example>',
  '',
  'Hello.',
  '',
].join('\n');

export const NODE = process.execPath;
export const REPO = fileURLToPath(new URL('../../../', import.meta.url));

export function setup(o: SetupOptions = {}): Setup {
  const dir = mkdtempSync(join(tmpdir(), 'nqq-test-'));
  const control = join(dir, 'control');
  const home = join(dir, 'home');
  mkdirSync(control);
  const standIn = makeStandIn(o.standIn ?? {});
  const env: Record<string, string> = {
    NQQUEUE_CONTROLDIR: control,
    NQQUEUE_HOME: home,
    NQQUEUE_QMAILQUEUE: standIn.path,
    TCPREMOTEIP: '192.0.2.7',
    TCPREMOTEHOST: 'client.example',
    TCPLOCALIP: '198.51.100.1',
    PROTO: 'TCP',
  };
  const write = (name: string, content: string) => writeFileSync(join(control, name), content);
  let daemon: ChildProcess | undefined;
  let starting: Promise<void> | undefined;
  // Runs made at the same moment (Promise.all) share one start: one daemon, as a site has.
  const ensureDaemon = (): Promise<void> => {
    if (!DAEMON_MODE || (daemon && daemon.exitCode === null && daemon.signalCode === null)) return Promise.resolve();
    starting ??= startDaemon().finally(() => (starting = undefined));
    return starting;
  };
  const startDaemon = async () => {
    const log = openSync(join(dir, 'serve.log'), 'a');
    daemon = spawn(NQQUEUE_BIN, ['serve'], {
      env: { NQQUEUE_CONTROLDIR: control, NQQUEUE_HOME: home, NQQUEUE_QMAILQUEUE: standIn.path },
      stdio: ['ignore', 'ignore', log],
    });
    closeSync(log);
    const sock = join(home, 'nqqueue.sock');
    for (let i = 0; i < 500; i++) {
      if (existsSync(sock)) return;
      if (daemon.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`nqqueue serve did not start: ${readFileSync(join(dir, 'serve.log'), 'utf8')}`);
  };
  writeFileSync(join(control, 'rcpthosts'), (o.rcpthosts ?? ['example.com']).join('\n') + '\n');
  writeFileSync(join(control, 'me'), 'mx.example.com\n');
  for (const [name, content] of Object.entries(o.files ?? {})) write(name, content);
  const s: Setup = {
    dir,
    control,
    home,
    standIn,
    env,
    write,
    script(name, content) {
      const p = join(dir, name);
      writeFileSync(p, content);
      chmodSync(p, 0o755);
      return p;
    },
    async run(i) {
      await ensureDaemon();
      const envelope = i.envelope ?? envelopeOf(i.from ?? 'sender@client.example', i.to ?? ['rcpt@example.com']);
      const r = await runSmtpd({
        bin: PROGRAM,
        ...i,
        message: i.message ?? SAMPLE,
        envelope,
        env: { ...env, ...(i.env ?? {}), ...(i.extraEnv ?? {}) },
      });
      return {
        ...r,
        deliveries: standIn.deliveries(),
        logLines: r.stderr.split('\n').filter((l) => l.startsWith('nqqueue:')),
      };
    },
    command(args, input, extraEnv) {
      const r = spawnSync(NQQUEUE_BIN, args, {
        env: { ...env, ...(extraEnv ?? {}) },
        input: input ?? '',
        cwd: dir,
        encoding: 'utf8',
        timeout: 60_000,
      });
      return { code: r.status, stdout: r.stdout, stderr: r.stderr };
    },
    commandAsync(args) {
      return new Promise((resolve) => {
        const c = spawn(NQQUEUE_BIN, args, { env, cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        c.stdout.on('data', (d: Buffer) => (stdout += d));
        c.stderr.on('data', (d: Buffer) => (stderr += d));
        c.on('close', (code) => resolve({ code, stdout, stderr }));
      });
    },
    daemonPid() {
      return daemon && daemon.exitCode === null ? daemon.pid : undefined;
    },
    cleanup() {
      if (daemon && daemon.exitCode === null && daemon.signalCode === null) daemon.kill('SIGKILL');
      standIn.cleanup();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return s;
}

/** A third-party plugin directory in the test directory (0755) with these plugins (name → module source, 0644). */
export function pluginDir(s: Setup, mods: Record<string, string>): string {
  const dir = join(s.dir, 'plugins');
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  for (const [name, src] of Object.entries(mods)) writeFileSync(join(dir, `${name}.js`), src, { mode: 0o644 });
  return dir;
}

/** setup() for one test file: every installation it makes is removed after the file's tests. */
export function setupsForThisFile(): (o?: SetupOptions) => Setup {
  const made: Setup[] = [];
  after(() => made.forEach((s) => s.cleanup()));
  return (o) => {
    const s = setup(o);
    made.push(s);
    return s;
  };
}

/** The message a recipient received: the stand-in's bytes with NQqueue's trace header taken off. */
export function withoutTrace(message: Buffer): Buffer {
  const text = message.toString('latin1');
  const m = /^Received: by [^\n]*(\n[ \t][^\n]*)*\n/.exec(text);
  if (!m || !m[0].includes('(NQqueue ')) throw new Error('no NQqueue trace header at the top');
  return message.subarray(Buffer.byteLength(m[0], 'latin1'));
}

/** The trace header NQqueue put on top of a delivered message. */
export function traceOf(message: Buffer): string {
  const text = message.toString('latin1');
  const m = /^Received: by [^\n]*(\n[ \t][^\n]*)*\n/.exec(text);
  if (!m) throw new Error('no trace header');
  return m[0];
}

export function rcptsOf(d: Delivery): string[] {
  return d.recipients.map((r) => r.toString('utf8'));
}
