#!/usr/bin/env node
// Compiles the daemon-mode client src/qq/nqqueue-qq.c (plain C, libc only) with the system compiler.
//
//   node scripts/build-qq.js                  bin/nqqueue-qq, optimised and hardened (part of npm run build);
//                                             linked statically (static PIE) where the C library allows it
//   node scripts/build-qq.js --install        the same, in an installed package (scripts/install.js): a
//                                             missing compiler or a failed compile is reported, exit 1
//   node scripts/build-qq.js --cc OUT         OUT, the same static build by $CC or cc, never musl-gcc (the
//                                             bench's glibc client beside the musl one)
//   node scripts/build-qq.js --sanitize OUT   OUT with AddressSanitizer + UBSan, for the tests
//   node scripts/build-qq.js --fuzz [OUT]     the libFuzzer harness src/qq/fuzz-reply.c (needs clang)
//   node scripts/build-qq.js --fuzz --run S   build it in a temp dir and fuzz for S seconds
//
// The compiler is $CC, else musl-gcc where it is installed (Debian's musl-tools), else cc (clang for
// --fuzz: $FUZZ_CC, else clang; --sanitize: $CC, else cc). musl first: qmail starts the client for every
// message, and a static glibc program spends its first fifth of a millisecond in init_cpu_features and
// the cache-size probes (a run of CPUID instructions, each a trap to the hypervisor on a virtual machine)
// before main; musl's start-up does none of that (`npm run bench` times both: the client-alone table).
// Without any compiler the plain build says so loudly and leaves bin/nqqueue-qq out (the standalone
// bin/nqqueue needs none, and a fresh machine may have no compiler); the test suite fails under CI=true
// when the client is missing.
import { spawnSync } from 'node:child_process';
import { chmodSync, closeSync, mkdirSync, mkdtempSync, openSync, readSync, rmSync } from 'node:fs';
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

/**
 * musl-gcc's arguments for a static PIE. Its specs file (Debian's and musl's own) links a static program
 * without PIE and turns -static-pie into a dynamic link against ld-musl; the static PIE is its rcrt1.o,
 * from the directory of the Scrt1.o it names, linked with -static -pie and no interpreter. undefined if
 * that directory cannot be found.
 */
function muslStaticPie() {
  const r = spawnSync('musl-gcc', ['-###', '-x', 'c', '/dev/null', '-o', join(tmpdir(), 'nqq-musl-probe')], { encoding: 'utf8' });
  const words = `${r.stderr ?? ''}`.split(/\s+/).map((w) => w.replace(/^"|"$/g, ''));
  const scrt = words.find((w) => w.endsWith('/Scrt1.o'));
  const begin = words.find((w) => w.endsWith('/crtbeginS.o'));
  const end = words.find((w) => w.endsWith('/crtendS.o'));
  if (!scrt || !begin || !end) return undefined;
  const lib = dirname(scrt);
  return {
    before: ['-nostartfiles', join(lib, 'rcrt1.o'), join(lib, 'crti.o'), begin],
    after: [end, join(lib, 'crtn.o'), '-Wl,-static', '-Wl,-pie', '-Wl,--no-dynamic-linker', '-Wl,-z,text'],
  };
}

/** Whether the ELF file at `path` is a PIE with no program interpreter (a static PIE). */
function staticPie(path) {
  const fd = openSync(path, 'r');
  try {
    const h = Buffer.alloc(64);
    readSync(fd, h, 0, 64, 0);
    if (h.readUInt32BE(0) !== 0x7f454c46 || h[4] !== 2 || h.readUInt16LE(16) !== 3) return false;
    const phoff = Number(h.readBigUInt64LE(32));
    const size = h.readUInt16LE(54);
    const count = h.readUInt16LE(56);
    const ph = Buffer.alloc(size * count);
    readSync(fd, ph, 0, ph.length, phoff);
    for (let i = 0; i < count; i++) if (ph.readUInt32LE(i * size) === 3) return false;
    return true;
  } finally {
    closeSync(fd);
  }
}

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
const found = (c) => !spawnSync(c, ['--version'], { stdio: 'ignore' }).error;

if (argv[0] === '--cc') {
  const out = argv[1];
  if (!out) die('--cc needs an output path');
  mkdirSync(dirname(resolve(out)), { recursive: true });
  compile(cc, [...WARN, ...RELEASE, ...STATIC, '-o', resolve(out), src]);
} else if (argv[0] === '--sanitize') {
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
  const noCompiler = () => {
    process.stderr.write(
      `build-qq: WARNING: no C compiler ('${cc}' not found): bin/nqqueue-qq (daemon mode) is NOT built.\n` +
        `build-qq: the standalone bin/nqqueue works; install gcc (or set CC) and ${again} for daemon mode.\n`,
    );
    process.exit(install ? 1 : 0);
  };
  // Static: qmail starts the client for every message, and the dynamic loader's work (mapping libc,
  // relocating) is most of its start-up; musl's static start the least of all. A musl-gcc that cannot
  // make a static PIE leaves it to cc; without a static C library there, the usual dynamic link.
  let used = cc;
  let r;
  if (!process.env.CC && found('musl-gcc')) {
    const pie = muslStaticPie();
    if (pie) {
      r = spawnSync('musl-gcc', [...WARN, ...RELEASE, ...pie.before, '-o', out, src, ...pie.after], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
      if (!r.error && r.status === 0 && !staticPie(out)) r = { status: 1, stderr: 'the result is not a static PIE' };
    }
    if (r && !r.error && r.status === 0) used = 'musl-gcc';
    else {
      rmSync(out, { force: true });
      process.stderr.write(`build-qq: musl-gcc could not make a static client (${`${r?.error?.message ?? r?.stderr ?? 'its rcrt1.o not found'}`.trim().split('\n')[0]}); using ${cc}\n`);
    }
  }
  if (used === cc) {
    if (!found(cc)) noCompiler();
    r = spawnSync(cc, [...WARN, ...RELEASE, ...STATIC, '-o', out, src], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  }
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
  if (install) process.stdout.write(`bin/nqqueue-qq (daemon mode) compiled with ${used}${r.status === 0 ? ', static' : ''}\n`);
} else {
  die(`unknown arguments: ${argv.join(' ')}`);
}
