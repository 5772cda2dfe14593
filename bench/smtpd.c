/*
 * smtpd: qmail-smtpd's side of a QMAILQUEUE program, for timing. `npm run bench` starts one per Node.js
 * line and hands it one message at a time; it runs the program as qmail.c's qmail_open and qmail_close
 * do (QMAIL.md): a pipe on fd 0 for the message, one on fd 1 for the envelope, fd 2 for its log, the
 * write end of the error pipe on fd 6; vfork and execv; the whole message written, fd 0 closed; the
 * envelope written, fd 1 closed; fd 6 read to EOF; then waitpid. The time is taken from before the
 * vfork to waitpid's return (CLOCK_MONOTONIC). While a program runs, this process only waits in a
 * system call, as qmail-smtpd does: the bench's node process, which would otherwise spawn the program
 * and feed its pipes, sleeps meanwhile, so what is timed is the program and not the harness.
 *
 * A request on fd 0, every number a u32 in host order:
 *   timeout_ms, path, argc, argc × arg, envc, envc × NAME=VALUE, cwd, message, envelope
 * where each string or buffer is its length then its bytes. The answer on fd 1:
 *   status (u32: exit code, or 256 + signal), pid (u32), ns (u64), timed_out (u32),
 *   stderr (length + bytes), error pipe (length + bytes)
 * fd 2 of the program is a memfd, read back after its exit (it may write more than a pipe holds). On
 * EOF of fd 0 this program exits 0; on a malformed request, 111.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int read_all(int fd, void *buf, size_t n) {
  char *p = buf;
  while (n > 0) {
    ssize_t r = read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

static int write_all(int fd, const void *buf, size_t n) {
  const char *p = buf;
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static uint32_t get_u32(int *eof) {
  uint32_t v;
  if (read_all(0, &v, 4) < 0) {
    *eof = 1;
    return 0;
  }
  return v;
}

/* A length and that many bytes, NUL-terminated (the NUL not counted in *len). */
static char *get_buf(uint32_t *len) {
  int eof = 0;
  uint32_t n = get_u32(&eof);
  if (eof || n > (1u << 30)) exit(111);
  char *b = malloc((size_t)n + 1);
  if (!b || (n > 0 && read_all(0, b, n) < 0)) exit(111);
  b[n] = '\0';
  if (len) *len = n;
  return b;
}

static void put_buf(const char *b, uint32_t n) {
  if (write_all(1, &n, 4) < 0 || (n > 0 && write_all(1, b, n) < 0)) exit(111);
}

static volatile pid_t child;
static volatile sig_atomic_t timed_out;

static void on_alarm(int sig) {
  (void)sig;
  timed_out = 1;
  if (child > 0) kill(child, SIGKILL);
}

/* fd moved to `to` (closing what was there), unless it is there already. */
static int move_fd(int fd, int to) {
  if (fd == to) return 0;
  if (dup2(fd, to) < 0) return -1;
  return close(fd);
}

int main(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm; /* no SA_RESTART: a write into a program that stopped reading ends */
  sigaction(SIGALRM, &sa, 0);
  signal(SIGPIPE, SIG_IGN);
  for (;;) {
    int eof = 0;
    uint32_t timeout_ms = get_u32(&eof);
    if (eof) return 0;
    char *path = get_buf(0);
    uint32_t argc = get_u32(&eof);
    if (eof || argc > 1000) return 111;
    char **argv = calloc((size_t)argc + 2, sizeof *argv);
    argv[0] = path;
    for (uint32_t i = 0; i < argc; i++) argv[i + 1] = get_buf(0);
    uint32_t envc = get_u32(&eof);
    if (eof || envc > 10000) return 111;
    char **envp = calloc((size_t)envc + 1, sizeof *envp);
    for (uint32_t i = 0; i < envc; i++) envp[i] = get_buf(0);
    char *cwd = get_buf(0);
    uint32_t mlen, elen;
    char *message = get_buf(&mlen);
    char *envelope = get_buf(&elen);

    int log = memfd_create("smtpd-log", MFD_CLOEXEC);
    int pim[2], pie[2], pierr[2];
    if (log < 0 || pipe2(pim, O_CLOEXEC) < 0 || pipe2(pie, O_CLOEXEC) < 0 || pipe2(pierr, O_CLOEXEC) < 0) return 111;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    timed_out = 0;
    pid_t pid = vfork();
    if (pid == 0) {
      /* As qmail_open: fd 0 the message, fd 1 the envelope, fd 6 the error pipe (fd 2 the log). The
       * descriptors are moved out of the way first, so that none lands on another's number. */
      int m = fcntl(pim[0], F_DUPFD, 10), e = fcntl(pie[0], F_DUPFD, 10), x = fcntl(pierr[1], F_DUPFD, 10), l = fcntl(log, F_DUPFD, 10);
      if (m < 0 || e < 0 || x < 0 || l < 0) _exit(120);
      if (move_fd(m, 0) < 0 || move_fd(e, 1) < 0 || move_fd(l, 2) < 0 || move_fd(x, 6) < 0) _exit(120);
      if (chdir(cwd) < 0) _exit(61);
      execve(path, argv, envp);
      _exit(120);
    }
    if (pid < 0) return 111;
    child = pid;
    if (timeout_ms > 0) {
      struct itimerval it = { { 0, 0 }, { timeout_ms / 1000, (timeout_ms % 1000) * 1000 } };
      setitimer(ITIMER_REAL, &it, 0);
    }
    close(pim[0]);
    close(pie[0]);
    close(pierr[1]);
    /* qmail_put until the end of DATA, then qmail_from/qmail_to, then qmail_close: a write error
     * (the program stopped reading) stops the writing, as in qmail. */
    if (write_all(pim[1], message, mlen) == 0) {
      close(pim[1]);
      pim[1] = -1;
      write_all(pie[1], envelope, elen);
    }
    if (pim[1] >= 0) close(pim[1]);
    close(pie[1]);
    char errtext[256];
    uint32_t errlen = 0;
    for (;;) {
      ssize_t r = read(pierr[0], errtext + errlen, sizeof errtext - 1 - errlen);
      if (r < 0 && errno == EINTR) {
        if (timed_out) break;
        continue;
      }
      if (r <= 0) break;
      errlen += (uint32_t)r;
      if (errlen == sizeof errtext - 1) break;
    }
    close(pierr[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    clock_gettime(CLOCK_MONOTONIC, &t1);
    struct itimerval off = { { 0, 0 }, { 0, 0 } };
    setitimer(ITIMER_REAL, &off, 0);
    child = 0;

    uint32_t code = WIFEXITED(status) ? (uint32_t)WEXITSTATUS(status) : 256u + (uint32_t)WTERMSIG(status);
    uint32_t upid = (uint32_t)pid;
    uint64_t ns = (uint64_t)(t1.tv_sec - t0.tv_sec) * 1000000000u + (uint64_t)t1.tv_nsec - (uint64_t)t0.tv_nsec;
    uint32_t to = timed_out ? 1 : 0;
    struct stat st;
    if (fstat(log, &st) < 0) return 111;
    uint32_t loglen = st.st_size > (1 << 24) ? (1 << 24) : (uint32_t)st.st_size;
    char *logtext = malloc((size_t)loglen + 1);
    if (!logtext || (loglen > 0 && pread(log, logtext, loglen, 0) != (ssize_t)loglen)) return 111;
    close(log);
    if (write_all(1, &code, 4) < 0 || write_all(1, &upid, 4) < 0 || write_all(1, &ns, 8) < 0 || write_all(1, &to, 4) < 0) return 111;
    put_buf(logtext, loglen);
    put_buf(errtext, errlen);
    free(logtext);
    free(message);
    free(envelope);
    free(cwd);
    for (uint32_t i = 0; i < argc; i++) free(argv[i + 1]);
    free(argv);
    for (uint32_t i = 0; i < envc; i++) free(envp[i]);
    free(envp);
    free(path);
  }
}
