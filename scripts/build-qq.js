#!/usr/bin/env node
// Compiles the daemon-mode client src/qq/nqqueue-qq.c (plain C, libc only) with the system compiler.
//
//   node scripts/build-qq.js                  bin/nqqueue-qq, optimised and hardened (part of npm run build);
//                                             linked statically (static PIE) where the C library allows it
//   node scripts/build-qq.js --install        the same, in an installed package (scripts/install.js): a
//                                             missing compiler or a failed compile is reported, exit 1
//   node scripts/build-qq.js --sanitize OUT   OUT with AddressSanitizer + UBSan, for the tests
//   node scripts/build-qq.js --fuzz [OUT]     the libFuzzer harness src/qq/fuzz-reply.c (needs clang)
//   node scripts/build-qq.js --fuzz --run S   build it in a temp dir and fuzz for S seconds
//
// The compiler is $CC, else cc (clang for --fuzz: $FUZZ_CC, else clang). Without any compiler the plain
// build says so loudly and leaves bin/nqqueue-qq out (the standalone bin/nqqueue needs none, and a
// fresh machine may have no compiler); the test suite fails under CI=true when the client is missing.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'src', 'qq', 'nqqueue-qq.c');
const harness = join(root, 'src', 'qq', 'fuzz-reply.c');

export const WARN = ['-std=c11', '-Wall', '-Wextra', '-Werror', '-D_GNU_SOURCE'];
export const RELEASE = [
  '-O2',
  '-fstack-protector-strong',
  '-D_FORTIFY_SOURCE=2',
  '-fPIE',
  '-pie',
  '-Wl,-z,relro,-z,now',
  '-Wl,-z,noexecstack',
];
/** With RELEASE: no dynamic loader at start (glibc's static PIE: libc.a and rcrt1.o). */
export const STATIC = ['-static-pie'];
export const SANITIZE = ['-O1', '-g', '-fsanitize=address,undefined', '-fno-sanitize-recover=all', '-fno-omit-frame-pointer'];
const FUZZ = ['-O1', '-g', '-fsanitize=fuzzer,address,undefined', '-fno-sanitize-recover=all', '-DNQQ_NO_MAIN'];

function die(msg) {
  process.stderr.write(`build-qq: ${msg}\n`);
  process.exit(1);
}

function compile(cc, args) {
  const r = spawnSync(cc, args, { stdio: 'inherit' });
  if (r.error) {
    const why = r.error.code === 'ENOENT' ? `no C compiler: '${cc}' not found (install gcc or set CC)` : r.error.message;
    die(why);
  }
  if (r.status !== 0) die(`${cc} ${args.join(' ')}\nfailed (${r.status ?? r.signal})`);
}

const argv = process.argv.slice(2);
const cc = process.env.CC || 'cc';

if (argv[0] === '--sanitize') {
  const out = argv[1];
  if (!out) die('--sanitize needs an output path');
  mkdirSync(dirname(resolve(out)), { recursive: true });
  compile(cc, [...WARN, ...SANITIZE, '-o', resolve(out), src]);
} else if (argv[0] === '--fuzz') {
  const fcc = process.env.FUZZ_CC || 'clang';
  const run = argv[1] === '--run';
  const seconds = run ? Number(argv[2] ?? 60) : 0;
  if (run && !(Number.isInteger(seconds) && seconds > 0)) die('--run needs a number of seconds');
  const dir = run ? mkdtempSync(join(tmpdir(), 'nqq-fuzz-')) : undefined;
  const out = run ? join(dir, 'fuzz-reply') : resolve(argv[1] ?? join(tmpdir(), 'nqqueue-fuzz-reply'));
  compile(fcc, [...WARN, ...FUZZ, '-o', out, harness, src]);
  if (run) {
    const corpus = join(dir, 'corpus');
    mkdirSync(corpus);
    process.stdout.write(`build-qq: fuzzing ${out} for ${seconds} s (corpus ${corpus})\n`);
    const r = spawnSync(out, [`-max_total_time=${seconds}`, '-max_len=4096', `-artifact_prefix=${dir}/`, corpus], {
      stdio: 'inherit',
    });
    if (r.status !== 0) die(`fuzzer stopped with ${r.status ?? r.signal}: see the crash input in ${dir}`);
  } else {
    process.stdout.write(`build-qq: ${out}\n`);
  }
} else if (argv.length === 0 || (argv.length === 1 && argv[0] === '--install')) {
  const install = argv[0] === '--install';
  const again = install ? 'install nqqueue again' : 'run npm run build again';
  const out = join(root, 'bin', 'nqqueue-qq');
  if (spawnSync(cc, ['--version'], { stdio: 'ignore' }).error) {
    process.stderr.write(
      `build-qq: WARNING: no C compiler ('${cc}' not found): bin/nqqueue-qq (daemon mode) is NOT built.\n` +
        `build-qq: the standalone bin/nqqueue works; install gcc (or set CC) and ${again} for daemon mode.\n`,
    );
    process.exit(install ? 1 : 0);
  }
  // Static: qmail starts the client for every message, and the dynamic loader's work (mapping libc,
  // relocating) is most of its start-up. Without a static C library, the usual dynamic link.
  const r = spawnSync(cc, [...WARN, ...RELEASE, ...STATIC, '-o', out, src], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    if (!install) compile(cc, [...WARN, ...RELEASE, '-o', out, src]);
    else {
      const d = spawnSync(cc, [...WARN, ...RELEASE, '-o', out, src], { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
      if (d.error || d.status !== 0) {
        rmSync(out, { force: true });
        process.stderr.write(
          `${(d.error?.message ?? `${d.stdout}${d.stderr}`).trim()}\n` +
            `build-qq: WARNING: ${cc} could not compile src/qq/nqqueue-qq.c (exit ${d.status ?? d.signal}): bin/nqqueue-qq (daemon mode) is NOT built.\n` +
            `build-qq: the standalone bin/nqqueue works; fix the compiler (or set CC) and ${again} for daemon mode.\n`,
        );
        process.exit(1);
      }
    }
  }
  chmodSync(out, 0o755);
  if (install) process.stdout.write(`bin/nqqueue-qq (daemon mode) compiled with ${cc}${r.status === 0 ? ', static' : ''}\n`);
} else {
  die(`unknown arguments: ${argv.join(' ')}`);
}
