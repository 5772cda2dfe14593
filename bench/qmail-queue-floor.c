/*
 * qmail-queue-floor: a fast qmail-queue stand-in for `npm run bench` — the floor every NQqueue figure is
 * measured against. It does what the real qmail-queue costs, and no more:
 *
 *   - reads the message from fd 0 to EOF, writing it to a new file as it goes (like qmail-queue, it never
 *     holds the message in memory), then the envelope from fd 1 to EOF;
 *   - validates the envelope as qmail-queue.c does: empty or unterminated → 54, first byte not F or a
 *     record not starting with T or bytes after the final NUL → 91, an address of 1003 bytes or more → 11;
 *     a read error → 54; a write error → 53;
 *   - fsyncs in qmail-queue.c's order: the message as soon as fd 0 is at EOF, before fd 1 is read (its
 *     fsync(messfd)), then, the envelope written, the file again (its fsync(intdfd)); then renames it into
 *     place (its link into todo/) and exits 0. Two fsyncs, at the moments the real one makes them: a caller
 *     that hands over the message before the envelope is ready gets the first one done in the meantime,
 *     as it would from qmail-queue.
 *
 * The record directory is argv[1], else the compile-time FLOOR_DIR (NQqueue runs qmail-queue with no
 * arguments). Each accepted call leaves DIR/<pid>.<ns> holding
 *   "nqq-stand-in-delivery message=<20 digits> envelope=<20 digits> reads=<10 digits>\n" + message + envelope
 * (the format of test/helpers/qmail-queue-stand-in.ts, zero-padded so the header is written last).
 * Compiled with -DFLOOR_RSS, it also appends "<pid> <VmHWM KiB>\n" to DIR/rss.log.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef FLOOR_DIR
#define FLOOR_DIR "/tmp/nqqueue-floor"
#endif

#define ADDR 1003
#define HEAD_LEN 98 /* the header line with 20-digit sizes and a 10-digit count of reads, newline included */

static char tmpname[4096];
static int tmpfd = -1;

static void die(int code) {
  if (tmpfd >= 0) {
    close(tmpfd);
    unlink(tmpname);
  }
  _exit(code);
}

static void writeall(int fd, const char *buf, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, buf, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      die(53);
    }
    buf += n;
    len -= (size_t)n;
  }
}

/* Envelope check in stream order, as qmail-queue.c reads it. */
static int check_envelope(const unsigned char *e, size_t len) {
  size_t i = 0, alen;
  if (len == 0) return 54;
  if (e[i++] != 'F') return 91;
  for (alen = 0;; alen++) {
    if (alen >= ADDR) return 11;
    if (i >= len) return 54;
    if (e[i++] == 0) break;
  }
  for (;;) {
    if (i >= len) return 54;
    unsigned char ch = e[i++];
    if (ch == 0) break;
    if (ch != 'T') return 91;
    for (alen = 0;; alen++) {
      if (alen >= ADDR) return 11;
      if (i >= len) return 54;
      if (e[i++] == 0) break;
    }
  }
  if (i != len) return 91;
  return 0;
}

int main(int argc, char **argv) {
  const char *dir = argc > 1 ? argv[1] : FLOOR_DIR;
  static char buf[65536];
  unsigned long long msglen = 0;
  unsigned char *env = NULL;
  size_t envlen = 0, envcap = 0;
  unsigned long reads = 0;
  pid_t pid = getpid();

  snprintf(tmpname, sizeof tmpname, "%s/.tmp.%ld", dir, (long)pid);
  tmpfd = open(tmpname, O_WRONLY | O_CREAT | O_TRUNC | O_EXCL | O_CLOEXEC, 0600);
  if (tmpfd < 0) _exit(errno == ENOSPC ? 53 : 61);
  /* Room for the header, written last when the sizes are known. */
  memset(buf, ' ', HEAD_LEN);
  writeall(tmpfd, buf, HEAD_LEN);

  for (;;) {
    ssize_t n = read(0, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      die(54);
    }
    if (n == 0) break;
    writeall(tmpfd, buf, (size_t)n);
    msglen += (unsigned long long)n;
  }
  if (fsync(tmpfd) != 0) die(53);
  for (;;) {
    if (envlen + 65536 > envcap) {
      envcap = envcap ? envcap * 2 : 65536;
      env = realloc(env, envcap);
      if (!env) die(51);
    }
    ssize_t n = read(1, env + envlen, envcap - envlen);
    if (n < 0) {
      if (errno == EINTR) continue;
      die(54);
    }
    if (n == 0) break;
    envlen += (size_t)n;
    reads++;
  }
  int bad = check_envelope(env, envlen);
  if (bad) die(bad);
  writeall(tmpfd, (const char *)env, envlen);

  {
    char head[HEAD_LEN + 1];
    int k = snprintf(head, sizeof head, "nqq-stand-in-delivery message=%020llu envelope=%020llu reads=%010lu\n", msglen,
                     (unsigned long long)envlen, reads);
    if (k != HEAD_LEN) die(81);
    if (pwrite(tmpfd, head, HEAD_LEN, 0) != HEAD_LEN) die(53);
  }
  if (fsync(tmpfd) != 0) die(53);
  if (close(tmpfd) != 0) {
    tmpfd = -1;
    unlink(tmpname);
    _exit(53);
  }
  tmpfd = -1;

  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  char final[4096];
  snprintf(final, sizeof final, "%s/%ld.%lld%09ld", dir, (long)pid, (long long)ts.tv_sec, ts.tv_nsec);
  if (rename(tmpname, final) != 0) {
    unlink(tmpname);
    _exit(53);
  }

#ifdef FLOOR_RSS
  {
    /* VmHWM of this process image, not getrusage's ru_maxrss: a program started by node (vfork/fork +
     * execve) inherits in ru_maxrss the peak of the node process it was forked from. */
    char status[8192], line[64];
    long hwm = -1;
    int sfd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    if (sfd >= 0) {
      ssize_t n = read(sfd, status, sizeof status - 1);
      close(sfd);
      if (n > 0) {
        status[n] = 0;
        char *p = strstr(status, "\nVmHWM:");
        if (p) hwm = strtol(p + 7, NULL, 10);
      }
    }
    int n = snprintf(line, sizeof line, "%ld %ld\n", (long)pid, hwm);
    snprintf(final, sizeof final, "%s/rss.log", dir);
    int fd = open(final, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd >= 0) {
      if (write(fd, line, (size_t)n) < 0) {
        /* only a statistic */
      }
      close(fd);
    }
  }
#endif
  return 0;
}
